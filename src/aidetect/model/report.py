"""Markdown for humans: the gate report (later a promotion PR body) and the model card."""

from __future__ import annotations

from typing import Any


def _f(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.4f}"
    return str(v)


def _slice_row(family: str, name: str, m: dict[str, Any]) -> str:
    return f"| {family} | {name} | {m['n']} | {_f(m['accuracy'])} | {_f(m['f1'])} | {_f(m['fake_recall'])} |"


def _metrics_table(metrics: dict[str, Any], labels: list[str]) -> list[str]:
    lines = ["| metric | value |", "|---|---|"]
    for k in ("accuracy", "f1", "macro_f1", "fake_recall", "fake_precision", "roc_auc", "pr_auc", "ece", "n"):
        if k in metrics:
            lines.append(f"| {k} | {_f(metrics[k])} |")
    lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label in labels:
        p, r, f, s = (metrics.get(f"{m}.{label}") for m in ("precision", "recall", "f1", "support"))
        lines.append(f"| {label} | {_f(p)} | {_f(r)} | {_f(f)} | {_f(s)} |")
    return lines


def _provenance_table(report: dict[str, Any]) -> list[str]:
    """A grown version: candidate and champion on the base images and on the reviewers' images."""
    ours = report.get("slices", {}).get("provenance", {})
    theirs = ((report.get("champion") or {}).get("slices") or {}).get("provenance", {})
    if not ours:
        return []
    champ = report.get("champion") or {}
    head = f"| images | n | candidate accuracy | champion v{champ.get('version', '-')} accuracy |"
    lines = ["### Base and feedback images", "", head, "|---|---|---|---|"]
    for group, m in ours.items():
        lines.append(
            f"| {group} | {m['n']} | {_f(m['accuracy'])} | {_f(theirs.get(group, {}).get('accuracy'))} |"
        )
    return [*lines, ""]


def gate_markdown(report: dict[str, Any]) -> str:
    g = report["gates"]
    verdict = "PASSED" if g["passed"] else "FAILED"
    text = report.get("modality") == "text"
    items = "texts" if text else "images"
    reads = (
        f"reading {report['model'].get('max_len')} bytes"
        if text
        else f"at {report['model']['input_size']} px"
    )
    lines = [
        f"## Quality gates: {verdict}",
        "",
        f"- dataset version: `{report['dataset_version']}` (split `{report['eval_split']}`, "
        f"{report['metrics']['n']} {items})",
        f"- model: `{report['model']['arch']}` {reads}, labels {report['labels']}",
        f"- decision threshold on the fake score: {report['threshold']:.4f} "
        f"(policy `{report['threshold_policy']}`)",
    ]
    champ = report.get("champion")
    if champ:
        lines.append(f"- compared with champion version {champ['version']} on the same images")
    lines.append("")
    if g["failures"]:
        lines += ["### Why it failed", ""] + [f"- {f}" for f in g["failures"]] + [""]
    for note in g.get("notes", []):
        lines.append(f"> note: {note}")
    lines += ["", "### Headline metrics", "", *_metrics_table(report["metrics"], report["labels"]), ""]
    if champ:
        lines += ["| metric | candidate | champion |", "|---|---|---|"]
        for k, v in champ["metrics"].items():
            lines.append(f"| {k} | {_f(report['metrics'].get(k))} | {_f(v)} |")
        lines.append("")
    lines += _provenance_table(report)
    lines += ["### Checks", "", "| check | metric | value | limit | result |", "|---|---|---|---|---|"]
    for c in g["checks"]:
        mark = "pass" if c["passed"] else "**FAIL**"
        lines.append(
            f"| {c['name']} | {c['metric']} | {_f(c['value'])} | {c['op']} {_f(c['limit'])} | {mark} |"
        )
    lines += [
        "",
        "### Slices",
        "",
        "| slice | group | n | accuracy | F1 | fake recall |",
        "|---|---|---|---|---|---|",
    ]
    for family, groups in report["slices"].items():
        for name, m in groups.items():
            lines.append(_slice_row(family, name, m))
    for name, m in report["perturbations"].items():
        lines.append(_slice_row("perturbation", name, m))
    return "\n".join(lines) + "\n"


