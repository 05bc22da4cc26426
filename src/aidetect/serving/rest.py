"""REST ``POST /v2/models/{name}/infer`` with the binary tensor data extension done right.

KServe 0.21's own REST handler turns binary BYTES inputs into UTF-8 strings, which fails for encoded
images (HTTP 500). This route, registered ahead of KServe's, parses the JSON header and the binary
section itself (bounds-checked, errors as HTTP 400 naming the input) and then hands the request to the
model (a ``kserve.Model``); encoding and error handlers are KServe's. The route only needs the
predictor, so it can be installed in every REST worker process.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from aidetect.serving import metrics
from aidetect.serving.inputs import RejectedInput
from aidetect.serving.kserve_compat import (
    INFERENCE_CONTENT_LENGTH_HEADER,
    InferInput,
    InferRequest,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    RequestedOutput,
)


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
        inp = InferInput(name=name, shape=shape, datatype=datatype.upper(), parameters=params)
        if "data" in item:
            inp._data = item["data"]
        elif "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or size < 0 or offset + size > len(body):
                raise _bad(f"input '{name}': binary_data_size {size!r} runs past the end of the body")
            inp._raw_data = body[offset : offset + size]
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


def install_infer_route(app: FastAPI, predictor: Any) -> None:
    """Register the V2 infer route for ``predictor`` on ``app`` (ahead of KServe's own, so it matches)."""

    async def infer(model_name: str, request: Request) -> Response:
        start = time.perf_counter()
        body = await request.body()
        headers = dict(request.headers)
        try:
            infer_request = parse_infer_request(body, headers, model_name)
        except InvalidInput as exc:
            if isinstance(exc, RejectedInput):
                metrics.reject(model_name, exc.code)
            metrics.observe_request(model_name, "rest", metrics.CLIENT_ERROR, time.perf_counter() - start)
            raise
        if model_name != predictor.name:
            raise ModelNotFound(model_name)
        if not predictor.ready:
            raise ModelNotReady(model_name)
        response, _ = await predictor(infer_request, headers)
        encoded, json_length = response.to_rest()
        if json_length is not None:  # binary outputs follow the JSON header
            headers_out = {INFERENCE_CONTENT_LENGTH_HEADER: str(json_length)}
            return Response(encoded, headers=headers_out, media_type="application/octet-stream")
        return Response(orjson.dumps(encoded), media_type="application/json")

    app.add_api_route("/v2/models/{model_name}/infer", infer, methods=["POST"], response_model=None)
