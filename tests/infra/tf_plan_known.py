"""Which Terraform `count` / `for_each` expressions are known at plan time, from the HCL alone.

Terraform must know `count` and the keys of `for_each` before it creates anything; an expression that
depends on an attribute only the apply returns (an ARN, an id, a generated JSON policy over those) fails
the first `terraform plan` on an empty account with "Invalid count argument" / "Invalid for_each
argument". This walks the module tree from a root and rates every expression:

- KNOWN:   literals, root variables (tfvars), `each.key`, `count.index`, `path.*`, data sources whose
           arguments are all KNOWN (read during plan), and anything built only from those;
- KEYS:    a map/object literal whose keys are literal and some values unknown (enough for `for_each`);
- UNKNOWN: resource attributes, data sources fed by them, and anything built from those.

A module variable is rated by what every caller passes; a module output by its expression in the child.
It is deliberately conservative: a false alarm is fixed by restating the expression over plan-time inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

UNKNOWN, KEYS, KNOWN = 0, 1, 2
_NAMES = {UNKNOWN: "unknown", KEYS: "keys known", KNOWN: "known"}

_REF = re.compile(
    r"(?<![\w.\"])(var|local|module|data|each|count|path|terraform|self|[a-z][a-z0-9]*_[a-z0-9_]+)"
    r"\.([A-Za-z_][\w-]*)((?:\.[A-Za-z_*][\w-]*|\[[^\[\]]*\])*)"
)
_PURE_REF = re.compile(r"^\$\{\s*([^${}]+?)\s*\}$")


def _unq(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _path(rest: str) -> list[str]:
    """`.a["b"][0].c` -> ["a", "b", "0", "c"]."""
    return [_unq(p.strip()) for p in re.findall(r"\.([\w*-]+)|\[([^\]]*)\]", rest) for p in p if p]


@dataclass
class Module:
    directory: Path
    variables: dict[str, object] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    outputs: dict[str, object] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    calls: dict[str, dict] = field(default_factory=dict)


def load_module(directory: Path) -> Module:
    mod = Module(directory.resolve())
    for tf in sorted(directory.glob("*.tf")):
        with open(tf) as fh:
            doc = hcl2.load(fh)
        for entry in doc.get("variable", []):
            mod.variables.update({_unq(k): v for k, v in entry.items()})
        for entry in doc.get("locals", []):
            mod.locals.update({k: v for k, v in entry.items() if k != "__is_block__"})
        for entry in doc.get("output", []):
            mod.outputs.update({_unq(k): v.get("value") for k, v in entry.items()})
        for kind, target in (("resource", mod.resources), ("data", mod.data)):
            for entry in doc.get(kind, []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        target[(_unq(rtype), _unq(name))] = body
        for entry in doc.get("module", []):
            mod.calls.update({_unq(k): v for k, v in entry.items()})
    return mod


@dataclass(frozen=True)
class Scope:
    """Where an expression is evaluated: its module and the `for_each` its `each` refers to."""

    module: Path
    each: object = None


@dataclass
class Finding:
    module: Path
    block: str
    argument: str
    expression: object
    level: int

    def __str__(self) -> str:
        where = f"{self.module.name}: {self.block}.{self.argument}"
        return f"{where} = {self.expression} is {_NAMES[self.level]} at plan"


class Analyzer:
    """Rates expressions across the module tree of `roots` (their variables come from tfvars: known)."""

    def __init__(self, roots: list[Path]) -> None:
        self.modules: dict[Path, Module] = {}
        self.callers: dict[Path, list[tuple[Path, dict]]] = {}
        self.roots = {r.resolve() for r in roots}
        for root in roots:
            self._walk(root.resolve())
        self._busy: set[tuple] = set()

    def _walk(self, directory: Path) -> None:
        if directory in self.modules:
            return
        mod = self.modules[directory] = load_module(directory)
        for body in mod.calls.values():
            child = (directory / _unq(str(body["source"]))).resolve()
            self.callers.setdefault(child, []).append((directory, body))
            self._walk(child)

    # ------------------------------------------------------------------ expressions

    def level(self, expr: object, scope: Scope) -> int:
        if expr is None or isinstance(expr, (bool, int, float)):
            return KNOWN
        if isinstance(expr, list):
            return min((self._full(self.level(e, scope)) for e in expr), default=KNOWN)
        if isinstance(expr, dict):
            values = [v for k, v in expr.items() if k != "__is_block__"]
            if any("${" in str(k) for k in expr):
                return UNKNOWN
            return KNOWN if all(self.level(v, scope) == KNOWN for v in values) else KEYS
        text = str(expr)
        if "${" not in text:
            return KNOWN
        pure = _PURE_REF.match(text)
        if pure and _REF.fullmatch(pure.group(1)):
            m = _REF.fullmatch(pure.group(1))
            return self.ref(m.group(1), m.group(2), _path(m.group(3)), scope, bare=True)
        return min(
            (self._full(self.ref(m[1], m[2], _path(m[3]), scope)) for m in _REF.finditer(text)), default=KNOWN
        )

    @staticmethod
    def _full(level: int) -> int:
        """Inside a computation a partly known map is unknown (conservative)."""
        return KNOWN if level == KNOWN else UNKNOWN

    def navigate(self, expr: object, path: list[str], scope: Scope) -> int:
        """Level of `expr` followed by attribute/index `path` (into literals where possible)."""
        if path and isinstance(expr, dict):
            for key in (path[0], f'"{path[0]}"'):
                if key in expr:
                    return self.navigate(expr[key], path[1:], scope)
            return self._full(self.level(expr, scope))
        if path and isinstance(expr, str):
            pure = _PURE_REF.match(expr)
            m = _REF.fullmatch(pure.group(1)) if pure else None
            if m:
                return self.ref(m[1], m[2], _path(m[3]) + path, scope, bare=True)
        return self.level(expr, scope) if not path else self._full(self.level(expr, scope))

    def ref(self, head: str, name: str, path: list[str], scope: Scope, bare: bool = False) -> int:
        key = (head, name, tuple(path), scope.module, id(scope.each))
        if key in self._busy:
            return UNKNOWN
        self._busy.add(key)
        try:
            return self._ref(head, name, path, scope, bare)
        finally:
            self._busy.discard(key)

    def _ref(self, head: str, name: str, path: list[str], scope: Scope, bare: bool) -> int:
        mod = self.modules[scope.module]
        if head in ("path", "terraform", "count"):
            return KNOWN
        if head == "each":
            if name == "key":
                return KNOWN
            if scope.each is None:
                return UNKNOWN
            each_expr, each_scope = scope.each
            return self._each_value(each_expr, path, each_scope)
        if head == "var":
            return self._var(mod, name, path)
        if head == "local":
            return self.navigate(mod.locals.get(name), path, scope) if name in mod.locals else UNKNOWN
        if head == "module":
            return self._module_output(mod, name, path)
        if head == "data":
            rtype, rname = name, path[0] if path else ""
            body = mod.data.get((rtype, rname))
            if body is None:
                return UNKNOWN
            args = {k: v for k, v in body.items() if k not in ("depends_on", "__is_block__")}
            return KNOWN if self.level(args, Scope(scope.module)) == KNOWN else UNKNOWN
        if (head, name) in mod.resources:
            body = mod.resources[(head, name)]
            if bare and not path and "for_each" in body:
                inner = self.level(body["for_each"], Scope(scope.module))
                return KEYS if inner >= KEYS else UNKNOWN
            return UNKNOWN
        return KNOWN if head not in ("self",) and (head, name) not in mod.resources else UNKNOWN

    def _each_value(self, each_expr: object, path: list[str], scope: Scope) -> int:
        node = each_expr
        if isinstance(node, str):
            pure = _PURE_REF.match(node)
            m = _REF.fullmatch(pure.group(1)) if pure else None
            if m and m[1] == "local" and m[2] in self.modules[scope.module].locals and not _path(m[3]):
                node = self.modules[scope.module].locals[m[2]]
        if isinstance(node, dict):
            entries = [v for k, v in node.items() if k != "__is_block__"]
            return min((self.navigate(v, path, scope) for v in entries), default=KNOWN)
        return KNOWN if self.level(each_expr, scope) == KNOWN else UNKNOWN

    def _var(self, mod: Module, name: str, path: list[str]) -> int:
        if mod.directory in self.roots:
            return KNOWN
        levels = []
        for parent, call in self.callers.get(mod.directory, []):
            each = (call["for_each"], Scope(parent)) if "for_each" in call else None
            caller_scope = Scope(parent, each)
            if name in call:
                levels.append(self.navigate(call[name], path, caller_scope))
        return min(levels, default=KNOWN)

    def _module_output(self, mod: Module, name: str, path: list[str]) -> int:
        call = mod.calls.get(name)
        if call is None or not path:
            return UNKNOWN
        child = (mod.directory / _unq(str(call["source"]))).resolve()
        if "for_each" in call or "count" in call:
            path = path[1:] if path and not self.modules[child].outputs.get(path[0]) else path
        out = self.modules[child].outputs
        if path[0] not in out:
            return UNKNOWN
        return self.navigate(out[path[0]], path[1:], Scope(child))

    # ------------------------------------------------------------------ the check

    def findings(self) -> list[Finding]:
        """Every count that is not KNOWN and every for_each whose keys are not known at plan."""
        out = []
        for directory, mod in sorted(self.modules.items()):
            blocks = [(f"resource.{t}.{n}", b) for (t, n), b in mod.resources.items()]
            blocks += [(f"data.{t}.{n}", b) for (t, n), b in mod.data.items()]
            blocks += [(f"module.{n}", b) for n, b in mod.calls.items()]
            for where, body in blocks:
                for argument, needed in (("count", KNOWN), ("for_each", KEYS)):
                    if argument in body:
                        level = self.level(body[argument], Scope(directory))
                        if level < needed:
                            out.append(Finding(directory, where, argument, body[argument], level))
        return out