def _preprocessing(pre: dict[str, Any]) -> str:
    if pre.get("mode") == "crops":
        return (
            f"native-resolution crops of {pre.get('crop')} px (grid of at most {pre.get('max_crops')}, "
            f"probabilities aggregated by `{pre.get('aggregate')}`; never resized, small images padded)"
        )
    return "the whole image resized and centre-cropped to the input size"


def _trained_on(sources: dict[str, dict[str, int]]) -> list[str]:
    if not sources:
        return ["- (the evaluation report does not list the training sources)"]
    return [
        f"- `{src}`: " + ", ".join(f"{n} {label}" for label, n in sorted(by.items()))
        for src, by in sources.items()
    ]


def _untrusted(report: dict[str, Any]) -> list[str]:
    """Perturbations and slices where the measured accuracy is weak (below 0.8), stated as such."""
    out = []
    for name, m in report.get("perturbations", {}).items():
        if isinstance(m.get("accuracy"), float) and m["accuracy"] < 0.8:
            out.append(f"- images after `{name}`: accuracy {m['accuracy']:.3f} on the test split;")
    for family, groups in report.get("slices", {}).items():
        for name, m in groups.items():
            if isinstance(m.get("accuracy"), float) and m["accuracy"] < 0.8:
                out.append(f"- {family} `{name}`: accuracy {m['accuracy']:.3f} ({m.get('n')} test images);")
    pre = (report.get("model") or {}).get("preprocess") or {}
    if pre.get("mode") == "crops":
        out.append("- thumbnails and heavily down-scaled images (the traces it reads are pixel-level).")
    return out


def model_card(report: dict[str, Any], run: dict[str, Any], train_cfg: dict[str, Any]) -> str:
    m = report["metrics"]
    lines = [
        f"# Model card: AI-generated image detector ({report['model']['arch']})",
        "",
        "## Intended use",
        "Flag images that are likely AI-generated at upload time on an image-sharing platform, for review or",
        "labelling. Not a proof of authenticity: scores are probabilities from a classifier trained on one",
        "dataset version and degrade on generators, resolutions and post-processing it has not seen.",
        "",
        "## Model",
        f"- architecture: `{report['model']['arch']}`, input {report['model']['input_size']} px, "
        f"labels {report['labels']}",
        f"- decision threshold (fake score = 1 - p({report['labels'][0]})): {report['threshold']:.4f}, "
        f"policy `{report['threshold_policy']}`",
        f"- preprocessing: {_preprocessing(report['model'].get('preprocess') or {})} "
        "(`aidetect.data.crops`, the same code in training, evaluation and serving)",
        "- test-time flip averaging: "
        + (
            "on (logits of each image and its mirror image averaged)"
            if report["model"].get("flip_average")
            else "off"
        ),
        "",
        "## Trained on",
        *_trained_on(report.get("trained_on") or {}),
        "",
        "## Lineage",
        f"- dataset version: `{report['dataset_version']}`",
        f"- training run: `{run.get('run_id')}`, git commit `{run.get('git_commit')}`",
        f"- best epoch {run.get('best_epoch')} of {run.get('epochs_run')}, "
        f"training time {float(run.get('seconds', 0)) / 60:.1f} min",
        f"- training config: lr {train_cfg.get('lr')}, batch {train_cfg.get('batch_size')}, "
        f"label smoothing {train_cfg.get('label_smoothing')}, seed {train_cfg.get('seed')}",
        "",
        f"## Evaluation (split `{report['eval_split']}`, {m['n']} images)",
        "",
        *_metrics_table(m, report["labels"]),
        "",
        f"Quality gates: **{report['gate_status']}**. Slices and perturbations: `reports/gate_report.md`.",
        "",
        "## Limitations",
        "- Trained and evaluated on one data distribution; check the slice table for weaker groups.",
        "- Robustness to re-compression, blur and rescaling is measured only for the perturbations listed.",
        "- Watch production drift (aidetect drift) and retrain when inputs change.",
        "",
        "## Do not trust it for",
        "- images from generators or sources not listed under *Trained on*: accuracy there is unmeasured;",
        "- evidence about a single image (a legal, journalistic or moderation decision without review);",
        *_untrusted(report),
    ]
    return "\n".join(lines) + "\n"
