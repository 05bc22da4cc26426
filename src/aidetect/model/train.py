"""The training loop: AdamW + warmup/cosine, robustness augmentation, early stopping on validation F1,
resumable checkpoints, MLflow tracking, and data-parallel training under ``torchrun`` (DDP).

Files in the output folder:

- ``model.pt``: the best checkpoint so far (small; ``aidetect.model.checkpoint`` format)
- ``state.pt``: everything needed to resume (weights, optimizer, schedule, progress, RNG); rewritten
  atomically every epoch (and every ``checkpoint_every_steps`` steps)
- ``history.json``: per-epoch metrics with elapsed wall time
- ``run.json``: written last, only when training finished: run id, dataset version, best epoch, ...
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from aidetect import storage
from aidetect.data.crops import PreprocessSpec
from aidetect.decision import DecisionSpec
from aidetect.errors import AidetectError, DataError
from aidetect.model.augment import Augmenter
from aidetect.model.checkpoint import save_checkpoint, unwrap
from aidetect.model.config import TrainConfig
from aidetect.model.data import (
    ImageDataset,
    SplitData,
    epoch_batches,
    load_split,
    predict_loader,
    spread,
)
from aidetect.model.inference import autocast, predict_images
from aidetect.model.lineage import git_commit, read_json, write_json
from aidetect.model.metrics import classification_metrics
from aidetect.model.networks import build_model, count_parameters, thumbnail_of, with_flip_average
from aidetect.model.retain import Flagged, base_rows, distillation_loss, make_teacher

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
STATE_FILE = "state.pt"
HISTORY_FILE = "history.json"
RUN_FILE = "run.json"


class TrainingError(AidetectError):
    """Training cannot go on (NaN loss, nothing to resume from, ...)."""


@dataclass
class TrainResult:
    out_dir: str
    model_path: str
    run_id: str | None
    dataset_version: str
    best_epoch: int
    best_val_f1: float
    epochs_run: int
    stopped_early: bool
    seconds: float

    def summary(self) -> dict[str, Any]:
        """What identifies the trained model (pipeline metadata)."""
        return {
            "run_id": self.run_id or "",
            "dataset_version": self.dataset_version,
            "best_epoch": self.best_epoch,
        }

    def metrics(self) -> dict[str, float]:
        return {
            "best_val_f1": float(self.best_val_f1),
            "epochs_run": float(self.epochs_run),
            "train_seconds": float(self.seconds),
        }


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_kind: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _device(cfg: TrainConfig, d: _Dist | None = None) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingError("device: cuda requested but no CUDA device is available")
        return torch.device("cuda", d.local_rank if d else 0)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and normalisation parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _schedule(total_steps: int, warmup_steps: int) -> Any:
    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 convolutions in hardware (AVX512-BF16 or AMX), not emulated."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def uses_amp(device: torch.device, cfg: TrainConfig) -> bool:
    """Mixed precision for training steps: CUDA (bf16 or fp16), or a CPU with native bf16."""
    if not cfg.amp:
        return False
    return device.type == "cuda" or cpu_has_native_bf16()


def uses_channels_last(device: torch.device, cfg: TrainConfig) -> bool:
    """channels_last pays off on CUDA and, with bf16 oneDNN kernels, on the CPU."""
    return cfg.channels_last and (device.type == "cuda" or uses_amp(device, cfg))


class _Tracker:
    """MLflow logging from the main process only; a no-op when tracking is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.run_id: str | None = None

    def start(
        self, cfg: TrainConfig, run_id: str | None, params: dict[str, Any], tags: dict[str, str]
    ) -> None:
        if not self.enabled:
            return
        from aidetect import registry

        if run_id:
            self.run_id = run_id
            registry.check_reachable()
            return
        self.run_id = registry.start_run(cfg.experiment, run_name=tags.get("run_name"), tags=tags)
        registry.log_params(self.run_id, params)

    def metrics(self, values: dict[str, float], step: int) -> None:
        if self.enabled and self.run_id:
            from aidetect import registry

            registry.log_metrics(self.run_id, values, step)

    def artifacts(self, local: Path, artifact_path: str | None) -> None:
        if self.enabled and self.run_id:
            from aidetect import registry

            registry.log_artifacts(self.run_id, local, artifact_path)

    def end(self, status: str) -> None:
        if self.enabled and self.run_id:
            from aidetect import registry

            with contextlib.suppress(AidetectError):
                registry.end_run(self.run_id, status)


