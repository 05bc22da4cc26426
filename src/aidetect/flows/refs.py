"""The references flows hand to each other: small, JSON-able, and enough to find the real thing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aidetect.errors import DataError
from aidetect.model.lineage import read_json

EVAL_DIR = "eval"


@dataclass(frozen=True)
class DatasetRef:
    """A published dataset version."""

    version_id: str
    uri: str
    root: str = ""
    parent: str = ""  # the version it was derived from (duplicates dropped), if any

    @classmethod
    def resolve(cls, version: str, root: str = "") -> DatasetRef:
        """The published version ``version`` (an id or unique prefix) under ``root``."""
        from aidetect.data.versions import open_version

        found = open_version(version, root or None)
        return cls(found.version_id, found.uri, root)

    def open(self) -> Any:
        from aidetect.data.versions import open_version

        return open_version(self.version_id, self.root or None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetRef:
        return cls(**{k: str(data.get(k) or "") for k in ("version_id", "uri", "root", "parent")})


@dataclass(frozen=True)
class TrainedModel:
    """A training folder: ``model.pt``, ``run.json`` (tracked run), ``config.json``, ``history.json``."""

    dir: str

    @property
    def checkpoint(self) -> Path:
        f = Path(self.dir) / "model.pt"
        if not f.exists():
            raise DataError(f"no model checkpoint at {f} (run aidetect train first)")
        return f

    @property
    def run(self) -> dict[str, Any]:
        f = Path(self.dir) / "run.json"
        if not f.exists():
            raise DataError(f"no finished training run in {self.dir} (run.json missing)")
        return dict(read_json(f))

    @property
    def train_config(self) -> dict[str, Any]:
        f = Path(self.dir) / "config.json"
        return dict(read_json(f).get("train", {})) if f.exists() else {}

    @classmethod
    def at(cls, path: str | Path) -> TrainedModel:
        """A training folder, or the folder of a ``model.pt`` given directly."""
        p = Path(path)
        return cls(str(p.parent if p.is_file() else p))


@dataclass(frozen=True)
class Evaluation:
    """An evaluation folder: thresholded ``model.pt``, ``eval.json``, gate reports, plots, ``roc.json``."""

    dir: str
    passed: bool
    threshold: float
    dataset_version: str
    failures: list[str] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path:
        return Path(self.dir) / "model.pt"

    @property
    def report(self) -> dict[str, Any]:
        return dict(read_json(Path(self.dir) / "gate_report.json"))

    @property
    def metrics(self) -> dict[str, float]:
        """The headline metrics as numbers (for pipeline UIs and run tracking)."""
        keys = ("accuracy", "f1", "macro_f1", "fake_recall", "fake_precision", "roc_auc", "pr_auc", "ece")
        m = self.report["metrics"]
        return {k: float(m[k]) for k in (*keys, "threshold") if isinstance(m.get(k), (int, float))}

    @property
    def reason(self) -> str:
        return "all gates passed" if self.passed else "; ".join(self.failures[:5]) or "see the gate report"

    @property
    def roc(self) -> dict[str, list[float]]:
        f = Path(self.dir) / "roc.json"
        return dict(read_json(f)) if f.exists() else {}

    def summary(self) -> dict[str, Any]:
        r = self.report
        return {
            "gate_status": r["gate_status"],
            "dataset_version": r["dataset_version"],
            "eval_split": r["eval_split"],
            "threshold": r["threshold"],
        }

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        f = Path(path) / "eval.json"
        if not f.exists():
            raise DataError(f"no evaluation in {path} (run aidetect evaluate first)")
        ev = read_json(f)
        return cls(
            str(path),
            bool(ev.get("passed")),
            float(ev["threshold"]),
            str(ev["dataset_version"]),
            list(ev.get("failures", [])),
        )


@dataclass(frozen=True)
class BundleRef:
    """A serving bundle folder (``model.onnx`` + ``bundle.json``) and the variant it holds."""

    uri: str
    variant: str = ""
    report: dict[str, Any] = field(default_factory=dict)  # the optimize report: every variant's numbers

    def summary(self) -> dict[str, Any]:
        """The chosen variant's parity and speed (pipeline metadata)."""
        chosen = next((v for v in self.report.get("variants", []) if v.get("variant") == self.variant), {})
        keys = ("accuracy", "accuracy_diff_points", "max_probability_diff", "latency_ms_batch1")
        return {
            "variant": self.variant,
            **{k: chosen.get(k) for k in keys},
            "n_validation": self.report.get("n_validation"),
        }


@dataclass(frozen=True)
class Registration:
    """A registered model version with everything attached (checkpoint, reports, serving/, reference/)."""

    name: str
    version: str
    run_id: str
    created: bool = True
    aliases: tuple[str, ...] = ()
    fingerprint: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "aliases": list(self.aliases), "uri": self.uri}
