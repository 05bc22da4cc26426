"""tritonclient gRPC checks against a running server, run as a separate process.

tritonclient's and KServe's generated protos both define package ``inference`` in protobuf's default
descriptor pool, so the two cannot be imported into one process; tests run this script instead:
``python -m tests.helpers.grpc_checks HOST:PORT MODEL`` prints one JSON object.
"""

from __future__ import annotations

import io
import json
import sys

import grpc
import numpy as np
import tritonclient.grpc as tg
from PIL import Image
from tritonclient.utils import InferenceServerException

from aidetect.data.imaging import normalize
from tests.helpers.serving import jpeg


def _error(client: tg.InferenceServerClient, model: str, inp: tg.InferInput) -> dict[str, str]:
    try:
        client.infer(model, [inp])
    except InferenceServerException as exc:
        return {"status": exc.status(), "message": exc.message()}
    return {"status": "OK", "message": ""}


def main(url: str, model: str) -> dict:
    client = tg.InferenceServerClient(url)
    meta = client.get_model_metadata(model)
    out: dict = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "outputs": [o.name for o in meta.outputs],
        "invalid_argument": str(grpc.StatusCode.INVALID_ARGUMENT),
    }
    pixels = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    pngs = []
    for p in pixels:
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, "PNG")
        pngs.append(buf.getvalue())
    inp = tg.InferInput("image", [2], "BYTES")
    inp.set_data_from_numpy(np.array(pngs, dtype=np.object_))
    res = client.infer(model, [inp])
    out["bytes"] = {n: res.as_numpy(n).tolist() for n in ("probabilities", "probability_fake")}
    out["bytes"]["label"] = [x.decode() for x in res.as_numpy("label")]
    inp = tg.InferInput("pixels", list(pixels.shape), "UINT8")
    inp.set_data_from_numpy(pixels)
    out["pixels"] = client.infer(model, [inp]).as_numpy("probabilities").tolist()
    tensor = normalize(pixels)
    inp = tg.InferInput("tensor", list(tensor.shape), "FP32")
    inp.set_data_from_numpy(tensor)
    out["tensor"] = client.infer(model, [inp]).as_numpy("probabilities").tolist()

    inp = tg.InferInput("image", [2], "BYTES")
    inp.set_data_from_numpy(np.array([jpeg(40), b"garbage"], dtype=np.object_))
    out["corrupt"] = _error(client, model, inp)
    inp = tg.InferInput("tensor", [1, 3, 8, 8], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 3, 8, 8), np.float32))
    out["bad_shape"] = _error(client, model, inp)
    inp = tg.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([jpeg(40)], dtype=np.object_))
    out["after_errors"] = client.infer(model, [inp]).as_numpy("probabilities").shape[0]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
