"""A small Open Inference Protocol v2 REST client for encoded images (used by ``aidetect predict``), and
the one way to start a server process and wait until it is ready (the demo, bench and tests use it)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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


# -- a server process: start, wait until ready, stop ----------------------------------------------------

READY_PATH = "/v2/health/ready"


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str,
    proc: subprocess.Popen | None = None,
    timeout: float = 120.0,
    *,
    log: Path | str | None = None,
    ready: Callable[[int], bool] = lambda status: status == 200,
    interval: float = 0.3,
) -> None:
    """Poll ``url`` until its status satisfies ``ready``. A process that exits first, or no answer within
    ``timeout`` seconds, is a :class:`ServiceUnavailableError` naming ``log`` (where the server said why)."""
    see = f"; see its log {log}" if log else ""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailableError(
                f"the server exited with code {proc.returncode} before {url} was ready{see}"
            )
        try:
            status = httpx.get(url, timeout=2.0).status_code
            if ready(status):
                return
            last = f"last status {status}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise ServiceUnavailableError(f"{url} was not ready after {timeout:.0f} s ({last}){see}")
        time.sleep(interval)


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM (the server flushes its inference log and kept images), then SIGKILL after ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def started(
    cmd: Sequence[str],
    ready_url: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    stop_timeout: float = 15.0,
    ready: Callable[[int], bool] = lambda status: status == 200,
    interval: float = 0.3,
) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` (output to ``log``, environment = ours + ``env``) until ``ready_url`` is ready; yield
    the process; stop it when the block ends, also when it fails."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # a terminal's Ctrl-C reaches only us; the finally below stops it
        )
    try:
        wait_ready(ready_url, proc, timeout, log=log, ready=ready, interval=interval)
        yield proc
    finally:
        stop(proc, stop_timeout)


@contextlib.contextmanager
def serving(
    model: str,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    stop_timeout: float = 15.0,
    interval: float = 0.3,
) -> Iterator[str]:
    """``aidetect serve --model MODEL`` (REST on a free loopback port, no gRPC, one worker) until the block
    ends; yields its base URL once ``/v2/health/ready`` answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "aidetect.cli", "serve", "--model", model]
    cmd += ["--http-port", str(port), "--no-grpc", "--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    with started(
        cmd, url + READY_PATH, log, env=env, timeout=timeout, stop_timeout=stop_timeout, interval=interval
    ):
        yield url
