"""A three-class bundle served by a real ``aidetect serve`` answers exactly the decision rule evaluation
uses (``DecisionSpec.decide``), over REST and gRPC (standard tritonclient clients), on every image,
including images where plain argmax would answer differently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aidetect.decision import DecisionSpec
from tests.helpers.serving import (
    RULE_VS_ARGMAX,
    aidetect_serve,
    three_class_bundle,
    three_class_images,
)

REPO = Path(__file__).resolve().parents[2]
VERDICT_OUTPUTS = ["verdict", "verdict_reasons", "provenance"]  # image models: the provenance verdict

GRPC_SCRIPT = """
import json, sys
import numpy as np
import tritonclient.grpc as tg

url, model, *paths = sys.argv[1:]
inp = tg.InferInput("image", [len(paths)], "BYTES")
inp.set_data_from_numpy(np.array([open(p, "rb").read() for p in paths], dtype=np.object_))
res = tg.InferenceServerClient(url).infer(model, [inp])
outputs = [o.name for o in res.get_response().outputs]
print(json.dumps({"outputs": outputs, "probabilities": res.as_numpy("probabilities").tolist(),
                  "label": [x.decode() for x in res.as_numpy("label")]}))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("three-class")
    bundle = three_class_bundle(work / "bundle")
    rule = DecisionSpec.from_meta(json.loads((bundle / "bundle.json").read_text()))
    with aidetect_serve(str(bundle), work) as urls:
        yield urls, rule, work


def _check(rule: DecisionSpec, probs: np.ndarray, labels: list[str]) -> None:
    n = len(three_class_images())
    assert probs.shape == (n, 3)
    assert labels == rule.names(rule.decide(probs))  # every image: the evaluated rule
    argmax = rule.names(probs.argmax(axis=1))
    k = len(RULE_VS_ARGMAX)  # both kinds of disagreement with argmax are among them
    assert argmax[:k] == ["real", "ai-generated"] and labels[:k] == ["ai-generated", "real"]


def test_rest_answers_the_decision_rule(served) -> None:
    import tritonclient.http as th

    (http_url, _), rule, _ = served
    client = th.InferenceServerClient(http_url.removeprefix("http://"))
    meta = client.get_model_metadata("tiny")
    assert meta["parameters"]["labels"] == list(rule.labels) and meta["parameters"]["real_label"] == "real"
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "label", *VERDICT_OUTPUTS]
    inp = th.InferInput("image", [len(three_class_images())], "BYTES")
    inp.set_data_from_numpy(np.array(three_class_images(), dtype=np.object_), binary_data=True)
    res = client.infer("tiny", [inp])
    labels = [x.decode() if isinstance(x, bytes) else x for x in res.as_numpy("label")]
    _check(rule, res.as_numpy("probabilities"), labels)
    assert res.as_numpy("probability_fake") is None


def test_grpc_answers_the_decision_rule(served) -> None:
    (_, grpc_url), rule, work = served
    paths = []
    for i, data in enumerate(three_class_images()):
        path = work / f"img{i}.png"
        path.write_bytes(data)
        paths.append(str(path))
    # tritonclient's and KServe's protos clash in one process: the client runs in its own
    proc = subprocess.run(
        [sys.executable, "-c", GRPC_SCRIPT, grpc_url, "tiny", *paths],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["outputs"] == ["probabilities", "label", *VERDICT_OUTPUTS]
    _check(rule, np.array(res["probabilities"], np.float32), res["label"])
