"""``aidetect drift check`` without ``--no-retrain`` grows the served model's dataset line with the
reviewers' labels before it launches (the same grow step as the monitoring pipeline and ``aidetect
quality check``), then runs the configured launcher on the grown version, within the cooldown."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from aidetect import flows
from aidetect.cli import main
from aidetect.data.features import FEATURE_COLUMNS
from aidetect.data.versions import list_versions
from aidetect.monitoring.reference import Profile, write_reference
from tests.unit.test_grow import base, label_batch  # noqa: F401 (base: the served version's dataset)

MODEL, VERSION = "det", "5"


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(0.5 + shift, 0.1, (n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    df["probability_fake"] = rng.beta(2, 2, n)
    return df


@pytest.fixture
def served(tmp_path: Path, base: flows.DatasetRef, monkeypatch: pytest.MonkeyPatch) -> flows.DatasetRef:  # noqa: F811
    """The served version's dataset, its reference profile, a drifted hour in the inference log, and the
    label log + capture store the reviewers filled."""
    profile = Profile(
        MODEL, VERSION, base.version_id, "val", 300, list(FEATURE_COLUMNS), ["probability_fake"], []
    )
    write_reference(_frame(300, seed=0), profile, str(tmp_path / "reference"))
    now = datetime.now(UTC)
    window = _frame(200, seed=1, shift=0.3)
    window = window.assign(
        ts=now - timedelta(minutes=5), model_name=MODEL, model_version=VERSION, label="FAKE"
    )
    day = tmp_path / "log" / MODEL / f"date={now:%Y-%m-%d}"
    day.mkdir(parents=True)
    window.to_parquet(day / "part-0.parquet")
    monkeypatch.setenv("AIDETECT_DATASETS", base.root)
    monkeypatch.setenv("AIDETECT_FEEDBACK__LABELS__ROOT", str(tmp_path / "labels"))
    monkeypatch.setenv("AIDETECT_FEEDBACK__CAPTURE__STORE_URI", str(tmp_path / "store"))
    monkeypatch.setenv("AIDETECT_FEEDBACK__GROW__MIN_FEEDBACK_ROWS", "5")
    return base


def _check(tmp_path: Path) -> dict:
    marker = tmp_path / "launched.txt"
    launcher = f"open({str(marker)!r}, 'a').write('{{data_uri}} {{dataset_version}} {{init_from}}\\n')"
    cfg = {
        "min_rows": 100,
        "min_reference_rows": 100,
        "reports_uri": str(tmp_path / "reports"),
        "retrain": {"command": [sys.executable, "-c", launcher], "data_uri": "s3://fixed/labelled/latest",
                    "state_uri": str(tmp_path / "retrain-state.json")},
    }  # fmt: skip
    (tmp_path / "drift.yaml").write_text(yaml.safe_dump(cfg))
    argv = ["drift", "check", "--model", f"{MODEL}/{VERSION}", "--config", str(tmp_path / "drift.yaml")]
    argv += ["--reference", str(tmp_path / "reference"), "--log-uri", str(tmp_path / "log")]
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_drift_grows_the_dataset_with_labels_then_launches_on_the_grown_version(
    tmp_path: Path, served: flows.DatasetRef
) -> None:
    label_batch(tmp_path, range(12))
    first = _check(tmp_path)
    assert first["drift_detected"] and first["retrain"]["action"] == "launched", first["retrain"]
    grown = first["retrain"]["grown"]
    assert grown["parent"] == served.version_id and grown["num_added"] == 12
    # the launcher trains on the grown version (not retrain.data_uri), warm-started from the served model
    launched = (tmp_path / "launched.txt").read_text()
    assert launched == f"{grown['uri']} {grown['version_id']} models:/{MODEL}/{VERSION}\n"
    (launch,) = json.loads((tmp_path / "retrain-state.json").read_text())["launches"]
    assert launch["verdict_uri"] == first["verdict_uri"] and Path(first["verdict_uri"]).exists()

    label_batch(tmp_path, range(12, 24))  # more labels, but within the cooldown: no launch, no growth
    second = _check(tmp_path)
    assert second["retrain"]["action"] == "skipped" and "cooldown" in second["retrain"]["reason"]
    assert len(list_versions(served.root)) == 2
    assert (tmp_path / "launched.txt").read_text() == launched


def test_drift_with_too_few_labels_launches_nothing(tmp_path: Path, served: flows.DatasetRef) -> None:
    label_batch(tmp_path, range(3))
    verdict = _check(tmp_path)
    assert verdict["drift_detected"] and verdict["retrain"]["action"] == "skipped"
    assert verdict["retrain"]["reason"].startswith("not launched: ")
    assert not (tmp_path / "launched.txt").exists() and not (tmp_path / "retrain-state.json").exists()
    assert [v["version_id"] for v in list_versions(served.root)] == [served.version_id]
