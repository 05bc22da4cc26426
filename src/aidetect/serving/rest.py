"""REST ``POST /v2/models/{name}/infer`` with the binary tensor data extension done right, and fast.

KServe 0.21's own REST handler turns binary BYTES inputs into UTF-8 strings, which fails for encoded
images (HTTP 500). :class:`InferEndpoint`, an ASGI layer in front of KServe's app, parses the JSON
header and the binary section itself (bounds-checked, errors as HTTP 400 naming the input) and hands
the request to the model (a ``kserve.Model``). It only needs the predictor, so it can be installed in
every REST worker process.
"""

from __future__ import annotations

import logging
import time

import orjson

from aidetect.serving import metrics
from aidetect.serving.guard import ASGIApp, Receive, Scope, Send, request_headers
from aidetect.serving.inputs import RejectedInput
from aidetect.serving.kserve_compat import (
    INFERENCE_CONTENT_LENGTH_HEADER,
    InferInput,
    InferRequest,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    RequestedOutput,
    infer_input,
)
from aidetect.serving.predictor import AidetectPredictor

log = logging.getLogger(__name__)


def _bad(message: str) -> RejectedInput:
    return RejectedInput(message, "bad_request")


def parse_infer_request(body: bytes, headers: dict[str, str], model_name: str) -> InferRequest:
    """A V2 REST inference body (JSON, optionally followed by binary tensor data) -> InferRequest."""
    json_len_header = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
    if json_len_header is not None:
        try:
            json_len = int(json_len_header)
        except ValueError:
            raise _bad(f"header {INFERENCE_CONTENT_LENGTH_HEADER}: not an integer") from None
        if not 0 < json_len <= len(body):
            raise _bad(
                f"header {INFERENCE_CONTENT_LENGTH_HEADER}: {json_len} is outside the {len(body)}-byte body"
            )
    else:
        json_len = len(body)
    try:
        doc = orjson.loads(body[:json_len])
    except orjson.JSONDecodeError as exc:
        raise _bad(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise _bad('request must be a JSON object with an "inputs" list')
    offset = json_len
    inputs: list[InferInput] = []
    for i, item in enumerate(doc["inputs"]):
        if not isinstance(item, dict):
            raise _bad(f"inputs[{i}]: expected an object")
        name, datatype, shape = item.get("name"), item.get("datatype"), item.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str) or not isinstance(shape, list):
            raise _bad(f"inputs[{i}]: name, datatype and shape are required")
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise _bad(f"input '{name}': parameters must be an object")
        datatype = datatype.upper()
        if "data" in item:
            inp = infer_input(name, shape, datatype, params, data=item["data"])
        elif "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(body):
                raise _bad(f"input '{name}': binary_data_size {size!r} runs past the end of the body")
            inp = infer_input(name, shape, datatype, params, raw=body[offset : offset + size])
            offset += size
        else:
            raise _bad(f"input '{name}': neither 'data' nor a binary_data_size parameter")
        inputs.append(inp)
    outputs = doc.get("outputs")
    requested = None
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) and "name" in o for o in outputs):
            raise _bad('"outputs" must be a list of objects with a name')
        requested = [RequestedOutput(name=o["name"], parameters=o.get("parameters")) for o in outputs]
    params = doc.get("parameters")
    request_id = doc.get("id")
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=str(request_id) if request_id is not None else None,
        parameters=params if isinstance(params, dict) else None,
        request_outputs=requested,
    )


class InferEndpoint:
    """Raw ASGI handler for ``POST /v2/models/{name}/infer``; every other request goes on to ``app``.

    It runs ahead of KServe's FastAPI stack (routing, timing middleware, dependency injection, request
    objects), which costs more per request than a small model's inference; the model call itself
    (``predictor(...)``: KServe's pre/post hooks and metrics, our limits and metrics) and the V2
    response encoding (``InferResponse.to_rest``) stay KServe's. Errors are answered the way KServe's
    handlers answer them: ``{"error": message}`` with 400 (client error), 404, 503 or 500.
    """

    PREFIX, SUFFIX = "/v2/models/", "/infer"

    def __init__(self, app: ASGIApp, predictor: AidetectPredictor) -> None:
        self.app = app
        self.predictor = predictor

    def _model_name(self, scope: Scope) -> str | None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        path: str = scope.get("path", "")
        if not (path.startswith(self.PREFIX) and path.endswith(self.SUFFIX)):
            return None
        name = path[len(self.PREFIX) : -len(self.SUFFIX)]
        return name if name and "/" not in name else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model_name = self._model_name(scope)
        if model_name is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        headers = request_headers(scope)  # already parsed by the guard in front
        try:
            status, payload, extra = await self._infer(model_name, body, headers)
        except Exception as exc:  # the handler of last resort: never drop the connection
            log.exception("inference failed")
            status, payload, extra = _error(500, f"{type(exc).__name__} : {exc}")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(payload)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _infer(
        self, model_name: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        start = time.perf_counter()
        predictor = self.predictor
        try:
            infer_request = parse_infer_request(body, headers, model_name)
        except InvalidInput as exc:
            if isinstance(exc, RejectedInput):
                metrics.reject(model_name, exc.code)
            metrics.observe_request(model_name, "rest", metrics.CLIENT_ERROR, time.perf_counter() - start)
            log.warning("client error: %s", exc)
            return _error(400, str(exc))
        if model_name != predictor.name:
            return _error(404, str(ModelNotFound(model_name)))
        if not predictor.ready:
            return _error(503, str(ModelNotReady(model_name)))
        try:
            response, _ = await predictor(infer_request, headers)
        except InvalidInput as exc:
            log.warning("client error: %s", exc)
            return _error(400, str(exc))
        encoded, json_length = response.to_rest()
        if json_length is not None:  # binary outputs follow the JSON header
            length = str(json_length).encode()
            return 200, encoded, [(b"content-type", b"application/octet-stream"), (_JSON_LENGTH, length)]
        return 200, orjson.dumps(encoded, option=orjson.OPT_SERIALIZE_NUMPY), [_JSON]


_JSON = (b"content-type", b"application/json")
_JSON_LENGTH = INFERENCE_CONTENT_LENGTH_HEADER.lower().encode()


def _error(status: int, message: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, orjson.dumps({"error": message}), [_JSON]


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
