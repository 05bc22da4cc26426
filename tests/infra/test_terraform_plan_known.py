"""Every `count` and `for_each` in terraform/ is decidable at the first `terraform plan` on an empty
account (tests/infra/tf_plan_known.py rates each expression from the HCL; no provider is needed).

Each rule is also run on a small module tree written here, so the checker is shown to catch the mistake
it exists for (a count over generated policy JSON, a for_each over a security-group id) and to accept
the plan-time restatements (a literal flag, a map with static keys).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.tf_plan_known import KEYS, KNOWN, UNKNOWN, Analyzer, Scope

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
ROOTS = [TERRAFORM / "envs" / "staging", TERRAFORM / "envs" / "production", TERRAFORM / "bootstrap"]


def test_every_count_and_for_each_is_known_at_plan() -> None:
    analyzer = Analyzer(ROOTS)
    assert {d.name for d in analyzer.modules} >= {"platform", "irsa", "database", "platform_iam", "cluster"}
    assert [str(f) for f in analyzer.findings()] == []


def _tree(tmp_path: Path, child: str, call: str) -> Analyzer:
    """A root calling module `child` (both written here) with the argument block `call`."""
    (tmp_path / "root").mkdir()
    (tmp_path / "child").mkdir()
    (tmp_path / "root" / "main.tf").write_text(
        'variable "names" {\n  type = list(string)\n}\n'
        'resource "aws_security_group" "sg" {\n  name = "x"\n}\n'
        'data "aws_iam_policy_document" "doc" {\n  statement {\n'
        "    resources = [aws_security_group.sg.arn]\n  }\n}\n"
        'data "aws_partition" "current" {}\n'
        f'module "child" {{\n  source = "../child"\n{call}\n}}\n'
    )
    (tmp_path / "child" / "main.tf").write_text(child)
    return Analyzer([tmp_path / "root"])


CHILD = (
    'variable "ids" {\n  type = any\n}\nvariable "flag" {\n  type = bool\n  default = false\n}\n'
    'variable "policy" {\n  type = string\n  default = null\n}\n'
)


@pytest.mark.parametrize(
    ("resource", "call", "caught"),
    [
        # the irsa mistake: count decided by JSON over ARNs that exist only after apply
        ("count = var.policy == null ? 0 : 1", "policy = data.aws_iam_policy_document.doc.json", True),
        # its fix: a literal flag next to the unknown JSON
        ("count = var.flag ? 1 : 0", "policy = data.aws_iam_policy_document.doc.json\n  flag = true", False),
        # the database mistake: a set of ids known only after apply
        ("for_each = toset(var.ids)", "ids = [aws_security_group.sg.id]", True),
        # its fix: static keys, unknown values
        ("for_each = var.ids", "ids = { cluster = aws_security_group.sg.id }", False),
        # plan-time inputs: root variables, data sources of static arguments
        ("for_each = toset(var.ids)", "ids = var.names", False),
        ("count = length(var.ids)", 'ids = ["arn:${data.aws_partition.current.partition}:x"]', False),
    ],
)
def test_checker_catches_unknown_counts_and_accepts_plan_time_inputs(
    tmp_path: Path, resource: str, call: str, caught: bool
) -> None:
    child = CHILD + f'resource "aws_iam_role_policy" "p" {{\n  {resource}\n  policy = "x"\n}}\n'
    findings = _tree(tmp_path, child, call).findings()
    assert bool(findings) is caught, [str(f) for f in findings]
    if caught:
        assert findings[0].block == "resource.aws_iam_role_policy.p" and "unknown at plan" in str(findings[0])


def test_levels_of_basic_expressions(tmp_path: Path) -> None:
    analyzer = _tree(tmp_path, CHILD, "ids = []")
    root = Scope((tmp_path / "root").resolve())
    assert analyzer.level('"literal"', root) == KNOWN
    assert analyzer.level("${var.names}", root) == KNOWN
    assert analyzer.level("${aws_security_group.sg.id}", root) == UNKNOWN
    assert analyzer.level({'"a"': "${aws_security_group.sg.id}"}, root) == KEYS
    assert analyzer.level("${data.aws_iam_policy_document.doc.json}", root) == UNKNOWN
    assert analyzer.level("${data.aws_partition.current.partition}", root) == KNOWN
