"""Benchmark: the closed loop on a new domain. A registered model is served, a domain's images arrive as
traffic and are kept, N of them are labelled through the review path (the label log, as `aidetect
feedback import` writes it), and the loop runs: grow -> retrain (warm start) -> gate -> register.

    nice -n 5 .venv/bin/python bench/close_loop.py --base-model models:/aidetect-detector/1 \
        --domain ../shared/datasets/real-vs-ai-512-dev.parquet --labelled 300 --out bench/results/close-loop \
        [--home bench/results/cifake-home]

Before and after are measured the same way, through `aidetect serve` (the served bundle's decision):
AUC and accuracy on the domain images that were NOT labelled, accuracy on the CIFAKE test split of the
base model's dataset version. Any parquet (or folder, zip) of the HF layout works: image bytes + label.
The last line printed is one JSON object (also in ``<out>/close_loop.json``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
AIDETECT = [sys.executable, "-m", "aidetect.cli"]


class Clock:
    """Minutes per stage, in order."""

    def __init__(self) -> None:
        self.minutes: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Any:
        t = time.monotonic()
        print(f"[close-loop] {name} ...", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            self.minutes[name] = round(self.minutes.get(name, 0.0) + (time.monotonic() - t) / 60, 2)


@contextmanager
def serving(model: str, log: Path, env: dict[str, str]) -> Any:
    """``aidetect serve`` (REST only) until the block ends; yields its base URL. A large model on a busy
    machine: up to 300 s to be ready, 60 s to flush its inference log and kept images on SIGTERM."""
    from aidetect.serving.client import serving as served

    with served(model, log, env=env, timeout=300, stop_timeout=60, interval=1.0) as url:
        yield url


def score(url: str, images: list[bytes], batch: int = 32) -> tuple[list[float], list[str]]:
    """The served model's fake score and label for each image."""
    from aidetect.serving.client import V2Client

    client = V2Client(url, timeout=120)
    model = client.default_model()
    scores: list[float] = []
    labels: list[str] = []
    for i in range(0, len(images), batch):
        for p in client.predict(model, images[i : i + batch]):
            scores.append(float(p.probability_fake if p.probability_fake is not None else 0.0))
            labels.append(p.label)
    return scores, labels


def crops_per_image(bundle_uri: str) -> int:
    """The most crops one image costs the served bundle (the server bounds crops per request)."""
    from aidetect.serving.bundle import BUNDLE_FILE, BundleSpec

    path = Path(bundle_uri) / BUNDLE_FILE
    if not path.exists():  # a registered version: resize models of record
        return 1
    spec = BundleSpec.from_json(path.read_text()).preprocess_spec
    return spec.max_crops if spec.crops else 1


def measure(
    url: str,
    domain: list[tuple[bytes, str]],
    cifake: list[tuple[bytes, str]],
    real: str,
    per_image: int = 1,
) -> dict[str, float]:
    """AUC and accuracy on the unlabelled domain images, accuracy on the CIFAKE test split.
    ``per_image``: crops per image, so a request stays within the server's crop budget (64)."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, float] = {}
    s, pred = score(url, [d for d, _ in domain], batch=max(1, 32 // per_image))
    truth = [t for _, t in domain]
    is_fake = [int(t != real) for t in truth]
    out["domain_auc"] = round(float(roc_auc_score(is_fake, s)), 4) if len(set(is_fake)) == 2 else float("nan")
    out["domain_accuracy"] = round(sum(p == t for p, t in zip(pred, truth, strict=True)) / len(truth), 4)
    _, pred = score(url, [d for d, _ in cifake], batch=max(1, 64 // per_image))  # serving max_batch
    truth = [t for _, t in cifake]
    out["cifake_accuracy"] = round(sum(p == t for p, t in zip(pred, truth, strict=True)) / len(truth), 4)
    return out


def read_domain(uri: str, labels: list[str]) -> list[tuple[str, bytes, str]]:
    """``(sha256, bytes, label)`` of every readable image of the domain source, in the model's labels."""
    from aidetect.data.config import load_data_config
    from aidetect.data.labels import LabelMatcher
    from aidetect.data.sources import open_source

    matcher = LabelMatcher(labels)
    out: dict[str, tuple[str, bytes, str]] = {}
    for item in open_source(uri, load_data_config(overrides={"labels": labels})):
        label = matcher.get(item.label)
        if item.error is None and label is not None:
            sha = hashlib.sha256(item.data).hexdigest()
            out.setdefault(sha, (sha, item.data, label))
    if not out:
        raise SystemExit(f"{uri}: no readable images labelled {labels}")
    return list(out.values())


