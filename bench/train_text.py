"""Text detection benchmark (issue 19) on ../shared/datasets/ai-text-l2r.parquet.

Ingest and validate the shared text data, then for both text models (byte n-gram TF-IDF + logistic
regression, byte-level CNN): train on the group split's train rows, tune on val only, evaluate with the
gates, optimize, register; then measure generalisation the way the issue asks: hold out whole domains
(k folds over the 15 domains: train on the others, AUC on the held-out domains) and one generator at a
time (train without that generator's rewrites, AUC of its test-split rewrites against the test-split
human texts). Writes ``<out>/results.json`` and prints a Markdown summary.

    nice -n 5 .venv/bin/python bench/train_text.py --out /tmp/text-bench
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from aidetect.data.text.validation import validate_text_version
from aidetect.data.text.versions import ingest_text, open_text_version, read_texts
from aidetect.decision import DecisionSpec
from aidetect.model.text import runtime
from aidetect.model.text.bundle import optimize_text, register_text
from aidetect.model.text.config import (
    TextTrainConfig,
    load_text_eval_config,
    load_text_gates_config,
    load_text_train_config,
)
from aidetect.model.text.evaluate import evaluate_text
from aidetect.model.text.train import train_text

log = logging.getLogger("bench.train_text")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ai-text-l2r.parquet"


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def _fit_score(
    cfg: TextTrainConfig,
    train: list[str],
    y: np.ndarray,
    val: list[str],
    vy: np.ndarray,
    test: list[str],
    tmp: Path,
) -> np.ndarray:
    """Fit ``cfg.arch`` on (train, y), selecting on val; fake score of ``test`` through its ONNX graph."""
    from aidetect.model.text import cnn, tfidf

    spec = DecisionSpec(("human", "ai"), "human")
    if cfg.arch == "tfidf_lr":
        graph = tfidf.to_onnx(tfidf.fit(train, y, cfg.tfidf), 2).SerializeToString()
    else:
        model, _ = cnn.train_cnn(
            train, y, val, vy, lambda p, t: _auc(spec.is_fake(t), spec.fake_score(p)), cfg.cnn, 2
        )
        cnn.export_cnn(model, tmp / "fold.onnx")
        graph = (tmp / "fold.onnx").read_bytes()
    return spec.fake_score(runtime.probabilities(runtime.session(graph), test, cfg.max_len))


def _inner_pick(
    cands: dict[str, TextTrainConfig],
    rows: Any,
    texts: np.ndarray,
    y: np.ndarray,
    train_domains: list[str],
    inner_folds: int,
    tmp: Path,
) -> tuple[str, dict[str, float]]:
    """The candidate with the best mean AUC over inner folds of whole domains, all of them training
    domains of the outer fold: the outer fold's held-out domains are never looked at."""
    if len(cands) == 1:
        return next(iter(cands)), {}
    split, dom = rows["split"].to_numpy(), rows["domain"].to_numpy()
    scores = {}
    for name, cfg in cands.items():
        aucs = []
        for k in range(inner_folds):
            inner = np.isin(dom, train_domains[k::inner_folds])
            rest = np.isin(dom, train_domains) & ~inner
            tr, va = rest & (split == "train"), rest & (split == "val")
            s = _fit_score(cfg, list(texts[tr]), y[tr], list(texts[va]), y[va], list(texts[inner]), tmp)
            aucs.append(_auc(y[inner], s))
        scores[name] = float(np.mean(aucs))
        log.info("inner validation %s over %s: AUC %.4f", name, train_domains, scores[name])
    return max(scores, key=lambda n: scores[n]), scores


