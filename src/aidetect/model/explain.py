"""Grad-CAM explanations from the torch checkpoint, served as KServe's explainer (its own process).

The server answers ``POST /v1/models/<name>:explain`` with, per image, the class probabilities, the
explained class and a PNG of the Grad-CAM heatmap blended over the image as the model saw it (resized
and centre-cropped by :mod:`aidetect.data.imaging`, then enlarged for viewing; a ``crops`` model: the
crop with the highest fake score, the probabilities aggregated over all crops as served), base64-encoded.

Request body: ``{"instances": [{"image_bytes": {"b64": "<base64>"}}, ...]}`` (KServe's V1 convention;
plain base64 strings are accepted too), optional ``"target": "<label>"`` (default: the predicted class).
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from aidetect.data import crops, imaging
from aidetect.data.crops import PreprocessSpec
from aidetect.decision import DecisionSpec
from aidetect.model.networks import DualNet, native_detail

VIEW_SIZE = 256  # the overlay is enlarged to at least this many pixels per side
MAX_INSTANCES = 16


@dataclass
class Explanation:
    label: str
    target: str
    probabilities: dict[str, float]
    heatmap: np.ndarray  # [S, S] in [0, 1]
    overlay_png: bytes

    def to_dict(self, positive_label: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "target": self.target,
            "probabilities": self.probabilities,
            "heatmap_png_b64": base64.b64encode(self.overlay_png).decode(),
        }
        if positive_label in self.probabilities:
            out["probability_fake"] = self.probabilities[positive_label]
        return out


def last_conv(model: nn.Module, x: torch.Tensor | None = None) -> nn.Module:
    """The last 2-D convolution: Grad-CAM's usual target layer. In a dual network, that of the branch
    that judges ``x``: the native one for an input with pixel detail of its own, else the thumbnail one."""
    dual = next((m for m in model.modules() if isinstance(m, DualNet)), None)
    if dual is not None and x is not None:
        model = dual.native if bool(native_detail(x).any()) else dual.thumb
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional network")
    return convs[-1]


def grad_cam(
    model: nn.Module, x: torch.Tensor, target: int | None = None, rule: DecisionSpec | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(heatmap [S,S] in [0,1], probabilities [C]) for one input ``x`` [1,3,S,S].

    Without ``target`` the heatmap explains the class the decision ``rule`` answers (argmax without one)."""
    layer = last_conv(model, x)
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        store["act"] = out
        out.register_hook(lambda g: store.__setitem__("grad", g))

    handle = layer.register_forward_hook(hook)
    try:
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            logits = model(x.requires_grad_(True))
            probs = torch.softmax(logits, dim=1)[0]
            if target is not None:
                cls = target
            elif rule is not None:
                cls = int(rule.decide(probs.detach().numpy()[None])[0])
            else:
                cls = int(probs.argmax())
            logits[0, cls].backward()
    finally:
        handle.remove()
    act, grad = store["act"][0], store["grad"][0]  # [K, h, w]
    weights = grad.mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * act).sum(0))
    cam = torch.nn.functional.interpolate(
        cam[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False
    )
    cam = cam[0, 0].detach()
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-8)
    return cam.numpy().astype(np.float32), probs.detach().numpy()


def _colormap(v: np.ndarray) -> np.ndarray:
    """A jet-like colour ramp: [H,W] in [0,1] -> uint8 [H,W,3]."""
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def overlay_png(img: Image.Image, heatmap: np.ndarray, size: int, alpha: float = 0.45) -> bytes:
    """The heatmap blended over the model's view of ``img``, as PNG bytes."""
    view = imaging.resize_center_crop(img.convert("RGB"), size)
    side = max(size, VIEW_SIZE)
    view = view.resize((side, side), Image.Resampling.BICUBIC)
    heat = Image.fromarray(_colormap(heatmap)).resize((side, side), Image.Resampling.BILINEAR)
    blended = Image.blend(view, heat, alpha)
    buf = io.BytesIO()
    blended.save(buf, format="PNG")
    return buf.getvalue()


class GradCam:
    """Grad-CAM for a loaded checkpoint."""

    def __init__(self, model: nn.Module, meta: dict[str, Any]) -> None:
        self.model = model.eval()
        self.meta = meta
        self.labels = list(meta["labels"])
        self.rule = DecisionSpec.from_meta(meta)
        self.size = int(meta["input_size"])
        self.preprocess = PreprocessSpec.from_meta(meta)

    @classmethod
    def from_checkpoint(cls, uri: str) -> GradCam:
        from aidetect.model.checkpoint import load_checkpoint

        model, meta = load_checkpoint(uri)
        return cls(model, meta)

    def explain(
        self, img: Image.Image, target: str | None = None, encoded: bytes | None = None
    ) -> Explanation:
        """Grad-CAM of ``img``; with ``encoded`` (its bytes) the model input is decoded as the server does."""
        if target is not None and target not in self.labels:
            raise ValueError(f"target {target!r} is not one of {self.labels}")
        mean, std, pre = self.meta["mean"], self.meta["std"], self.preprocess
        # decoded as the server decodes the bytes; without them, the image as given
        seen = crops.decode(encoded, pre, self.size) if encoded is not None else img.convert("RGB")
        arr = crops.model_inputs(seen, pre, self.size, mean, std)
        tidx = None if target is None else self.labels.index(target)
        if not pre.crops:
            heat, probs = grad_cam(self.model, torch.from_numpy(arr), tidx, self.rule)
        else:  # explain the crop the verdict leans on most (highest fake score); report the image's
            with torch.no_grad():  # probabilities, aggregated over its crops as served
                crop_probs = torch.softmax(self.model(torch.from_numpy(arr)), dim=1).numpy()
            k = int(np.argmax(self.rule.fake_score(crop_probs)))
            heat, _ = grad_cam(self.model, torch.from_numpy(arr[k : k + 1]), tidx, self.rule)
            owner = np.zeros(len(crop_probs), np.int64)
            probs = crops.aggregate(crop_probs, owner, 1, pre.aggregate, self.rule)[0]
            img = Image.fromarray(crops.grid_crops(seen, pre)[k])
        (label,) = self.rule.names(self.rule.decide(np.asarray(probs)[None]))
        return Explanation(
            label=label,
            target=target or label,
            probabilities={n: float(p) for n, p in zip(self.labels, probs, strict=True)},
            heatmap=heat,
            overlay_png=overlay_png(img, heat, self.size),
        )