def _open_data(data: Any, cfg: TrainConfig) -> tuple[str, DecisionSpec, SplitData, SplitData]:
    if isinstance(data, str):
        from aidetect.data.versions import open_version

        data = open_version(data)
    train_set = _with_feedback(load_split(data, "train"), cfg.max_train_images, cfg.feedback_repeat)
    val_set = _with_feedback(load_split(data, "val"), cfg.max_val_images, 1)
    if len(train_set) == 0:
        raise DataError(f"dataset version {data.version_id} has no train images")
    if len(val_set) == 0:
        raise DataError(f"dataset version {data.version_id} has no val images (needed for early stopping)")
    return data.version_id, DecisionSpec.from_meta(data.meta), train_set, val_set


def _with_feedback(split: SplitData, cap: int, repeat: int) -> SplitData:
    """A split's rows for training or validation: a grown version's reviewer-labelled images all kept
    (``cap`` limits the base's) and repeated ``repeat`` times; any other version: the plain cap.

    The feedback rows are the few hundred that say how the new domain is learnt; cutting them with the
    base rows would leave an epoch (or the checkpoint choice) blind to it."""
    fb = ~base_rows(split.rows)
    if not fb.any():
        return split.head(cap)
    base_idx, fb_idx = np.nonzero(~fb)[0], np.nonzero(fb)[0]
    if cap and len(base_idx) > cap:
        base_idx = base_idx[spread(len(base_idx), cap)]
    log.info("%d base + %d feedback images x %d", len(base_idx), len(fb_idx), repeat)
    return split.take(np.concatenate([base_idx, np.tile(fb_idx, repeat)]))


def _differences(
    meta: dict[str, Any], arch: str, size: int, cfg: TrainConfig, labels: list[str]
) -> list[str]:
    wanted = {"arch": arch, "input_size": size, "labels": labels}
    wanted |= {"mean": list(cfg.mean), "std": list(cfg.std)}
    return [f"{k} {meta.get(k)!r} != {v!r}" for k, v in wanted.items() if meta.get(k) != v]


def _fit(meta: dict[str, Any], cfg: TrainConfig, labels: list[str]) -> tuple[str, list[str]]:
    """Where a checkpoint's weights go in the network ``cfg`` trains: ``""`` (all of it) or ``"thumb"``
    (the thumbnail branch of a dual network, from a resize-mode model of that branch's arch and size),
    and how it differs when it fits nowhere (empty: its weights can be used)."""
    whole = _differences(meta, cfg.arch, cfg.input_size, cfg, labels)
    thumb = thumbnail_of(cfg.arch)
    if not whole or thumb is None:
        return "", whole
    part = _differences(meta, thumb[0], thumb[1], cfg, labels)
    if PreprocessSpec.from_meta(meta).crops:
        part.append("preprocess crops != resize")
    return ("thumb", []) if not part else ("", whole)


def _target(model: nn.Module, where: str) -> nn.Module:
    net = unwrap(model)
    return getattr(net, where) if where else net


