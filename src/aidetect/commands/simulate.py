"""``aidetect simulate``: replay a labelled image source against a running server, with a shift and a
simulated reviewer (tests, benchmarks, game days)."""

from __future__ import annotations

import json

import click


def _seconds(text: str | None, what: str) -> float:
    from aidetect.monitoring.config import parse_duration

    if not text or text.strip() in {"0", "0s"}:
        return 0.0
    return parse_duration(text, what).total_seconds()


@click.command()
@click.argument("source")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Server base URL.")
@click.option("--model", default="", help="Model name (default: the only model served).")
@click.option("--token", envvar="AIDETECT_TOKEN", default=None, help="Bearer token (or $AIDETECT_TOKEN).")
@click.option("--rate", type=float, default=10.0, show_default=True, help="Requests per second.")
@click.option("--batch", type=int, default=1, show_default=True, help="Images per request.")
@click.option("--concurrency", type=int, default=4, show_default=True, help="Requests in flight at most.")
@click.option("--duration", default=None, help="Stop after this long (e.g. 90s, 10m).")
@click.option("--limit", type=int, default=0, help="Stop after this many images (0: no limit).")
@click.option("--shift-to", default="", help="A second source, replayed from --shift-after on.")
@click.option("--shift-after", default=None, help="When the shift happens (e.g. 5m).")
@click.option(
    "--review-share", type=float, default=0.0, show_default=True, help="Share of kept images labelled."
)
@click.option("--review-delay", default=None, help="Time from sending an image to its review (e.g. 30s).")
@click.option(
    "--review-via",
    type=click.Choice(["import", "label-studio", "none"]),
    default="import",
    show_default=True,
    help="Where the reviewer's labels go: the label log (as the import), Label Studio, or nowhere.",
)
@click.option(
    "--store", "store_uri", default=None, help="The server's image store (default: capture.store_uri)."
)
@click.option("--labels", "labels_root", default=None, help="The label log (default: labels.root).")
@click.option(
    "--shuffle",
    type=int,
    default=256,
    show_default=True,
    help="Images buffered to shuffle each source (0: in order).",
)
@click.option("--seed", type=int, default=0, show_default=True)
def simulate(
    source: str,
    url: str,
    model: str,
    token: str | None,
    rate: float,
    batch: int,
    concurrency: int,
    duration: str | None,
    limit: int,
    shift_to: str,
    shift_after: str | None,
    review_share: float,
    review_delay: str | None,
    review_via: str,
    store_uri: str | None,
    labels_root: str | None,
    shuffle: int,
    seed: int,
) -> None:
    """Replay SOURCE (folder, zip, HF parquet, s3://) against a running server at --rate.

    With --shift-to, the second source takes over after --shift-after. The simulated reviewer looks up
    each answered image in the server's image store after --review-delay and labels --review-share of
    the kept ones with their true label. Prints a JSON summary (per phase: sent, ok, errors, accuracy,
    kept, labelled) as its last line.
    """
    from aidetect.config import load
    from aidetect.data.config import DataConfig
    from aidetect.feedback.capture import ImageStore
    from aidetect.feedback.config import FeedbackConfig
    from aidetect.feedback.sim_review import review_path
    from aidetect.feedback.simulate import Plan, Simulation

    cfg = load(FeedbackConfig, "feedback")
    if store_uri:
        cfg.capture.store_uri = store_uri
    plan = Plan(
        url=url,
        source=source,
        shift_to=shift_to,
        shift_after=_seconds(shift_after, "shift-after"),
        duration=_seconds(duration, "duration"),
        limit=limit,
        rate=rate,
        batch=batch,
        concurrency=concurrency,
        model=model,
        token=token,
        review_share=review_share,
        review_delay=_seconds(review_delay, "review-delay"),
        review_via=review_via,
        shuffle=shuffle,
        seed=seed,
    )
    plan.validate()
    store = ImageStore.from_config(cfg.capture)
    review = review_path(review_via, cfg, store, labels_root or "")
    sim = Simulation(plan, store, review, load(DataConfig, "data"))
    click.echo(json.dumps(sim.run()))
