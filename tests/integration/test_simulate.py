"""``aidetect simulate`` against a real ``aidetect serve``: a folder source, then a shift to a zip source
the model gets wrong, and a simulated reviewer who labels every kept image through the import path."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from aidetect.feedback.capture import ImageStore
from aidetect.feedback.labels import LabelLog
from tests.helpers.edge import environ, serve
from tests.helpers.label_studio import LabelStudio
from tests.helpers.serving import solid, tiny_bundle

pytestmark = pytest.mark.slow  # a real server

# the tiny bundle scores p(FAKE) = sigmoid((blue - red) / 255); the server keeps only [0.4, 0.6]
BASE = {  # (colour, in the uncertain band)
    "REAL/red.png": ((255, 0, 0), False),
    "REAL/purple.png": ((200, 0, 150), True),
    "FAKE/blue.png": ((0, 0, 255), False),
    "FAKE/violet.png": ((150, 0, 200), True),
}
SHIFT = {  # real photos the model calls FAKE: the shift
    "REAL/sky.png": ((0, 10, 255), False),
    "REAL/dusk.png": ((100, 0, 160), True),
}


def _write(files: dict[str, tuple[tuple[int, int, int], bool]], root: Path) -> dict[str, tuple[str, bool]]:
    """Write the images; {sha256: (true label, in band)}."""
    out = {}
    for rel, (rgb, in_band) in files.items():
        data = solid(rgb)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        out[hashlib.sha256(data).hexdigest()] = (rel.split("/")[0], in_band)
    return out


def _simulate(tmp_path: Path, via: str, env: dict[str, str] | None = None) -> tuple[dict, dict]:
    """Serve the tiny bundle (capture: the uncertain band only), replay base then the shifted zip with a
    reviewer labelling every kept image through ``via``; (the JSON summary, {sha256: (label, in band)})."""
    truth = {**_write(BASE, tmp_path / "base"), **_write(SHIFT, tmp_path / "shift")}
    with zipfile.ZipFile(tmp_path / "shift.zip", "w") as zf:
        for rel in SHIFT:
            zf.write(tmp_path / "shift" / rel, rel)
    server_env = {
        **environ(inference_log_uri=tmp_path / "log", inference_log_flush_seconds=0.5),
        "AIDETECT_FEEDBACK__CAPTURE__STORE_URI": str(tmp_path / "store"),
        "AIDETECT_FEEDBACK__CAPTURE__SAMPLE_RATE": "0",
        "AIDETECT_FEEDBACK__CAPTURE__UNCERTAIN_LOW": "0.4",
        "AIDETECT_FEEDBACK__CAPTURE__UNCERTAIN_HIGH": "0.6",
    }
    with serve(tiny_bundle(tmp_path / "tiny"), tmp_path, server_env) as s:
        cmd = [
            sys.executable, "-m", "aidetect.cli", "simulate", str(tmp_path / "base"), "--url", s.url,
            "--rate", "20", "--limit", "30",
            "--shift-to", str(tmp_path / "shift.zip"), "--shift-after", "0.5s",
            "--review-share", "1", "--review-delay", "0.5s", "--review-via", via,
            "--store", str(tmp_path / "store"), "--labels", str(tmp_path / "labels"),
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})}
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (summary["sent"], summary["ok"], summary["errors"]) == (30, 30, 0)
    phase = {p["name"]: p for p in summary["phases"]}
    assert phase["base"]["sent"] >= 1 and phase["shift"]["sent"] >= 1  # paced: 30 images take >= 1.45 s
    assert phase["base"]["accuracy"] == 1.0 and phase["shift"]["accuracy"] == 0.0  # the shift is seen
    return summary, truth


def _kept(tmp_path: Path, truth: dict) -> set[str]:
    kept = {sha for sha in truth if ImageStore(str(tmp_path / "store")).has(sha)}
    assert kept and all(truth[sha][1] for sha in kept)  # only images in the uncertain band were kept
    return kept


def test_simulated_traffic_shift_and_reviewer_through_the_import(tmp_path: Path) -> None:
    summary, truth = _simulate(tmp_path, "import")
    kept = _kept(tmp_path, truth)
    recorded = LabelLog(str(tmp_path / "labels")).read()
    assert {r.sha256 for r in recorded} == kept  # every kept image labelled once (share 1)
    assert len(recorded) == summary["labelled"] == len(kept)
    assert len(kept) <= summary["kept"] < summary["sent"]  # sends of kept images (the source cycles)
    for r in recorded:
        assert (r.label, r.source, r.model_name, r.model_version) == (
            truth[r.sha256][0],
            "simulated-reviewer",
            "tiny",
            "3",
        )
    assert {p["name"]: p["labelled"] for p in summary["phases"]} == {
        name: len({r.sha256 for r in recorded if r.note == f"phase:{name}"}) for name in ("base", "shift")
    }


def test_the_simulated_reviewer_works_in_label_studio(tmp_path: Path, label_studio: LabelStudio) -> None:
    env = {
        "AIDETECT_FEEDBACK__REVIEW__URL": label_studio.url,
        "AIDETECT_FEEDBACK__REVIEW__PROJECT": f"sim-{uuid.uuid4().hex[:8]}",
        "AIDETECT_FEEDBACK__REVIEW__LOG_URI": str(tmp_path / "log"),  # what the platform's push reads
        "AIDETECT_LABEL_STUDIO_TOKEN": label_studio.token,
    }
    summary, truth = _simulate(tmp_path, "label-studio", env)
    kept = _kept(tmp_path, truth)
    assert summary["review"] == {
        "pushed": len(kept),
        "annotated": len(kept),
        "pulled": len(kept),
        "no_task": 0,
    }
    recorded = LabelLog(str(tmp_path / "labels")).read()  # what the platform's pull brought in
    assert {r.sha256: r.label for r in recorded} == {sha: truth[sha][0] for sha in kept}
    assert {(r.source, r.author, r.model_name, r.model_version) for r in recorded} == {
        ("label-studio", label_studio.username, "tiny", "3")
    }


def test_simulate_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "aidetect.cli", "simulate"]
    missing = subprocess.run([*run, str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "error:" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "src" / "REAL").mkdir(parents=True)
    (tmp_path / "src" / "REAL" / "a.png").write_bytes(solid((1, 2, 3)))
    args = [*run, str(tmp_path / "src"), "--url", "http://127.0.0.1:9", "--limit", "1"]
    down = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert down.returncode != 0 and "cannot reach" in down.stderr and "Traceback" not in down.stderr
    bad = subprocess.run([*args, "--review-share", "2"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "review-share" in bad.stderr and "Traceback" not in bad.stderr