def held_out(
    version: Any,
    cfg: TextTrainConfig,
    folds: int,
    tmp: Path,
    generators: bool = True,
    candidates: dict[str, TextTrainConfig] | None = None,
    inner_folds: int = 3,
) -> dict[str, Any]:
    """AUC on whole held-out domains (k folds) and on one held-out generator at a time.

    With several ``candidates`` each outer domain fold picks its configuration by inner validation over
    its training domains (:func:`_inner_pick`); the generator hold-outs use ``cfg``."""
    rows = version.rows()
    texts = np.array(read_texts(version), dtype=object)
    y = (rows["label"] != version.real_label).to_numpy().astype(np.int64)
    domains = sorted(rows["domain"].unique())
    cands = candidates or {"default": cfg}
    out: dict[str, Any] = {"domains": {}, "generators": {}}
    for k in range(folds):
        hold = domains[k::folds]
        started = time.perf_counter()
        chosen, inner = _inner_pick(
            cands, rows, texts, y, [d for d in domains if d not in hold], inner_folds, tmp
        )
        test_m = rows["domain"].isin(hold).to_numpy()
        tr = ~test_m & (rows["split"] == "train").to_numpy()
        va = ~test_m & (rows["split"] == "val").to_numpy()
        fold_cfg = cands[chosen]
        s = _fit_score(fold_cfg, list(texts[tr]), y[tr], list(texts[va]), y[va], list(texts[test_m]), tmp)
        auc = _auc(y[test_m], s)
        per = {
            d: _auc(y[(rows["domain"] == d).to_numpy()], s[(rows["domain"][test_m] == d).to_numpy()])
            for d in hold
        }
        out["domains"][f"fold{k}"] = {
            "held_out": hold,
            "chosen": chosen,
            "inner_auc": inner,
            "auc": auc,
            "per_domain": per,
            "seconds": time.perf_counter() - started,
        }
        log.info("%s held-out domains %s (%s): AUC %.4f", cfg.arch, hold, chosen, auc)
    gens = sorted(g for g in rows["generator"].unique() if g != "human") if generators else []
    for g in gens:
        is_g = (rows["generator"] == g).to_numpy()
        tr = (rows["split"] == "train").to_numpy() & ~is_g
        va = (rows["split"] == "val").to_numpy() & ~is_g
        test_m = (rows["split"] == "test").to_numpy() & (is_g | (y == 0))
        s = _fit_score(cfg, list(texts[tr]), y[tr], list(texts[va]), y[va], list(texts[test_m]), tmp)
        out["generators"][g] = {
            "auc": _auc(y[test_m], s),
            "n_ai": int(y[test_m].sum()),
            "n_human": int((y[test_m] == 0).sum()),
        }
        log.info("%s held-out generator %s: AUC %.4f", cfg.arch, g, out["generators"][g]["auc"])
    aucs = [f["auc"] for f in out["domains"].values()]
    out["domain_auc_mean"] = float(np.mean(aucs)) if aucs else float("nan")
    out["domain_auc_min"] = float(np.min(aucs)) if aucs else float("nan")
    return out


def tune_tfidf(version: Any, cfg: TextTrainConfig, tmp: Path) -> tuple[TextTrainConfig, list[dict[str, Any]]]:
    """A small grid on the val split only (in-domain): n-gram length and regularisation."""
    tr, y, _ = _split(version, "train")
    va, vy, _ = _split(version, "val")
    tried = []
    best, best_cfg = -1.0, cfg
    for ngram_max in (4, 5):
        for c in (3.0, 10.0, 30.0):
            trial = replace(cfg, tfidf=replace(cfg.tfidf, ngram_max=ngram_max, C=c))
            auc = _auc(vy, _fit_score(trial, tr, y, va, vy, va, tmp))
            tried.append({"ngram_max": ngram_max, "C": c, "val_auc": auc})
            log.info("tune tfidf ngram_max=%d C=%s: val AUC %.4f", ngram_max, c, auc)
            if auc > best:
                best, best_cfg = auc, trial
    return best_cfg, tried


