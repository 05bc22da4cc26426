"""House rules of the layout, checked on the source: no import cycles, torch-free serving, thin components.

Imports inside functions count: a deferred import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "aidetect"


def _module_name(path: Path) -> str:
    root = SRC.parent if path.is_relative_to(SRC.parent) else REPO
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file."""
    tree = ast.parse(path.read_text())
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                keep = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*keep, base]).strip(".")
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package ``__init__`` that re-exports its submodules is not a cycle with them."""
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_no_import_cycle_inside_the_package() -> None:
    cycles = _cycles(_without_package_inits(_graph()))
    assert cycles == [], f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_serving_and_the_decision_rule_do_not_need_torch() -> None:
    graph = _graph()
    torch_free = [m for m in graph if m.startswith("aidetect.serving") or m == "aidetect.decision"]
    for name in torch_free:
        path = SRC.parent / (name.replace(".", "/") + ".py")
        if not path.exists():
            path = SRC.parent / name.replace(".", "/") / "__init__.py"
        heavy = {i for i in _imports(path) if i.split(".")[0] in {"torch", "torchvision"}}
        assert not heavy, f"{name} imports {heavy}"
        reached = {d for d in graph[name] if d.startswith("aidetect.model.") and d != "aidetect.model"}
        assert not reached, f"{name} imports the torch room: {reached}"


def test_components_only_map_artifacts_to_flows() -> None:
    allowed = (
        "aidetect.flows",
        "aidetect.model.lineage",
        "aidetect.storage",
        "aidetect.data.validation_report",
    )
    for path in (REPO / "components").glob("*.py"):
        for name in _imports(path):
            if name.startswith("aidetect."):
                assert name.startswith(allowed), f"{path.name} reaches past the flows: {name}"
        tree = ast.parse(path.read_text())
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            loops = [n for n in ast.walk(fn) if isinstance(n, (ast.While, ast.Try, ast.With))]
            assert not loops, (
                f"{path.name}:{fn.name} holds logic ({type(loops[0]).__name__}); move it to a flow"
            )


def test_the_library_does_not_know_kfp() -> None:
    for path in SRC.rglob("*.py"):
        if "commands" in path.parts:
            continue  # `aidetect pipeline ...` compiles and submits: the CLI may reach the pipelines
        kfp = {
            i for i in _imports(path) if i.split(".")[0] in {"kfp", "kubernetes", "pipelines", "components"}
        }
        assert not kfp, f"{path.relative_to(REPO)} imports {kfp}"
