"""A small Open Inference Protocol v2 REST client for encoded images (used by ``aidetect predict``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from aidetect.errors import AidetectError, ServiceUnavailableError

INFERENCE_HEADER = "Inference-Header-Content-Length"


VERDICT_OUTPUTS = ("verdict", "verdict_reasons")


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    probability_fake: float | None
    verdict: str = ""  # empty when the server gives no verdict (an older server)
    reasons: list[str] = field(default_factory=list)


def encode_bytes_tensor(items: list[bytes]) -> bytes:
    """The V2 binary encoding of a BYTES tensor: 4-byte little-endian length before each element."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def build_image_request(
    images: list[bytes], request_id: str = "", outputs: tuple[str, ...] = ("probabilities", "label")
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a binary-extension infer request with one ``image`` BYTES input."""
    raw = encode_bytes_tensor(images)
    doc = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [len(images)],
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": n, "parameters": {"binary_data": False}} for n in outputs],
    }
    if request_id:
        doc["id"] = request_id
    header = orjson.dumps(doc)
    headers = {"Content-Type": "application/octet-stream", INFERENCE_HEADER: str(len(header))}
    return header + raw, headers


class V2Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.url = url

    def _get(self, path: str) -> dict[str, Any]:
        try:
            r = self.http.get(path)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"cannot reach {self.url}: {exc}") from None
        if r.status_code != 200:
            raise AidetectError(f"GET {path} answered {r.status_code}: {_error_text(r)}")
        return r.json()

    def default_model(self) -> str:
        models = self._get("/v2/models").get("models", [])
        if len(models) != 1:
            raise AidetectError(f"{self.url} serves {len(models)} models {models}; pass --model")
        return models[0]

    def model_parameters(self, model: str) -> tuple[list[str], str | None, list[str]]:
        """The model's labels (column order of ``probabilities``), positive label and output names, from
        its metadata."""
        meta = self._get(f"/v2/models/{model}")
        params = meta.get("parameters") or {}
        labels = params.get("labels")
        if not labels:
            raise AidetectError(f"model {model} metadata does not state its labels")
        return list(labels), params.get("positive_label"), [o.get("name") for o in meta.get("outputs") or []]

    def predict(self, model: str, images: list[bytes]) -> list[Prediction]:
        labels, positive, declared = self.model_parameters(model)
        verdicts = tuple(n for n in VERDICT_OUTPUTS if n in declared)
        body, headers = build_image_request(images, outputs=("probabilities", "label", *verdicts))
        try:
            r = self.http.post(f"/v2/models/{model}/infer", content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"cannot reach {self.url}: {exc}") from None
        if r.status_code != 200:
            raise AidetectError(f"the server refused the request ({r.status_code}): {_error_text(r)}")
        outputs = {o["name"]: o for o in r.json()["outputs"]}
        probs = outputs["probabilities"]["data"]
        names = outputs["label"]["data"]
        c = len(labels)
        preds = []
        for i, name in enumerate(names):
            row = dict(zip(labels, probs[i * c : (i + 1) * c], strict=True))
            p_fake = row.get(positive) if positive else None
            pred = Prediction(label=name, probabilities=row, probability_fake=p_fake)
            if len(verdicts) == len(VERDICT_OUTPUTS):
                pred.verdict = outputs["verdict"]["data"][i]
                pred.reasons = list(orjson.loads(outputs["verdict_reasons"]["data"][i]))
            preds.append(pred)
        return preds


def _error_text(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error", r.text))
    except ValueError:
        return r.text[:200]