def _split(version: Any, split: str) -> tuple[list[str], np.ndarray, Any]:
    rows = version.rows(split)
    return read_texts(version, split), (rows["label"] != version.real_label).to_numpy().astype(np.int64), rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default="/tmp/aidetect-text-bench")
    ap.add_argument("--archs", default="tfidf_lr,byte_cnn")
    ap.add_argument("--folds", type=int, default=5, help="domain folds (15 domains: 5 folds of 3)")
    ap.add_argument("--cnn-folds", type=int, default=3)
    ap.add_argument("--no-tune", action="store_true")
    ap.add_argument("--no-held-out", action="store_true")
    ap.add_argument("--cnn-epochs", type=int, default=0)
    ap.add_argument("--cnn-max-seconds", type=float, default=0, help="time budget per CNN fit")
    ap.add_argument("--cnn-generators", action="store_true", help="also leave-one-generator-out for the CNN")
    ap.add_argument(
        "--candidates",
        default="",
        help="comma-separated text_train config files: each held-out-domain fold picks one by inner "
        "validation over its training domains",
    )
    ap.add_argument("--inner-folds", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("mlflow", "alembic", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIDETECT_HOME", str(out / "home"))
    results: dict[str, Any] = {
        "data": args.data,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    started = time.perf_counter()
    ing = ingest_text(args.data, root=str(out / "datasets"))
    version = open_text_version(ing.version_id, str(out / "datasets"))
    results["ingest"] = {
        "version": ing.version_id,
        "seconds": ing.seconds,
        "counts": ing.counts,
        "skipped": len(ing.skipped),
    }
    val = validate_text_version(version)
    results["validation"] = {
        "success": val.success,
        "warnings": [w["name"] for w in val.warnings],
        "seconds": val.seconds,
        "near": val.duplicates["near"],
    }
    log.info(
        "ingest %s (%.1fs), validation %s (%.1fs)", ing.version_id, ing.seconds, val.success, val.seconds
    )
    tmp = out / "tmp"
    tmp.mkdir(exist_ok=True)
    for arch in args.archs.split(","):
        overrides: dict[str, Any] = {"arch": arch}
        cnn_over: dict[str, Any] = {}
        if args.cnn_epochs:
            cnn_over["epochs"] = args.cnn_epochs
        if args.cnn_max_seconds:
            cnn_over["max_seconds"] = args.cnn_max_seconds
        if cnn_over:
            overrides["cnn"] = cnn_over
        cfg = load_text_train_config(overrides=overrides)
        r: dict[str, Any] = {}
        if arch == "tfidf_lr" and not args.no_tune:
            cfg, r["tuning"] = tune_tfidf(version, cfg, tmp)
        t0 = time.perf_counter()
        model_dir = train_text(version, out / arch, cfg)
        r["train_seconds"] = time.perf_counter() - t0
        report = evaluate_text(
            model_dir,
            version,
            model_dir / "eval",
            eval_cfg=load_text_eval_config(),
            gates_cfg=load_text_gates_config(),
        )
        m = report["metrics"]
        r["test"] = {
            k: m[k]
            for k in ("n", "accuracy", "f1", "fake_recall", "fake_precision", "roc_auc", "ece", "threshold")
        }
        r["gates"] = {"passed": report["passed"], "failures": report["gates"]["failures"]}
        r["slices"] = report["slices"]
        r["perturbations"] = report["perturbations"]
        r["optimize"] = optimize_text(model_dir / "eval", version, out / f"{arch}-bundle")
        if report["passed"]:
            info = register_text(
                model_dir,
                out / f"{arch}-bundle",
                version,
                model_name=f"aidetect-text-{arch.replace('_', '-')}",
            )
            r["registered"] = f"{info.name}/{info.version}"
        if not args.no_held_out:
            folds = args.folds if arch == "tfidf_lr" else args.cnn_folds
            cands = {
                Path(c).stem: load_text_train_config(c, {"arch": arch})
                for c in args.candidates.split(",")
                if c
            }
            r["held_out"] = held_out(
                version,
                cfg,
                folds,
                tmp,
                arch == "tfidf_lr" or args.cnn_generators,
                cands or None,
                args.inner_folds,
            )
        results[arch] = r
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    results["seconds"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))
    return 0


def summary(results: dict[str, Any]) -> str:
    lines = [
        "| model | test AUC | test acc | held-out-domain AUC (mean / min) | per-generator recall "
        "| latency/text | texts/s (1 thread, batch 32) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arch in ("tfidf_lr", "byte_cnn"):
        r = results.get(arch)
        if not r:
            continue
        rec = ", ".join(
            f"{g} {m['fake_recall']:.3f}" for g, m in r["slices"].get("generator", {}).items() if g != "human"
        )
        ho = r.get("held_out", {})
        v = r["optimize"]["variants"][0]
        lines.append(
            f"| {arch} | {r['test']['roc_auc']:.4f} | {r['test']['accuracy']:.4f} | "
            f"{ho.get('domain_auc_mean', float('nan')):.4f} / "
            f"{ho.get('domain_auc_min', float('nan')):.4f} | {rec} | "
            f"{v['latency_ms_batch1']:.3f} ms | {v['throughput_batch32']:.0f} |"
        )
        for g, m in ho.get("generators", {}).items():
            lines.append(f"|  leave-one-generator-out {g} | {m['auc']:.4f} | | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