def base_train_config(name: str, version: str, fallback_preset: str) -> dict[str, Any]:
    """The training config the base model was trained with (its run's ``config.json``), so the warm
    start finds the same network; the preset when the run did not keep it."""
    from aidetect import registry
    from aidetect.model.config import load_train_config

    info = registry.get_version(name, version)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = registry.download_run_artifacts(info.run_id, "config.json", tmp)
            return dict(json.loads(Path(path).read_text())["train"])
    except Exception as exc:  # an older run without the artifact: MLflow raises its own types
        print(
            f"[close-loop] no config.json in run {info.run_id} ({exc}); preset {fallback_preset}",
            file=sys.stderr,
        )
        return asdict(load_train_config(fallback_preset))


# the retrain recipe of a challenger of the base model's own network (tuned in bench/README.md);
# with --challenger-preset the preset's values are used instead, a flag given on the command line wins
RECIPE = {"epochs": 6, "lr": 1e-3, "feedback_repeat": 40, "distill": 1.0, "max_train_images": 15000}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-model", required=True, help="models:/<name>/<version> in the configured registry")
    p.add_argument("--domain", required=True, help="parquet (HF layout), folder or zip of labelled images")
    p.add_argument("--labelled", type=int, required=True, help="how many domain images reviewers label")
    p.add_argument("--out", required=True)
    p.add_argument("--home", help="AIDETECT_HOME holding the registry and datasets (default: the env's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=20.0, help="traffic: requests per second")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--feedback-repeat", type=int)
    p.add_argument("--distill", type=float, help="weight of keeping the base model's outputs")
    p.add_argument("--max-train-images", type=int, help="base images per epoch (0: all)")
    p.add_argument("--gates", help="gates YAML (default configs/gates.yaml)")
    p.add_argument("--alias", default="", help="alias for the registered challenger (default: none)")
    p.add_argument("--cifake-max", type=int, default=0, help="CIFAKE test images measured (0: all)")
    p.add_argument("--preset", default="cifake-cpu", help="when the base run kept no config.json")
    p.add_argument(
        "--challenger-preset",
        default="",
        help="train the challenger with this preset (e.g. dual-loop: the base model becomes the thumbnail "
        "branch of a dual network) instead of the base model's own training config",
    )
    args = p.parse_args()
    if args.home:
        os.environ["AIDETECT_HOME"] = str(Path(args.home).resolve())
    for k, v in {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }.items():
        os.environ.setdefault(k, v)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from aidetect import flows, registry
    from aidetect.data.versions import open_version
    from aidetect.feedback.grow import load_feedback_config
    from aidetect.refs import ModelRef

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    store, labels_root = out / "store", out / "labels"
    clock = Clock()
    stores = flows.Stores().activate()
    ref = ModelRef.parse(args.base_model, stores.name)
    info = registry.get_version(ref.name, ref.ref)
    base_uri = f"models:/{ref.name}/{info.version}"
    base_version = open_version(info.tags["dataset_version"], stores.datasets)
    real = base_version.real_label
    env = {
        **os.environ,
        "AIDETECT_FEEDBACK__CAPTURE__STORE_URI": str(store),
        "AIDETECT_FEEDBACK__CAPTURE__SAMPLE_RATE": "1.0",  # keep every image of the replay
        "AIDETECT_FEEDBACK__LABELS__ROOT": str(labels_root),
    }
    domain = read_domain(args.domain, base_version.labels)
    if not 0 < args.labelled < len(domain):
        raise SystemExit(f"--labelled must be in 1..{len(domain) - 1} ({len(domain)} domain images)")
    rows = base_version.rows("test")
    cifake = list(zip(base_version.read_images("test"), rows["label"], strict=True))
    if args.cifake_max:
        cifake = random.Random(args.seed).sample(cifake, min(args.cifake_max, len(cifake)))

    # serve the base model, replay the domain as traffic (every image kept), measure "before"
    with ExitStack() as stack:
        with clock.stage("serve"):
            url = stack.enter_context(serving(base_uri, out / "serve-base.log", env))
        with clock.stage("traffic"):
            sim = [*AIDETECT, "simulate", args.domain, "--url", url, "--rate", str(args.rate)]
            sim += ["--limit", str(len(domain)), "--review-via", "none", "--store", str(store)]
            done = subprocess.run(sim, env=env, capture_output=True, text=True, check=False)
            (out / "simulate.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                raise SystemExit(f"aidetect simulate failed ({done.returncode}); see {out / 'simulate.log'}")
            traffic = json.loads(done.stdout.strip().splitlines()[-1])
        kept = {sha for sha, _, _ in domain if (store / sha[:2] / sha).exists()}
        chosen = set(random.Random(args.seed).sample(sorted(kept), min(args.labelled, len(kept))))
        unlabelled = [(data, label) for sha, data, label in domain if sha not in chosen]
        with clock.stage("measure_before"):
            before = measure(url, unlabelled, cifake, real)

    # reviewers label N kept images: one CSV through `aidetect feedback import` into the label log
    with clock.stage("label"):
        csv_path = out / "reviewer-labels.csv"
        with csv_path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["sha256", "label", "source", "author"])
            w.writerows(
                [sha, label, "review-page", "bench-reviewer"] for sha, _, label in domain if sha in chosen
            )
        imp = [*AIDETECT, "feedback", "import", str(csv_path), "--labels", ",".join(base_version.labels)]
        imp += ["--labels-root", str(labels_root), "--store", str(store)]
        subprocess.run(imp, env=env, check=True, capture_output=True)

    with clock.stage("grow"):
        cfg = load_feedback_config(
            overrides={
                "labels": {"root": str(labels_root)},
                "capture": {"store_uri": str(store)},
                "grow": {"min_feedback_rows": min(20, args.labelled)},
            }
        )
        grown = flows.grow(flows.DatasetRef.resolve(base_version.version_id), stores, cfg=cfg)
        validated = flows.validate(
            grown.dataset, stores, out=str(out / "validation"), raise_on_critical=False
        )

    with clock.stage("retrain"):
        from aidetect.model.config import load_train_config

        defaults: dict[str, Any]
        if args.challenger_preset:  # configs/presets/<preset>.yaml over configs/train.yaml
            train_cfg, defaults = asdict(load_train_config(args.challenger_preset)), {}
        else:
            train_cfg, defaults = base_train_config(ref.name, info.version, args.preset), RECIPE
        # the recipe used (recorded in settings): a flag given wins, then the defaults, then the config
        given = {k: getattr(args, k) for k in RECIPE}
        recipe = {k: v if v is not None else defaults.get(k, train_cfg[k]) for k, v in given.items()}
        overrides = {
            **train_cfg,
            **recipe,
            "warmup_epochs": 0.0,
            "early_stopping_patience": 0,
            "progress": False,
            "track": True,
            "checkpoint_every_steps": 0,
        }
        model, trained = flows.train(
            grown.dataset, stores, out / "train", overrides=overrides, init_from=base_uri
        )

    with clock.stage("gate"):
        ev = flows.evaluate(
            model, stores, dataset=grown.dataset, out=out / "eval", gates=args.gates, champion=base_uri
        )

    registered: dict[str, Any] | None = None
    with clock.stage("register"):
        bundle = flows.optimize(ev, stores, out / "bundle", dataset=grown.dataset)
        if ev.passed:
            reg = flows.register(model, stores, evaluation=ev, bundle=bundle, alias=args.alias or None)
            registered = reg.to_dict()

    with ExitStack() as stack:
        with clock.stage("serve"):
            url = stack.enter_context(serving(bundle.uri, out / "serve-after.log", env))
        with clock.stage("measure_after"):
            after = measure(url, unlabelled, cifake, real, crops_per_image(bundle.uri))

    report = ev.report
    prov = report["slices"].get("provenance", {})
    champ = ((report.get("champion") or {}).get("slices") or {}).get("provenance", {})
    result = {
        "domain_auc_before": before["domain_auc"],
        "domain_auc_after": after["domain_auc"],
        "domain_accuracy_before": before["domain_accuracy"],
        "domain_accuracy_after": after["domain_accuracy"],
        "cifake_accuracy_before": before["cifake_accuracy"],
        "cifake_accuracy_after": after["cifake_accuracy"],
        "minutes": clock.minutes,
        "base_model": base_uri,
        "domain": str(args.domain),
        "domain_images": len(domain),
        "labelled": len(chosen),
        "unlabelled_measured": len(unlabelled),
        "cifake_test_measured": len(cifake),
        "traffic": traffic,
        "grown_version": grown.dataset.version_id,
        "grown": {k: grown.report.to_dict()[k] for k in ("added", "num_added", "feedback_share", "skipped")},
        "validation_passed": validated.result.success,
        "warm_start": bool(json.loads((out / "train" / "config.json").read_text()).get("warm_start")),
        "train_seconds": round(trained.seconds, 1),
        "gates_passed": ev.passed,
        "gate_failures": ev.failures,
        "gate_provenance": {
            g: {
                "n": m["n"],
                "accuracy": round(m["accuracy"], 4),
                "champion_accuracy": round(champ.get(g, {}).get("accuracy", float("nan")), 4),
            }
            for g, m in prov.items()
        },
        "registered": registered,
        "settings": {**recipe, "seed": args.seed, "challenger_preset": args.challenger_preset},
    }
    (out / "close_loop.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    from aidetect.errors import AidetectError

    try:
        sys.exit(main())
    except AidetectError as exc:  # e.g. a server that died: one line naming its log, no traceback
        sys.exit(f"error: {exc}")
