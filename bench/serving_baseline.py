"""The baseline the serving benchmark compares against: FastAPI + torch eager, one image per request.

This is how most projects in this field serve a detector: decode the upload with Pillow, preprocess,
run the torch module in eager mode, return JSON. Started by ``bench/serving_load.py`` with
``AIDETECT_BASELINE_CHECKPOINT`` pointing at the same checkpoint the ONNX bundle was exported from.
"""

from __future__ import annotations

import os

import torch
from fastapi import FastAPI, Request

from aidetect.data import imaging
from aidetect.model.checkpoint import load_checkpoint

model, meta = load_checkpoint(os.environ["AIDETECT_BASELINE_CHECKPOINT"])
torch.set_num_threads(int(os.environ.get("AIDETECT_BASELINE_THREADS", "0")) or torch.get_num_threads())
app = FastAPI()


@app.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


@app.post("/predict")
async def predict(request: Request) -> dict[str, object]:
    data = await request.body()
    img = imaging.decode_rgb(data)
    x = torch.from_numpy(imaging.to_model_input(img, int(meta["input_size"]), meta["mean"], meta["std"]))
    with torch.inference_mode():
        probs = torch.softmax(model(x.unsqueeze(0)), dim=1)[0].tolist()
    best = max(range(len(probs)), key=probs.__getitem__)
    return {"label": meta["labels"][best], "probabilities": dict(zip(meta["labels"], probs, strict=True))}
