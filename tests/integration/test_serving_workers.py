"""``aidetect serve --workers 2``: the predictor pickled into spawned REST worker processes keeps our
REST layers (fast infer endpoint, metadata), the decision rule and the inference log (flushed when the
workers shut down)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from aidetect.decision import DecisionSpec
from aidetect.serving.client import build_image_request
from tests.helpers.serving import aidetect_serve, three_class_bundle, three_class_images


def test_rest_workers_serve_and_log(tmp_path: Path) -> None:
    bundle = three_class_bundle(tmp_path / "bundle")
    rule = DecisionSpec.from_meta(json.loads((bundle / "bundle.json").read_text()))
    images = three_class_images()[:4]
    body, headers = build_image_request(images)
    log = tmp_path / "log"
    with aidetect_serve(str(bundle), tmp_path, "--workers", "2", "--inference-log", str(log)) as (url, _):
        infer = f"{url}/v2/models/tiny/infer"
        assert httpx.get(f"{url}/v2/models/tiny").json()["parameters"]["real_label"] == "real"
        answers = [httpx.post(infer, content=body, headers=headers, timeout=30) for _ in range(12)]
        assert {r.status_code for r in answers} == {200}  # answered by the spawned workers
        outputs = {o["name"]: o for o in answers[-1].json()["outputs"]}
        probs = np.asarray(outputs["probabilities"]["data"]).reshape(len(images), 3)
        assert outputs["label"]["data"] == rule.names(rule.decide(probs))
        r = httpx.post(infer, content=b"{x", headers={"content-type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]  # our endpoint, not KServe's
    rows = pd.concat(pd.read_parquet(f) for f in sorted(log.rglob("*.parquet")))
    assert len(rows) == 12 * len(images)  # every worker flushed its rows on shutdown
    assert list(rows["label"][: len(images)]) == outputs["label"]["data"]
