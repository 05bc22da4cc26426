"""The review page's routes on the serving app: ``/review`` (page + static assets, no secrets, open)
and ``/review/api/*`` (guarded like inference: the page sends the bearer token the analyst typed).

The page gets its verdicts from the standard V2 infer endpoint; these routes only keep uncertain
uploads, record the analyst's decision in the label log and proxy the Grad-CAM explainer (same
origin, so no CORS and one place for auth).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from aidetect.errors import AidetectError, DataError
from aidetect.feedback.labels import LabelLog, LabelRecord
from aidetect.ui.config import ReviewPageConfig
from aidetect.ui.queue import ReviewQueue

STATIC = ("review.js", "review.css")
UNDECIDED = ("likely-ai", "unknown")  # verdicts no provenance signal decided
SOURCE = "review-page"


@dataclass(frozen=True)
class ModelView:
    """What the page shows about the served model."""

    name: str
    version: str
    labels: tuple[str, ...]
    real_label: str


def _asset(name: str) -> bytes:
    return resources.files("aidetect.ui").joinpath("static", name).read_bytes()


def is_uncertain(result: dict[str, Any], cfg: ReviewPageConfig) -> bool:
    score = result.get("fake_score")
    if not isinstance(score, (int, float)) or result.get("verdict") not in UNDECIDED:
        return False
    return cfg.uncertain_low <= float(score) <= cfg.uncertain_high


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > limit:
        raise DataError(f"request body of {len(raw)} bytes exceeds {limit}")
    try:
        body = json.loads(raw)
    except ValueError:
        raise DataError("request body is not JSON") from None
    if not isinstance(body, dict):
        raise DataError("request body must be a JSON object")
    return body


def _image(body: dict[str, Any]) -> bytes:
    try:
        image = base64.b64decode(str(body.get("image_b64", "")), validate=True)
    except (binascii.Error, ValueError):
        raise DataError("image_b64 is not base64") from None
    if not image:
        raise DataError("image_b64 is empty")
    return image


def install_review_page(app: FastAPI, model: ModelView, cfg: ReviewPageConfig, max_body: int) -> None:
    """Add the page and its API to ``app`` (idempotent)."""
    if not cfg.enabled or getattr(app.state, "aidetect_review_page", False):
        return
    app.state.aidetect_review_page = True
    labels = LabelLog(cfg.label_log_uri)
    queue = ReviewQueue(cfg.store_uri, labels)

    def error(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    async def page() -> Response:
        return HTMLResponse(_asset("review.html"))

    async def static(name: str) -> Response:
        if name not in STATIC:
            return error(404, f"no asset {name}")
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(_asset(name), media_type=media, headers={"Cache-Control": "no-cache"})

    async def info() -> dict[str, Any]:
        return {
            "model": model.name,
            "version": model.version,
            "labels": list(model.labels),
            "real_label": model.real_label,
            "explainer": bool(cfg.explainer_url),
            "uncertain": [cfg.uncertain_low, cfg.uncertain_high],
        }

    async def pending() -> Any:
        try:
            return {"items": queue.pending(cfg.queue_size)}
        except AidetectError as exc:
            return error(503, f"review store unavailable: {exc}")

    async def queued_image(sha256: str) -> Response:
        try:
            return Response(queue.image(sha256), media_type="application/octet-stream")
        except DataError as exc:
            return error(404, str(exc))

    async def submit(request: Request) -> Any:
        try:
            body = await _json_body(request, max_body)
            image, result = _image(body), body.get("result")
            if not isinstance(result, dict) or len(json.dumps(result)) > cfg.max_note_bytes:
                raise DataError(f"result must be a JSON object of at most {cfg.max_note_bytes} bytes")
            if not is_uncertain(result, cfg):
                return {"queued": False}
            return {"queued": True, "sha256": queue.add(image, result)}
        except DataError as exc:
            return error(400, str(exc))

    async def record(request: Request) -> Any:
        try:
            body = await _json_body(request, 64 * 1024)
            if body.get("label") not in model.labels:
                raise DataError(f"label must be one of {list(model.labels)}")
            rec = LabelRecord(
                sha256=str(body.get("sha256", "")),
                label=str(body["label"]),
                source=SOURCE,
                author=str(body.get("author", ""))[:200],
                model_name=model.name,
                model_version=model.version,
                note=str(body.get("note", ""))[:200],
            )
            labels.append([rec])
        except DataError as exc:
            return error(400, str(exc))
        except AidetectError as exc:
            return error(503, f"label log unavailable: {exc}")
        return {"recorded": rec.__dict__}

    async def explain(request: Request) -> Any:
        if not cfg.explainer_url:
            return error(404, "no explainer configured (review_page.explainer_url)")
        import httpx

        try:
            image = _image(await _json_body(request, max_body))
        except DataError as exc:
            return error(400, str(exc))
        url = f"{cfg.explainer_url.rstrip('/')}/v1/models/{model.name}:explain"
        payload = {"instances": [{"image_bytes": {"b64": base64.b64encode(image).decode()}}]}
        try:
            async with httpx.AsyncClient(timeout=cfg.explainer_timeout_s) as client:
                r = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            return error(502, f"explainer unreachable: {type(exc).__name__}")
        if r.status_code != 200:
            return error(502, f"explainer answered {r.status_code}")
        (exp,) = r.json().get("explanations") or [{}]
        return {"heatmap_png_b64": exp.get("heatmap_png_b64", ""), "target": exp.get("target", "")}

    app.add_api_route("/review", page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/review/static/{name}", static, methods=["GET"], include_in_schema=False)
    app.add_api_route("/review/api/info", info, methods=["GET"])
    app.add_api_route("/review/api/queue", pending, methods=["GET"])
    app.add_api_route("/review/api/queue/{sha256}/image", queued_image, methods=["GET"])
    app.add_api_route("/review/api/submissions", submit, methods=["POST"])
    app.add_api_route("/review/api/labels", record, methods=["POST"])
    app.add_api_route("/review/api/explain", explain, methods=["POST"])