def decode_instances(payload: Any, max_pixels: int) -> tuple[list[tuple[Image.Image, bytes]], str | None]:
    """V1 ``{"instances": [...]}`` with base64 images -> (decoded image, its bytes) pairs and the target.

    ``max_pixels`` bounds the whole request: every header is read before any image is decoded.
    Raises ValueError naming the index of a bad instance.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("instances"), list):
        raise ValueError('expected a JSON object with an "instances" list')
    instances = payload["instances"]
    if not 1 <= len(instances) <= MAX_INSTANCES:
        raise ValueError(f"instances: send 1 to {MAX_INSTANCES} images, got {len(instances)}")
    encoded, total = [], 0
    for i, item in enumerate(instances):
        b64 = item
        if isinstance(item, dict):
            b64 = (item.get("image_bytes") or {}).get("b64") if "image_bytes" in item else item.get("b64")
        if not isinstance(b64, str):
            raise ValueError(f'instances[{i}]: expected {{"image_bytes": {{"b64": ...}}}} or a base64 string')
        try:
            data = base64.b64decode(b64, validate=True)
            width, height = imaging.open_image(data, max_pixels).size  # the header only
        except (binascii.Error, ValueError):
            raise ValueError(f"instances[{i}]: not valid base64") from None
        except imaging.ImageDecodeError as exc:
            raise ValueError(f"instances[{i}]: {exc}") from None
        total += width * height
        if total > max_pixels:  # the limit is per request: n images never cost n times one
            raise ValueError(f"instances: {total} pixels up to instances[{i}], above the limit {max_pixels}")
        encoded.append(data)
    images = []
    for i, data in enumerate(encoded):
        try:
            images.append((imaging.decode_rgb(data, max_pixels), data))
        except imaging.ImageDecodeError as exc:
            raise ValueError(f"instances[{i}]: {exc}") from None
    target = payload.get("target")
    return images, target if isinstance(target, str) else None


def make_explainer(name: str, checkpoint: str, max_pixels: int = imaging.DEFAULT_MAX_PIXELS) -> Any:
    """A ``kserve.Model`` whose ``explain`` runs Grad-CAM (built lazily so kserve stays optional)."""
    import asyncio

    from aidetect.serving.kserve_compat import InvalidInput, Model

    class GradCamExplainer(Model):
        def __init__(self) -> None:
            super().__init__(name)
            self.cam: GradCam | None = None

        def load(self) -> bool:
            self.cam = GradCam.from_checkpoint(checkpoint)
            self.ready = True
            return True

        def _run(self, payload: Any) -> dict[str, Any]:
            try:
                images, target = decode_instances(payload, max_pixels)
                assert self.cam is not None
                positive = self.cam.rule.fake_label
                return {
                    "explanations": [
                        self.cam.explain(img, target, data).to_dict(positive) for img, data in images
                    ]
                }
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None

        async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
            return await asyncio.get_running_loop().run_in_executor(None, self._run, payload)

    return GradCamExplainer()


EXPLAIN_INFLIGHT = 2  # Grad-CAM calls at once (a backward pass each); more get 503 + Retry-After


def run_explainer_server(name: str, checkpoint: str, http_port: int, max_pixels: int) -> None:
    """Serve Grad-CAM on ``:explain`` with the KServe ModelServer (REST only), behind the predictor's
    guard: the serving config's bearer tokens and rate limit, its JSON body limit (``max_json_bytes``)
    and :data:`EXPLAIN_INFLIGHT` requests in flight."""
    from aidetect.serving.app import build_guard
    from aidetect.serving.config import load_serving_config
    from aidetect.serving.guard import GuardMiddleware, InflightLimit
    from aidetect.serving.kserve_compat import kserve, model_server

    cfg = load_serving_config()
    guard, inflight = build_guard(cfg), InflightLimit(EXPLAIN_INFLIGHT)
    explainer = make_explainer(name, checkpoint, max_pixels)
    explainer.load()
    app = model_server.app
    build_stack = app.build_middleware_stack

    def guarded() -> Any:  # Starlette builds the stack once, on the first event
        return GuardMiddleware(build_stack(), guard, cfg.max_json_bytes, inflight=inflight)

    app.build_middleware_stack = guarded  # type: ignore[method-assign]
    kserve.ModelServer(http_port=http_port, enable_grpc=False, enable_latency_logging=False).start(
        [explainer]
    )
