"""A grown version evaluated against a champion: both models measured on base and feedback images, the
feedback gate decides, and the gate report (the promotion PR body's core) shows both."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aidetect import flows, storage
from aidetect.data.demo import generate_demo
from aidetect.feedback.config import FeedbackConfig, GrowConfig
from aidetect.feedback.labels import LabelLog, LabelRecord
from aidetect.model.config import FeedbackGate, GatesConfig, load_eval_config, load_slices_config
from aidetect.model.evaluate import evaluate

TINY = {"epochs": 1, "track": False}


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[flows.DatasetRef, Path]:
    """A demo base, 60 reviewer-labelled larger images grown into it, a model trained on the base."""
    tmp = tmp_path_factory.mktemp("grow-gates")
    stores = flows.Stores(datasets_root=str(tmp / "ds"))
    base = flows.ingest(str(generate_demo(tmp / "base", n_per_class=60, seed=1)), stores).dataset
    flows.train(base, stores, tmp / "champ", preset="ci-tiny", overrides=TINY)
    new = generate_demo(tmp / "new", n_per_class=30, size=64, seed=9)
    records = []
    for p in sorted(Path(new).rglob("*.png")):
        data = p.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        storage.write_bytes(str(tmp / "store" / sha[:2] / sha), data)
        records.append(LabelRecord(sha, p.parent.name, "label-studio"))
    LabelLog(str(tmp / "labels")).append(records)
    cfg = FeedbackConfig(grow=GrowConfig(min_feedback_rows=10))
    done = flows.grow(base, stores, cfg=cfg, labels_root=str(tmp / "labels"), store=str(tmp / "store"))
    return done.dataset, tmp / "champ" / "model.pt"


def _evaluate(ref: flows.DatasetRef, model: Path, out: Path, gate: FeedbackGate) -> dict:
    eval_cfg = load_eval_config(overrides={"split": "val", "threshold_split": "val"})  # more feedback rows
    gates = GatesConfig(min={}, max={}, feedback=gate)
    slices = load_slices_config()
    slices.perturbations = []
    return evaluate(str(model), ref.open(), out, eval_cfg=eval_cfg, slices_cfg=slices, gates_cfg=gates,
                    champion=("1", str(model)))  # fmt: skip


def test_champion_is_measured_on_base_and_feedback_and_the_floor_decides(
    grown: tuple[flows.DatasetRef, Path], tmp_path: Path
) -> None:
    ref, trained = grown
    _evaluate(ref, trained, tmp_path / "first", FeedbackGate(min=0.0, min_count=3))
    model = tmp_path / "first" / "model.pt"  # thresholded: as a champion holds it
    ok = _evaluate(ref, model, tmp_path / "ok", FeedbackGate(min=0.0, tolerance=0.0, min_count=3))
    champ = ok["champion"]["slices"]["provenance"]
    assert set(champ) == {"base", "feedback"} and ok["slices"]["provenance"].keys() == champ.keys()
    kinds = {c["name"]: c["passed"] for c in ok["gates"]["checks"] if c["kind"] == "feedback"}
    # the same model as champion and challenger: no regression on either part
    assert kinds == {"feedback floor": True, "no regression on base": True, "no regression on feedback": True}
    assert ok["passed"]
    md = (tmp_path / "ok" / "gate_report.md").read_text()
    assert "### Base and feedback images" in md and "| feedback |" in md and "champion v1 accuracy" in md
    # a floor the model cannot reach on the reviewers' images: refused, and the reason names it
    high = _evaluate(ref, model, tmp_path / "high", FeedbackGate(min=1.01, min_count=3))
    assert not high["passed"] and any(f.startswith("feedback floor") for f in high["gates"]["failures"])
