"""Register the best checkpoint of a (still running or interrupted) training run as a model version in a
home of its own, as a base for bench/close_loop.py when the model of record is not registered yet.

    .venv/bin/python bench/close_loop_base.py --run bench/results/cifake-run/train \
        --datasets bench/results/cifake-home/datasets --home bench/results/close-loop-home

The dataset version the checkpoint was trained on is hard-linked into the new home (versions are
immutable); the checkpoint is logged to a fresh tracked run, evaluated (gates: ``--gates``), given its
serving bundle and registered. Prints the ``models:/`` URI as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="training folder with model.pt and config.json")
    p.add_argument("--datasets", required=True, help="datasets root holding the version it was trained on")
    p.add_argument("--home", required=True, help="the new AIDETECT_HOME (registry + datasets)")
    p.add_argument("--gates", help="gates YAML for this base (default configs/gates.yaml)")
    args = p.parse_args()
    home = Path(args.home).resolve()
    os.environ["AIDETECT_HOME"] = str(home)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from aidetect import flows, registry
    from aidetect.model.checkpoint import read_checkpoint
    from aidetect.model.lineage import git_commit, read_json, write_json

    src = Path(args.run)
    folder = home / "base-train"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy2(src / "model.pt", folder / "model.pt")  # the best epoch so far: copied before it moves on
    shutil.copy2(src / "config.json", folder / "config.json")
    meta = read_checkpoint(str(folder / "model.pt"))["meta"]
    version = meta["dataset_version"]
    target = home / "datasets" / version
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(Path(args.datasets) / version), str(target)], check=True)
    stores = flows.Stores().activate()
    config = read_json(folder / "config.json")
    run_id = registry.start_run(
        config["train"].get("experiment", "aidetect"),
        run_name=f"interim-{meta['arch']}-epoch{meta.get('epoch')}",
        tags={"dataset_version": version, "interim_of": str(src.resolve())},
    )
    registry.log_params(run_id, {**config["train"], "dataset_version": version})
    registry.log_artifacts(run_id, folder / "config.json", None)
    registry.log_artifacts(run_id, folder / "model.pt", "checkpoint")
    registry.end_run(run_id, "FINISHED")
    result = {
        "out_dir": str(folder),
        "model_path": str(folder / "model.pt"),
        "run_id": run_id,
        "dataset_version": version,
        "best_epoch": int(meta.get("epoch", 0)),
        "best_val_f1": float(meta.get("val_f1", 0.0)),
        "epochs_run": int(meta.get("epoch", 0)),
        "stopped_early": False,
        "seconds": 0.0,
        "git_commit": git_commit(),
        "finished": True,
    }
    write_json(folder / "run.json", result)
    model = flows.TrainedModel(str(folder))
    dataset = flows.DatasetRef.resolve(version)
    ev = flows.evaluate(model, stores, dataset=dataset, gates=args.gates)
    print(json.dumps({k: ev.report["metrics"][k] for k in ("accuracy", "f1", "roc_auc", "ece", "n")}))
    if not ev.passed:
        print(f"gates failed: {ev.failures}", file=sys.stderr)
        return 1
    bundle = flows.optimize(ev, stores, folder / "bundle", dataset=dataset)
    reg = flows.register(model, stores, evaluation=ev, bundle=bundle, gate_config=args.gates)
    print(reg.uri if hasattr(reg, "uri") else f"models:/{reg.name}/{reg.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