def _teacher(init_from: str, cfg: TrainConfig, labels: list[str], device: torch.device) -> nn.Module | None:
    """The warm-start model, frozen, whose outputs on the base rows the student keeps (``cfg.distill``);
    ``None`` where its network differs (then there is no warm start either). Read from ``init_from``
    itself, so a resumed run distils towards the same model."""
    from aidetect.model.checkpoint import read_checkpoint

    ckpt = read_checkpoint(init_from)
    meta = ckpt["meta"]
    where, differ = _fit(meta, cfg, labels)
    if not differ:  # built only then: a checkpoint of another network may name an arch unknown here
        model = build_model(meta["arch"], len(labels), int(meta["input_size"]))
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            differ = [f"weights do not fit: {str(exc)[:160]}"]
    if differ:
        log.warning("no distillation from %s: %s", init_from, "; ".join(differ))
        return None
    if where:  # the thumbnail model sees the crop averaged down, as the dual network's branch does
        model = nn.Sequential(nn.AvgPool2d(cfg.input_size // int(meta["input_size"])), model)
    model = model.to(device)
    if uses_channels_last(device, cfg):
        model = model.to(memory_format=torch.channels_last)
    log.info("distilling towards %s on the base rows (weight %g)", init_from, cfg.distill)
    return make_teacher(model)


def warm_start(model: nn.Module, init_from: str, cfg: TrainConfig, labels: list[str]) -> dict[str, Any]:
    """Load ``init_from``'s weights into ``model`` when it is the same network on the same inputs and
    classes; otherwise train from scratch, and say so. Returns what happened (kept in the run)."""
    from aidetect.model.checkpoint import read_checkpoint

    ckpt = read_checkpoint(init_from)
    meta = ckpt["meta"]
    where, differ = _fit(meta, cfg, labels)
    if not differ:
        try:
            _target(model, where).load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            differ = [f"weights do not fit: {str(exc)[:160]}"]
    if differ:
        log.warning("not warm-starting from %s (%s): training from scratch", init_from, "; ".join(differ))
        return {"init_from": init_from, "warm_start": False, "warm_start_refused": "; ".join(differ)}
    log.info(
        "warm start: weights of %s (%s, trained on %s)%s",
        init_from,
        meta["arch"],
        meta.get("dataset_version"),
        f" into the {where} branch" if where else "",
    )
    return {
        "init_from": init_from,
        "warm_start": True,
        "warm_start_into": where or "all",
        "init_dataset_version": meta.get("dataset_version", ""),
    }


@dataclass
class _Loop:
    """The mutable state of one training run: what ``state.pt`` saves and ``--resume`` restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    state_path: Path
    started: float
    progress: dict[str, Any] = field(
        default_factory=lambda: {"epoch": 0, "step": 0, "best_f1": -1.0, "best_epoch": -1, "bad_epochs": 0}
    )
    history: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None
    elapsed_before: float = 0.0

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def save(self) -> None:
        payload = {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "progress": dict(self.progress),
            "history": self.history,
            "run_id": self.run_id,
            "elapsed": self.elapsed(),
            "torch_rng": torch.get_rng_state(),
        }
        buf = io.BytesIO()
        torch.save(payload, buf)
        storage.write_bytes(str(self.state_path), buf.getvalue())

    def restore(self) -> None:
        try:
            st = torch.load(self.state_path, map_location="cpu", weights_only=True)  # no pickled code
        except Exception as exc:  # a truncated file cannot exist (atomic writes) but a foreign one can
            raise TrainingError(f"cannot resume from {self.state_path}: {exc}") from None
        unwrap(self.model).load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        self.progress, self.history, self.run_id = st["progress"], st["history"], st.get("run_id")
        self.elapsed_before = float(st.get("elapsed", 0.0))
        torch.set_rng_state(st["torch_rng"])


def _setup(
    cfg: TrainConfig, num_classes: int, n_train: int, device: torch.device, d: _Dist, state_path: Path
) -> _Loop:
    model = build_model(cfg.arch, num_classes, cfg.input_size, weights=cfg.weights or None).to(device)
    if uses_channels_last(device, cfg):
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = len(epoch_batches(n_train, cfg.batch_size, cfg.seed, 0, d.rank, d.world))
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(steps_per_epoch * cfg.epochs, warmup))
    fp16 = device.type == "cuda" and cfg.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)  # bf16 needs no loss scaling
    return _Loop(model, optimizer, scheduler, scaler, state_path, time.monotonic())


def train(
    cfg: TrainConfig, data: Any, out_dir: str | Path, *, resume: bool = False, init_from: str | None = None
) -> TrainResult:
    """Train on ``data`` (a dataset version id or ``DatasetVersion``) into ``out_dir``; ``init_from``: a
    checkpoint (the champion's) to warm-start from when the network matches (:func:`warm_start`)."""
    out = Path(out_dir)
    d = _init_distributed(_device(cfg).type)
    device = _device(cfg, d)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    state_path, run_path = out / STATE_FILE, out / RUN_FILE
    if run_path.exists() and resume:
        done = read_json(run_path)
        log.info("training in %s already finished; nothing to resume", out)
        return TrainResult(**{k: done[k] for k in TrainResult.__dataclass_fields__})
    if (state_path.exists() or run_path.exists()) and not resume:
        raise TrainingError(
            f"{out} already holds a training run; pass --resume to continue it or use a new --out"
        )
    if cfg.track and d.main:  # fail fast, before reading any data
        from aidetect import registry

        registry.check_reachable()
    version_id, rule, train_set, val_set = _open_data(data, cfg)
    labels = list(rule.labels)
    seed_everything(cfg.seed)
    loop = _setup(cfg, len(labels), len(train_set), device, d, state_path)
    started_from: dict[str, Any] = {}
    if resume and state_path.exists():
        loop.restore()
        log.info("resuming at epoch %d step %d", loop.progress["epoch"], loop.progress["step"])
    elif init_from:
        started_from = warm_start(loop.model, init_from, cfg, labels)
    if d.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        if device.type == "cuda":  # batch statistics over all GPUs (SyncBatchNorm is CUDA-only)
            loop.model = nn.SyncBatchNorm.convert_sync_batchnorm(loop.model)
        loop.model = nn.parallel.DistributedDataParallel(loop.model, device_ids=ids)
    meta = {
        "arch": cfg.arch,
        "num_classes": len(labels),
        "input_size": cfg.input_size,
        "labels": labels,
        "real_label": rule.real_label,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "threshold": 0.5,
        "threshold_policy": "default",
        "dataset_version": version_id,
        "preprocess": cfg.preprocess.resolved(cfg.input_size).to_meta(),
        "flip_average": cfg.flip_average,
        **started_from,
    }
    tracker = _Tracker(cfg.track and d.main)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        params = {
            **asdict(cfg),
            "dataset_version": version_id,
            "world_size": d.world,
            "parameters": count_parameters(loop.model),
        }
        tags = {
            "dataset_version": version_id,
            "git_commit": git_commit(),
            "run_name": f"{cfg.arch}-{version_id[:8]}",
            **{k: str(v) for k, v in started_from.items()},
        }
        tracker.start(cfg, loop.run_id, params, tags)
        loop.run_id = tracker.run_id
        write_json(
            out / "config.json",
            {
                "train": asdict(cfg),
                "dataset_version": version_id,
                "labels": labels,
                "world_size": d.world,
                **started_from,
            },
        )
    augment = Augmenter(cfg.augment)
    train_ds: ImageDataset | Flagged = ImageDataset(
        train_set.images,
        train_set.targets,
        cfg.input_size,
        cfg.mean,
        cfg.std,
        augment,
        cfg.seed,
        preprocess=cfg.preprocess,
    )
    teacher = _teacher(init_from, cfg, labels, device) if init_from and cfg.distill > 0 else None
    if teacher is not None:
        train_ds = Flagged(train_ds, base_rows(train_set.rows))
    # an ordered loader with its own generator (see predict_loader); crops models are validated on
    # their crop grids, aggregated as served
    val_loader = predict_loader(
        val_set,
        cfg.input_size,
        cfg.mean,
        cfg.std,
        256,
        seed=cfg.seed,
        preprocess=cfg.preprocess,
        rule=rule,
        num_workers=cfg.num_workers,
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    use_amp = device.type == "cuda" and cfg.amp
    stopped_early = False
    try:
        for epoch in range(loop.progress["epoch"], cfg.epochs):
            t0 = time.monotonic()
            train_loss = _run_epoch(cfg, loop, train_ds, loss_fn, device, d, epoch, teacher)
            stop = False
            loop.progress.update(epoch=epoch + 1, step=0)
            if d.main:
                val = _validate(loop.model, val_loader, device, rule, use_amp, cfg.flip_average)
                row = {
                    "epoch": epoch + 1,
                    "train_loss": train_loss,
                    "lr": loop.optimizer.param_groups[0]["lr"],
                    "epoch_seconds": time.monotonic() - t0,
                    "elapsed_seconds": loop.elapsed(),
                    **{f"val_{k}": v for k, v in val.items()},
                }
                loop.history.append(row)
                # a model that has seen only clean pixels is not the robust model asked for: the clean
                # epochs neither become the best checkpoint nor count towards early stopping
                eligible = epoch + 1 > cfg.augment.clean_epochs
                if eligible and val["f1"] > loop.progress["best_f1"]:
                    loop.progress.update(best_f1=val["f1"], best_epoch=epoch + 1, bad_epochs=0)
                    ckpt_meta = {**meta, "epoch": epoch + 1, "val_f1": val["f1"]}
                    save_checkpoint(str(out / MODEL_FILE), loop.model, ckpt_meta)
                elif eligible:
                    loop.progress["bad_epochs"] += 1
                loop.save()
                write_json(out / HISTORY_FILE, {"history": loop.history})
                tracker.metrics({k: v for k, v in row.items() if k != "epoch"}, epoch + 1)
                log.info(
                    "epoch %d: %s",
                    epoch + 1,
                    {k: round(v, 4) for k, v in row.items() if isinstance(v, float)},
                )
                patience = cfg.early_stopping_patience
                stop = bool(patience and loop.progress["bad_epochs"] >= patience)
            if _broadcast_flag(stop, d, device):
                stopped_early = True
                break
    except BaseException:
        tracker.end("FAILED")
        raise
    result = TrainResult(
        out_dir=str(out),
        model_path=str(out / MODEL_FILE),
        run_id=loop.run_id,
        dataset_version=version_id,
        best_epoch=loop.progress["best_epoch"],
        best_val_f1=loop.progress["best_f1"],
        epochs_run=len(loop.history),
        stopped_early=stopped_early,
        seconds=loop.elapsed(),
    )
    if d.main:
        _finish(out, tracker, result, loop.history)
    if d.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _broadcast_flag(flag: bool, d: _Dist, device: torch.device) -> bool:
    """Rank 0's decision (early stop) for every rank; the tensor lives where the backend wants it."""
    if d.world <= 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def _run_epoch(
    cfg: TrainConfig,
    loop: _Loop,
    ds: ImageDataset | Flagged,
    loss_fn: nn.Module,
    device: torch.device,
    d: _Dist,
    epoch: int,
    teacher: nn.Module | None = None,
) -> float:
    """One epoch (from the saved step when resuming inside it); returns the mean training loss. With a
    ``teacher``, the items carry a distil flag and the loss adds ``cfg.distill`` x the distillation term."""
    from tqdm import tqdm

    ds.set_epoch(epoch)
    batches = epoch_batches(len(ds), cfg.batch_size, cfg.seed, epoch, d.rank, d.world)
    start_step = loop.progress["step"] if loop.progress["epoch"] == epoch else 0
    loader = torch.utils.data.DataLoader(
        ds,
        batch_sampler=batches[start_step:],
        num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed + epoch),
    )
    loop.model.train()
    use_amp = uses_amp(device, cfg)
    channels_last = uses_channels_last(device, cfg)
    total, count = 0.0, 0
    bar = tqdm(
        total=len(batches),
        initial=start_step,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=not (cfg.progress and d.main),
        mininterval=5.0,
        leave=False,
    )
    for step, batch in enumerate(loader, start=start_step):
        x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, use_amp):
            logits = loop.model(x)
            loss = loss_fn(logits.float(), y)
            if teacher is not None:
                with torch.no_grad():
                    kept = teacher(x)
                mask = batch[2].to(device)
                loss = loss + cfg.distill * distillation_loss(logits, kept, mask, cfg.distill_temperature)
        finite = torch.isfinite(loss.detach()).float()
        if d.world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            lr = loop.optimizer.param_groups[0]["lr"]
            raise TrainingError(
                f"loss became NaN/inf at epoch {epoch + 1} step {step + 1} (lr {lr:.2e}); lower the lr"
            )
        loop.optimizer.zero_grad(set_to_none=True)
        loop.scaler.scale(loss).backward()
        loop.scaler.step(loop.optimizer)
        loop.scaler.update()
        loop.scheduler.step()
        total += float(loss.detach()) * len(y)
        count += len(y)
        bar.update(1)
        bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
        every = cfg.checkpoint_every_steps
        if every and (step + 1) % every == 0 and step + 1 < len(batches):
            loop.progress.update(epoch=epoch, step=step + 1)
            if d.main:
                loop.save()
    bar.close()
    return total / max(1, count)


def _validate(
    model: nn.Module, loader: Any, device: torch.device, rule: DecisionSpec, amp: bool, flip_average: bool
) -> dict[str, float]:
    probs, targets = predict_images(with_flip_average(unwrap(model), flip_average), loader, device, amp)
    m = classification_metrics(probs, targets, rule)
    eps = 1e-7
    nll = float(-np.log(np.clip(probs[np.arange(len(targets)), targets], eps, 1.0)).mean())
    return {"loss": nll, "accuracy": m["accuracy"], "f1": m["f1"], "roc_auc": m["roc_auc"], "ece": m["ece"]}


def _finish(out: Path, tracker: _Tracker, result: TrainResult, history: list[dict[str, Any]]) -> None:
    from aidetect.model.plots import training_curves

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    training_curves(history, plots / "training_curves.png")
    if tracker.enabled and tracker.run_id:
        tracker.artifacts(out / MODEL_FILE, "checkpoint")
        tracker.artifacts(out / "config.json", None)
        tracker.artifacts(out / HISTORY_FILE, None)
        tracker.artifacts(plots, "plots")
        tracker.metrics(
            {"best_val_f1": result.best_val_f1, "train_seconds": result.seconds}, result.epochs_run
        )
        tracker.end("FINISHED")
    write_json(out / RUN_FILE, {**asdict(result), "git_commit": git_commit(), "finished": True})
