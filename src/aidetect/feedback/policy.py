"""The one conflict rule: which label counts for an image when the label log disagrees with itself.

Every consumer of labels (live quality, dataset growth, reports) calls :func:`resolve`, so the same
image never means FAKE to one of them and REAL to another.

Votes: each *voter* (``source`` + ``author``) has one vote per image, their newest record: a reviewer
who corrects themselves is not a conflict. An image has a conflict when its voters' labels differ;
``labels.conflict_policy`` then decides:

- ``latest``: the newest vote wins.
- ``majority``: the label with most votes wins; a tie goes to the tied label voted most recently
  (so a tie behaves like ``latest`` among the tied labels, never an arbitrary pick).
- ``priority``: the vote from the source listed first in ``labels.source_priority`` wins (sources
  not listed rank after all listed ones); between votes of equal rank, the newest.
- ``drop``: the image gets no label until people agree.

Records whose label is not in the model's label set (when ``labels`` is given) never vote; they are
returned in :attr:`Resolved.unknown` so a report can name them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aidetect.data.labels import LabelMatcher
from aidetect.feedback.config import LabelsConfig
from aidetect.feedback.labels import LabelRecord

POLICIES = ("latest", "majority", "priority", "drop")


@dataclass(frozen=True)
class Conflict:
    """Voters disagreed about one image; ``chosen`` is None when the policy dropped it."""

    sha256: str
    policy: str
    chosen: str | None
    votes: dict[str, int]  # label -> number of voters
    records: list[LabelRecord]  # the votes (one per voter), oldest first


@dataclass
class Resolved:
    labels: dict[str, LabelRecord]  # sha256 -> the record that counts
    conflicts: list[Conflict] = field(default_factory=list)
    unknown: list[LabelRecord] = field(default_factory=list)  # labels outside the model's label set

    def report(self) -> dict[str, Any]:
        """A small JSON-able summary for people: counts, each conflict's votes and outcome."""
        return {
            "images": len(self.labels),
            "conflicts": len(self.conflicts),
            "dropped": sum(c.chosen is None for c in self.conflicts),
            "unknown_labels": len(self.unknown),
            "details": [
                {
                    "sha256": c.sha256,
                    "policy": c.policy,
                    "chosen": c.chosen,
                    "votes": c.votes,
                    "voters": [f"{r.source}:{r.author or '-'}={r.label}" for r in c.records],
                }
                for c in self.conflicts
            ],
            "unknown": [
                {"sha256": r.sha256, "label": r.label, "source": r.source, "author": r.author}
                for r in self.unknown
            ],
        }

    def markdown(self, limit: int = 50) -> str:
        """The report as a Markdown section (at most ``limit`` conflicts listed)."""
        rep = self.report()
        lines = [
            "## Label conflicts",
            "",
            f"{rep['images']} labelled images, {rep['conflicts']} with disagreeing labels "
            f"({rep['dropped']} dropped), {rep['unknown_labels']} records with an unknown class.",
        ]
        if self.conflicts:
            lines += ["", "| image | policy | chosen | votes |", "|---|---|---|---|"]
            for d in rep["details"][:limit]:
                chosen, votes = d["chosen"] or "(dropped)", ", ".join(d["voters"])
                lines.append(f"| `{d['sha256'][:12]}` | {d['policy']} | {chosen} | {votes} |")
            if len(self.conflicts) > limit:
                lines.append(f"| … | | | {len(self.conflicts) - limit} more |")
        return "\n".join(lines) + "\n"


def when(record: LabelRecord) -> dt.datetime:
    """A record's time as an aware UTC datetime (a naive ``ts`` is taken as UTC)."""
    t = dt.datetime.fromisoformat(record.ts)
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _votes(records: list[LabelRecord]) -> list[LabelRecord]:
    """One vote per (source, author): their newest record; oldest vote first."""
    newest: dict[tuple[str, str], LabelRecord] = {}
    for r in sorted(records, key=when):
        newest[(r.source, r.author)] = r
    return sorted(newest.values(), key=when)


def _rank(cfg: LabelsConfig, source: str) -> int:
    order = list(cfg.source_priority)
    return order.index(source) if source in order else len(order)


def _choose(votes: list[LabelRecord], cfg: LabelsConfig) -> LabelRecord | None:
    """The winning vote among disagreeing ones (oldest first), or None to drop the image."""
    policy = cfg.conflict_policy
    if policy == "latest":
        return votes[-1]
    if policy == "majority":
        counts = Counter(v.label for v in votes)
        top = max(counts.values())
        return next(v for v in reversed(votes) if counts[v.label] == top)
    if policy == "priority":
        best = min(_rank(cfg, v.source) for v in votes)
        return next(v for v in reversed(votes) if _rank(cfg, v.source) == best)
    return None  # drop


def resolve(
    records: Iterable[LabelRecord], cfg: LabelsConfig, labels: Sequence[str] | None = None
) -> Resolved:
    """The label that counts per image under ``cfg.conflict_policy``, with every conflict reported.

    ``labels``: the model's label set; records outside it are set aside as unknown, the rest are
    spelled as the set spells them (``fake`` -> ``FAKE``)."""
    cfg.validate()
    by_image: dict[str, list[LabelRecord]] = {}
    unknown: list[LabelRecord] = []
    matcher = LabelMatcher(labels) if labels is not None else None
    for r in records:
        if matcher is not None:
            canon = matcher.get(r.label)
            if canon is None:
                unknown.append(r)
                continue
            r = r if canon == r.label else replace(r, label=canon)
        by_image.setdefault(r.sha256, []).append(r)
    out = Resolved(labels={}, unknown=unknown)
    for sha, group in by_image.items():
        votes = _votes(group)
        if len({v.label for v in votes}) == 1:
            out.labels[sha] = votes[-1]
            continue
        chosen = _choose(votes, cfg)
        if chosen is not None:
            out.labels[sha] = chosen
        counts = dict(sorted(Counter(v.label for v in votes).items()))
        out.conflicts.append(
            Conflict(sha, cfg.conflict_policy, chosen.label if chosen else None, counts, votes)
        )
    return out
