"""``aidetect data``: ingest sources into dataset versions, list and show them, validate, make demo data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aidetect.commands._tables import format_table


def _data_overrides(labels: str | None, duplicates: str | None, max_corrupt: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if labels:
        out["labels"] = [x.strip() for x in labels.split(",") if x.strip()]
    if duplicates:
        out["duplicates"] = duplicates
    if max_corrupt is not None:
        out["max_corrupt_fraction"] = max_corrupt
    return out


root_option = click.option(
    "--root",
    default=None,
    help="Datasets root: a folder or s3:// prefix (default: $AIDETECT_DATASETS, else under home).",
)


@click.group()
def data() -> None:
    """Dataset versions: ingest, list, show, validate, demo data."""


@data.command()
@click.argument("source")
@root_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A data.yaml to use.")
@click.option("--labels", help="Comma-separated ordered label set, e.g. real,ai-generated,deepfake.")
@click.option("--duplicates", type=click.Choice(["keep", "drop"]), help="Keep or drop identical copies.")
@click.option("--max-corrupt-fraction", type=float, help="Share of unreadable images tolerated.")
def ingest(
    source: str,
    root: str | None,
    config_path: str | None,
    labels: str | None,
    duplicates: str | None,
    max_corrupt_fraction: float | None,
) -> None:
    """Ingest SOURCE (folder, .zip, .parquet file/folder, or s3://...) into a dataset version.

    Labelled texts (.csv, .jsonl, or .parquet with a text column) become a text dataset version
    (configs/text_data.yaml)."""
    from aidetect import flows
    from aidetect.data.config import load_data_config
    from aidetect.data.versions import version_counts_table

    cfg = load_data_config(config_path, _data_overrides(labels, duplicates, max_corrupt_fraction))
    result = flows.ingest(source, flows.Stores(datasets_root=root or ""), cfg).result
    state = "created" if result.created else "already exists (nothing written)"
    click.echo(f"dataset version {result.version_id} {state}")
    click.echo(f"  uri: {result.uri}")
    first_split: dict[str, int] = next(iter(result.counts.values()), {})
    version_labels: list[str] = list(first_split) or list(cfg.labels)  # a text version has its own
    click.echo(format_table(version_counts_table(result.counts, version_labels), indent=2))
    if result.skipped:
        click.echo(f"  skipped {len(result.skipped)} unreadable items:")
        for s in result.skipped[:10]:
            click.echo(f"    {s['source']}: {s['reason']}")
        if len(result.skipped) > 10:
            click.echo(f"    ... and {len(result.skipped) - 10} more (see version.json)")
    if result.duplicates_dropped:
        click.echo(f"  dropped {result.duplicates_dropped} duplicate copies")
    if result.ignored:
        click.echo(f"  ignored {len(result.ignored)} non-image files, e.g. {result.ignored[0]}")
    click.echo(f"  took {result.seconds:.1f} s")


@data.command(name="list")
@root_option
def list_cmd(root: str | None) -> None:
    """List dataset versions with image counts per split."""
    from aidetect.data.versions import list_versions

    metas = list_versions(root)
    if not metas:
        click.echo("no dataset versions yet (run: aidetect data ingest SOURCE)")
        return
    rows = [["version", "created", "images", "train", "val", "test", "labels", "source"]]
    for m in metas:
        c = m.get("counts", {})
        rows.append(
            [
                m["version_id"],
                m.get("created_at", ""),
                str(m.get("num_images", "")),
                *(str(sum(c.get(s, {}).values())) for s in ("train", "val", "test")),
                ",".join(m["labels"]),
                m.get("source", ""),
            ]
        )
    click.echo(format_table(rows))


@data.command()
@click.argument("version")
@root_option
def show(version: str, root: str | None) -> None:
    """Show VERSION (id or unique prefix): counts per split and class, sizes, formats, content classes."""
    from aidetect.data.versions import open_version, version_counts_table

    v = open_version(version, root)
    m = v.manifest
    click.echo(f"dataset version {v.version_id}")
    for key in ("created_at", "source", "num_images", "num_skipped", "duplicates_dropped"):
        click.echo(f"  {key}: {v.meta.get(key)}")
    click.echo(f"  uri: {v.uri}")
    click.echo(f"  labels: {', '.join(v.labels)}")
    click.echo("\nimages per split and class:")
    click.echo(format_table(version_counts_table(v.counts(), v.labels), indent=2))
    click.echo("\nformats and modes:")
    fm = m.groupby(["format", "mode"]).size().reset_index(name="images")
    click.echo(format_table([["format", "mode", "images"], *fm.astype(str).values.tolist()], indent=2))
    w, h = m["width"], m["height"]
    mb = m["nbytes"].sum() / 1e6
    click.echo(f"\nsize: width {w.min()}..{w.max()}, height {h.min()}..{h.max()}, {mb:.1f} MB of image bytes")
    cc = m["content_class"].dropna()
    if len(cc):
        table = (
            m.dropna(subset=["content_class"])
            .pivot_table(
                index="content_class", columns="label", values="sha256", aggfunc="count", fill_value=0
            )
            .reindex(columns=v.labels, fill_value=0)
        )
        rows = [["content_class", *map(str, table.columns)]]
        rows += [[str(idx), *map(str, vals)] for idx, vals in zip(table.index, table.values, strict=True)]
        click.echo("\ncontent classes:")
        click.echo(format_table(rows, indent=2))
    origins = m["origin"].dropna()
    if len(origins):
        click.echo("\norigins: " + ", ".join(f"{k}={n}" for k, n in origins.value_counts().items()))


@data.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("-n", "--n-per-class", default=300, show_default=True, help="Images per class.")
@click.option("--size", default=32, show_default=True, help="Image side in pixels.")
@click.option("--seed", default=0, show_default=True)
@click.option("--labels", default="REAL,FAKE", show_default=True, help="First is real, the rest fakes.")
def demo(out: str, n_per_class: int, size: int, seed: int, labels: str) -> None:
    """Write a deterministic SYNTHETIC real/fake image set to OUT (class-per-folder)."""
    from aidetect.data.demo import generate_demo

    names = [x.strip() for x in labels.split(",") if x.strip()]
    path = generate_demo(Path(out), n_per_class=n_per_class, size=size, seed=seed, labels=names)
    click.echo(f"wrote {n_per_class * len(names)} synthetic images ({', '.join(names)}) to {path}")


@data.command()
@click.argument("version")
@root_option
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A validation.yaml to use.")
@click.option("--duplicates", type=click.Choice(["warn", "fail", "drop"]), help="Duplicate-image policy.")
@click.option("--decode-check", type=click.Choice(["auto", "all", "sample"]), help="Which images to decode.")
@click.option("--decode-sample", type=int, help="How many images a sampled decode check decodes.")
@click.option("--out", help="Folder or s3:// prefix for validation.json and validation.md.")
def validate(
    version: str,
    root: str | None,
    config_path: str | None,
    duplicates: str | None,
    decode_check: str | None,
    decode_sample: int | None,
    out: str | None,
) -> None:
    """Validate VERSION with the Great Expectations suite; exits non-zero on critical failures."""
    from aidetect import flows
    from aidetect.data.config import load_validation_config

    overrides: dict[str, Any] = {}
    if duplicates:
        overrides["duplicates"] = duplicates
    if decode_check:
        overrides["decode_check"] = decode_check
    if decode_sample is not None:
        overrides["decode_sample"] = decode_sample
    cfg = load_validation_config(config_path, overrides)
    stores = flows.Stores(datasets_root=root or "")
    done = flows.validate(
        flows.DatasetRef.resolve(version, root or ""), stores, cfg=cfg, out=out, raise_on_critical=False
    )
    result, written = done.result, done.reports
    rows = [["check", "severity", "result", "unexpected"]]
    for e in result.expectations:
        verdict = "pass" if e["success"] else ("FAIL" if e["severity"] == "critical" else "warn")
        rows.append([e["name"], e["severity"], verdict, str(e.get("unexpected_count", ""))])
    click.echo(f"dataset version {result.version_id}: {'passed' if result.success else 'FAILED'}")
    click.echo(format_table(rows, indent=2))
    d = result.duplicates
    click.echo(
        f"  duplicates: {d['groups']} groups of identical images ({d['pairs']} pairs, "
        f"{d['extra_copies']} extra copies), policy {d['policy']}"
    )
    if result.derived_version:
        click.echo(f"  duplicates dropped: validated derived version {result.derived_version}")
    dec = result.decode
    click.echo(f"  decode check ({dec['mode']}): {dec['checked']} decoded, {dec['failed']} failed")
    click.echo(f"  report: {written['markdown']}\n  json: {written['json']}")
    result.raise_for_critical()


@data.command()
@click.argument("base")
@root_option
@click.option("--labels", "labels_root", help="The label log (folder or s3://; default labels.root).")
@click.option("--store", help="The capture store of kept images (default capture.store_uri).")
@click.option("--min-feedback-rows", type=int, help="Refuse a grow adding fewer new images.")
@click.option("--validate/--no-validate", "run_validation", default=True, show_default=True)
def grow(
    base: str,
    root: str | None,
    labels_root: str | None,
    store: str | None,
    min_feedback_rows: int | None,
    run_validation: bool,
) -> None:
    """BASE (version id or prefix) plus reviewers' labelled kept images, as a new version.

    Images already in BASE keep their split; new ones are split by sha256 with BASE's rule. Too few
    new images, labels for images the store lacks or for unknown classes: reported, nothing written."""
    from aidetect import flows
    from aidetect.data.versions import version_counts_table
    from aidetect.feedback.grow import load_feedback_config

    overrides = {"grow": {"min_feedback_rows": min_feedback_rows}} if min_feedback_rows else None
    cfg = load_feedback_config(overrides=overrides)
    stores = flows.Stores(datasets_root=root or "")
    grown = flows.grow(
        flows.DatasetRef.resolve(base, root or ""),
        stores,
        cfg=cfg,
        labels_root=labels_root or "",
        store=store or "",
    )
    r = grown.report
    state = "created" if r.created else "already exists (nothing written)"
    click.echo(f"dataset version {r.version_id} {state} (base {r.base}, batch {r.feedback_batch})")
    click.echo(f"  uri: {r.uri}")
    labels = sorted({label for per in r.added.values() for label in per})
    click.echo(f"  added {r.num_added} labelled images:")
    click.echo(format_table(version_counts_table(r.added, labels), indent=4))
    click.echo(
        f"  feedback rows {r.feedback_rows} ({r.feedback_share:.1%} of the version); "
        f"{r.already_in_base} labels already in the base"
    )
    for c in r.conflicts[:10]:
        click.echo(f"  conflict ({c.get('kind')}): {c}")
    if r.skipped:
        click.echo(f"  skipped {len(r.skipped)} labels:")
        for s in r.skipped[:10]:
            click.echo(f"    {s['sha256'][:16]}: {s['reason']}")
    if run_validation:
        done = flows.validate(grown.dataset, stores, raise_on_critical=False)
        res = done.result
        failed = [e["name"] for e in res.expectations if not e["success"]]
        verdict = "passed" if res.success else "FAILED"
        click.echo(f"  validation {verdict}" + (f" ({', '.join(failed)})" if failed else ""))
        click.echo(f"  report: {done.reports['markdown']}")
        res.raise_for_critical()
