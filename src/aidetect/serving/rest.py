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
import uuid

import orjson

from aidetect.serving import metrics
from aidetect.serving.guard import ASGIApp, Receive, Scope, Send, request_headers
from aidetect.serving.inputs import MAX_REQUEST_ID, RejectedInput
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
from aidetect.serving.logs import printable
from aidetect.serving.predictor import AidetectPredictor

log = logging.getLogger(__name__)
TOO_LARGE = "request_too_large"  # the RejectedInput code answered with 413


def _bad(message: str) -> RejectedInput:
    return RejectedInput(message, "bad_request")


def _request_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REQUEST_ID:
        raise _bad(f'"id" must be a string of at most {MAX_REQUEST_ID} characters')
    return value


def parse_infer_request(
    body: bytes | bytearray, headers: dict[str, str], model_name: str, max_json_bytes: int | None = None
) -> InferRequest:
    """A V2 REST inference body (JSON, optionally followed by binary tensor data) -> InferRequest.

    The JSON part is refused above ``max_json_bytes`` before it is parsed: parsed JSON numbers and
    strings take many times their text's size, so large payloads belong in the binary extension."""
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
    if max_json_bytes is not None and json_len > max_json_bytes:
        raise RejectedInput(
            f"the JSON part is {json_len} bytes, above the limit {max_json_bytes} "
            "(send large tensors and images with the binary data extension)",
            TOO_LARGE,
        )
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
            inp = infer_input(name, shape, datatype, params, raw=memoryview(body)[offset : offset + size])
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
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=_request_id(doc.get("id")),
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
        headers = request_headers(scope)  # already parsed by the guard in front
        body = await _read_body(receive, headers.get("content-length"))
        if body is None:
            return  # the client went away
        try:
            status, payload, extra = await self._infer(model_name, body, headers)
        except Exception:  # the handler of last resort: never drop the connection
            status, payload, extra = server_error()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(payload)).encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _infer(
        self, model_name: str, body: bytes | bytearray, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        start = time.perf_counter()
        predictor = self.predictor
        if model_name != predictor.name:  # before any metric: made-up names create no label series
            return _error(404, printable(str(ModelNotFound(model_name)), 200))
        try:
            infer_request = parse_infer_request(body, headers, model_name, predictor.cfg.max_json_bytes)
        except InvalidInput as exc:
            code = exc.code if isinstance(exc, RejectedInput) else "bad_request"
            metrics.reject(model_name, code)
            metrics.observe_request(model_name, "rest", metrics.CLIENT_ERROR, time.perf_counter() - start)
            log.warning("client error: %s", printable(str(exc)))
            return _error(413 if code == TOO_LARGE else 400, str(exc))
        if not predictor.ready:
            return _error(503, str(ModelNotReady(model_name)))
        try:
            response, _ = await predictor(infer_request, headers)
        except InvalidInput as exc:
            log.warning("client error: %s", printable(str(exc)))
            return _error(400, printable(str(exc)))
        encoded, json_length = response.to_rest()
        if json_length is not None:  # binary outputs follow the JSON header
            length = str(json_length).encode()
            return 200, encoded, [(b"content-type", b"application/octet-stream"), (_JSON_LENGTH, length)]
        return 200, orjson.dumps(encoded, option=orjson.OPT_SERIALIZE_NUMPY), [_JSON]


_JSON = (b"content-type", b"application/json")
_JSON_LENGTH = INFERENCE_CONTENT_LENGTH_HEADER.lower().encode()


def _error(status: int, message: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return status, orjson.dumps({"error": message}), [_JSON]


def server_error() -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Log the exception being handled under a fresh request id; answer 500 with the id only.

    The client learns nothing of the server's internals (no exception type or message); the
    operator finds the traceback by the id."""
    request_id = uuid.uuid4().hex
    log.exception("server error (request_id=%s)", request_id)
    body = orjson.dumps({"error": "internal server error", "request_id": request_id})
    return 500, body, [_JSON]


async def _read_body(receive: Receive, declared: str | None = None) -> bytes | bytearray | None:
    """The whole body; with a ``Content-Length`` (the guard in front checked it against the limit)
    into one buffer of that size, so a large body is held once, not as chunks plus their join."""
    size = int(declared) if declared is not None and declared.isdigit() else None
    buf = bytearray(size) if size is not None else None
    chunks: list[bytes] = []
    filled = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        if buf is not None and filled + len(chunk) <= len(buf):
            buf[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        else:
            chunks.append(chunk)
        if not message.get("more_body", False):
            if buf is None:
                return b"".join(chunks)
            return bytes(buf[:filled]) + b"".join(chunks) if chunks or filled < len(buf) else buf
