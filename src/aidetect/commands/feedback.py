"""``aidetect review push|pull`` (the Label Studio queue) and ``aidetect feedback import FILE``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from aidetect.feedback.config import FeedbackConfig

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="A feedback.yaml to use."
)
labels_option = click.option(
    "--labels", "label_set", help="The model's label set, comma-separated (default: configs/data.yaml)."
)


def _config(config_path: str | None, **sections: dict[str, Any]) -> FeedbackConfig:
    from aidetect.feedback.grow import load_feedback_config

    overrides = {k: {f: v for f, v in fields.items() if v is not None} for k, fields in sections.items()}
    return load_feedback_config(config_path, overrides)


def _label_set(label_set: str | None) -> tuple[list[str], str]:
    """(labels, real label): the given list, or the data config's (its real label or the first)."""
    from aidetect.data.config import load_data_config

    cfg = load_data_config()
    labels = [x.strip() for x in label_set.split(",") if x.strip()] if label_set else list(cfg.labels)
    if len(labels) < 2:
        raise click.BadParameter("need at least two labels", param_hint="--labels")
    real = cfg.real_label if cfg.real_label in labels else labels[0]
    return labels, real


def _store(cfg: FeedbackConfig, uri: str | None) -> Any:
    from aidetect.feedback.capture import ImageStore

    if uri:
        cfg.capture.store_uri = uri
    return ImageStore.from_config(cfg.capture)


@click.group()
def review() -> None:
    """The Label Studio review queue: push kept images as tasks, pull finished annotations as labels.

    Server review.url, token from the env var named by review.token_env (configs/feedback.yaml)."""


@review.command()
@config_option
@labels_option
@click.option(
    "--model",
    "model",
    help="Served model: NAME (its log folder; default: the registry's), NAME/3 (one version) or NAME@alias.",
)
@click.option("--url", help="Label Studio URL.")
@click.option("--project", help="Label Studio project title.")
@click.option("--since", help="Kept images logged in this window, e.g. 1d (default: review.since).")
@click.option("--max-tasks", type=int, help="At most this many new tasks (least certain first).")
@click.option("--log-uri", help="Inference log root (folder or s3://).")
@click.option("--store", "store_uri", help="Capture store of the kept images (folder or s3://).")
def push(
    config_path: str | None,
    label_set: str | None,
    model: str | None,
    url: str | None,
    project: str | None,
    since: str | None,
    max_tasks: int | None,
    log_uri: str | None,
    store_uri: str | None,
) -> None:
    """One task per kept image not yet in the project, the model's label as a pre-annotation.

    An alias is not resolved: the images every version of NAME served are pushed."""
    from aidetect.feedback import label_studio
    from aidetect.refs import ModelRef

    fields = {"url": url, "project": project, "since": since, "max_tasks": max_tasks, "log_uri": log_uri}
    cfg = _config(config_path, review=fields)
    labels, real = _label_set(label_set)
    if not model:
        from aidetect import registry

        model = registry.model_name()
    ref = ModelRef.parse(model) if "@" in model or "/" in model else None
    name, version = (ref.name, ref.ref if ref.is_version else None) if ref else (model, None)
    store = _store(cfg, store_uri)
    with label_studio.client_from_config(cfg.review) as client:
        report = label_studio.push(cfg.review, client, store, name, labels, real, model_version=version)
    click.echo(report.summary())


@review.command()
@config_option
@labels_option
@click.option("--url", help="Label Studio URL.")
@click.option("--project", help="Label Studio project title.")
@click.option("--labels-root", help="The label log (folder or s3://; default labels.root).")
def pull(
    config_path: str | None,
    label_set: str | None,
    url: str | None,
    project: str | None,
    labels_root: str | None,
) -> None:
    """Append finished annotations to the label log (re-pulling adds nothing)."""
    from aidetect.feedback import label_studio
    from aidetect.feedback.labels import LabelLog

    cfg = _config(config_path, review={"url": url, "project": project}, labels={"root": labels_root})
    labels, _ = _label_set(label_set)
    with label_studio.client_from_config(cfg.review) as client:
        report = label_studio.pull(cfg.review, client, LabelLog(cfg.labels.root), labels)
    click.echo(report.summary())


@click.group()
def feedback() -> None:
    """Labels from outside the review queue."""


@feedback.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@config_option
@labels_option
@click.option("--source", default="import", show_default=True, help="Source for rows without one.")
@click.option("--labels-root", help="The label log (folder or s3://; default labels.root).")
@click.option("--store", "store_uri", help="Capture store for images named by path (folder or s3://).")
@click.option("--allow-unknown-images", is_flag=True, help="Accept sha256 rows the capture store lacks.")
def import_(
    file: str,
    config_path: str | None,
    label_set: str | None,
    source: str,
    labels_root: str | None,
    store_uri: str | None,
    allow_unknown_images: bool,
) -> None:
    """Append a CSV/JSONL label file (sha256 or image, label[, source, author, model_version, ts]).

    The whole file is checked first: one broken row fails it, naming the line, and nothing is written.
    Rows already in the log are skipped, so importing the same file twice adds nothing."""
    from aidetect.feedback.imports import import_labels
    from aidetect.feedback.labels import LabelLog

    cfg = _config(config_path, labels={"root": labels_root})
    labels = _label_set(label_set)[0] if label_set else None
    report = import_labels(
        file,
        LabelLog(cfg.labels.root),
        store=_store(cfg, store_uri),
        labels=labels,
        source=source,
        allow_unknown_images=allow_unknown_images,
    )
    click.echo(report.summary())


@feedback.command()
@config_option
@labels_option
@click.option("--labels-root", help="The label log (folder or s3://; default labels.root).")
@click.option("--policy", type=click.Choice(["latest", "majority", "priority", "drop"]), help="Override.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of Markdown.")
def conflicts(
    config_path: str | None, label_set: str | None, labels_root: str | None, policy: str | None, as_json: bool
) -> None:
    """Images whose labels disagree, and which label the conflict policy lets count."""
    import json

    from aidetect.feedback.labels import LabelLog
    from aidetect.feedback.policy import resolve

    cfg = _config(config_path, labels={"root": labels_root, "conflict_policy": policy})
    resolved = resolve(LabelLog(cfg.labels.root).read(), cfg.labels, labels=_label_set(label_set)[0])
    click.echo(json.dumps(resolved.report(), indent=2) if as_json else resolved.markdown(), nl=as_json)
