"""The conflict rule: each policy on the same disagreements, votes per voter, unknown classes, the report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from aidetect.cli import main
from aidetect.errors import ConfigError
from aidetect.feedback.config import LabelsConfig
from aidetect.feedback.labels import LabelLog, LabelRecord
from aidetect.feedback.policy import resolve

A, B, C = "a" * 64, "b" * 64, "c" * 64


def rec(sha: str, label: str, source: str, author: str, minute: int) -> LabelRecord:
    return LabelRecord(sha, label, source, author=author, ts=f"2026-05-01T10:{minute:02d}:00+00:00")


# A: import says FAKE (oldest), two reviewers on Label Studio say REAL, the review page says FAKE (newest).
DISPUTED = [
    rec(A, "FAKE", "import", "team", 0),
    rec(A, "REAL", "label-studio", "ann", 1),
    rec(A, "REAL", "label-studio", "bob", 2),
    rec(A, "FAKE", "review-page", "cy", 3),
]
AGREED = [rec(B, "FAKE", "import", "team", 0), rec(B, "fake", "label-studio", "ann", 5)]


def cfg(policy: str, priority: list[str] | None = None) -> LabelsConfig:
    c = LabelsConfig(conflict_policy=policy)
    if priority is not None:
        c.source_priority = priority
    return c


@pytest.mark.parametrize(
    ("policy", "priority", "expected"),
    [
        ("latest", None, "FAKE"),  # the review page's vote is the newest
        ("majority", None, "REAL"),  # without the import's vote: 2 REAL vs 1 FAKE
        ("priority", ["label-studio", "import"], "REAL"),  # label-studio outranks; bob is its newest vote
        ("priority", ["import"], "FAKE"),  # import listed first
    ],
)
def test_each_policy_picks_its_winner(policy: str, priority: list[str] | None, expected: str) -> None:
    records = DISPUTED if policy != "majority" else DISPUTED[1:]  # majority: 2 REAL vs 1 FAKE
    res = resolve(records + AGREED, cfg(policy, priority), labels=["REAL", "FAKE"])
    assert res.labels[A].label == expected
    assert res.labels[B].label == "FAKE" and res.labels[B].author == "ann"  # agreement: the newest record
    assert [c.sha256 for c in res.conflicts] == [A]
    assert res.conflicts[0].chosen == expected


def test_majority_tie_goes_to_the_most_recent_of_the_tied_labels() -> None:
    res = resolve(DISPUTED, cfg("majority"))  # 2 REAL vs 2 FAKE; cy's FAKE is the newest vote
    assert res.labels[A].label == "FAKE" and res.labels[A].author == "cy"
    assert res.conflicts[0].votes == {"FAKE": 2, "REAL": 2}
    res = resolve(DISPUTED[:3], cfg("majority"))  # 2 REAL vs 1 FAKE
    assert res.labels[A].label == "REAL"


def test_drop_leaves_the_image_unlabelled_and_reports_it() -> None:
    res = resolve(DISPUTED + AGREED, cfg("drop"), labels=["REAL", "FAKE"])
    assert A not in res.labels and res.labels[B].label == "FAKE"
    assert res.conflicts[0].chosen is None
    assert res.report()["dropped"] == 1
    assert "(dropped)" in res.markdown()


def test_a_voter_who_corrects_themselves_is_not_a_conflict() -> None:
    records = [rec(C, "FAKE", "label-studio", "ann", 0), rec(C, "REAL", "label-studio", "ann", 9)]
    for policy in ("latest", "majority", "priority", "drop"):
        res = resolve(records, cfg(policy))
        assert res.labels[C].label == "REAL" and res.conflicts == []


def test_unknown_classes_are_set_aside_and_named() -> None:
    records = [*AGREED, rec(C, "MAYBE", "import", "team", 1)]
    res = resolve(records, cfg("latest"), labels=["REAL", "FAKE"])
    assert C not in res.labels
    assert [(r.sha256, r.label) for r in res.unknown] == [(C, "MAYBE")]
    assert res.report()["unknown"][0]["label"] == "MAYBE"
    # without a label set nothing is unknown
    assert resolve(records, cfg("latest")).labels[C].label == "MAYBE"


def test_times_with_other_offsets_order_correctly() -> None:
    early = LabelRecord(A, "REAL", "import", author="x", ts="2026-05-01T12:00:00+02:00")  # 10:00 UTC
    late = LabelRecord(A, "FAKE", "import", author="y", ts="2026-05-01T10:30:00+00:00")
    assert resolve([late, early], cfg("latest")).labels[A].label == "FAKE"


def test_report_is_readable_and_serialisable() -> None:
    res = resolve(DISPUTED + AGREED, cfg("latest"), labels=["REAL", "FAKE"])
    rep = res.report()
    assert rep["images"] == 2 and rep["conflicts"] == 1
    assert rep["details"][0]["voters"] == [
        "import:team=FAKE",
        "label-studio:ann=REAL",
        "label-studio:bob=REAL",
        "review-page:cy=FAKE",
    ]
    md = res.markdown()
    assert "| `aaaaaaaaaaaa` | latest | FAKE |" in md
    assert asdict(res.conflicts[0])["records"][0]["source"] == "import"  # dataset growth stores it as dict


def test_an_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="conflict_policy"):
        resolve(DISPUTED, cfg("loudest"))


def test_the_cli_prints_the_conflicts(tmp_path: Path) -> None:
    LabelLog(str(tmp_path / "labels")).append(DISPUTED + AGREED)
    base = ["feedback", "conflicts", "--labels-root", str(tmp_path / "labels")]
    res = CliRunner().invoke(main, [*base, "--policy", "drop"])
    assert res.exit_code == 0, res.output
    assert "2 labelled images" not in res.output and "1 with disagreeing labels (1 dropped)" in res.output
    res = CliRunner().invoke(main, [*base, "--json"])
    assert json.loads(res.output)["details"][0]["chosen"] == "FAKE"  # configs/feedback.yaml: latest
