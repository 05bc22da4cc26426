"""tritonclient gRPC: verdicts for image files, run as its own process (see tests/helpers/grpc_checks.py
for why): ``python -m tests.helpers.grpc_verdicts HOST:PORT MODEL FILE...`` prints one JSON object with
``verdict``, ``verdict_reasons``, ``provenance`` and ``probability_fake`` lists (one entry per file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as tg

OUTPUTS = ("verdict", "verdict_reasons", "provenance", "probability_fake")


def main(url: str, model: str, files: list[str]) -> dict[str, list]:
    client = tg.InferenceServerClient(url)
    images = np.array([Path(f).read_bytes() for f in files], dtype=np.object_)
    inp = tg.InferInput("image", [len(files)], "BYTES")
    inp.set_data_from_numpy(images)
    res = client.infer(model, [inp], outputs=[tg.InferRequestedOutput(n) for n in OUTPUTS])
    out: dict[str, list] = {}
    for name in OUTPUTS:
        values = res.as_numpy(name).tolist()
        out[name] = [v.decode() if isinstance(v, bytes) else v for v in values]
    out["declared"] = [o.name for o in client.get_model_metadata(model).outputs]
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3:])))
