"""Tiny deterministic labelled text data (human originals and "AI rewrites") for tests, CI and the demo.

Human texts are plain, terse sentences from a small vocabulary; each rewrite restates its original in
the polished register typical of chat models. Learnable in seconds, not a benchmark.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

_SUBJECTS = ["the cat", "my neighbour", "our team", "the old bus", "a farmer", "the city council", "my aunt"]
_VERBS = ["fixed", "lost", "found", "painted", "sold", "moved", "watched", "cooked"]
_OBJECTS = ["the fence", "a red bike", "some bread", "the garden", "two chairs", "the report", "a boat"]
_HUMAN_TAILS = ["lol", "idk why", "anyway.", "it was ok", "kinda weird tbh", "so yeah", "(again!)"]
_AI_OPENERS = ["Certainly!", "In today's fast-paced world,", "It is important to note that", "Moreover,"]
_AI_WORDS = ["seamlessly", "crucial", "delve into", "a testament to", "furthermore", "comprehensive"]
DOMAINS = ["news", "reviews", "chat"]
GENERATORS = ["gen-a", "gen-b"]


def _human(rng: random.Random) -> str:
    parts = [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_HUMAN_TAILS)}"
        for _ in range(rng.randint(2, 4))
    ]
    return " ".join(parts)


def _rewrite(text: str, rng: random.Random) -> str:
    sentences = [s.strip() for s in text.split("  ") if s.strip()] or [text]
    body = " ".join(
        f"{rng.choice(_AI_OPENERS)} {s[0].upper()}{s[1:]}, which is {rng.choice(_AI_WORDS)} overall."
        for s in sentences
    )
    return f"{body} In conclusion, this {rng.choice(_AI_WORDS)} moment matters."


def generate_text_demo(out: str | Path, n_groups: int = 60, seed: int = 0) -> Path:
    """Write ``n_groups`` human texts plus one rewrite per generator each; the format follows the suffix
    (``.csv``, ``.jsonl`` or ``.parquet``) and the columns are ``text, label, group, domain, generator``."""
    rng = random.Random(seed)
    rows = []
    for g in range(n_groups):
        domain = DOMAINS[g % len(DOMAINS)]
        original = _human(rng)
        rows.append(
            {"text": original, "label": "human", "group": f"g{g}", "domain": domain, "generator": "human"}
        )
        for gen in GENERATORS:
            text = _rewrite(original, rng)
            rows.append({"text": text, "label": "ai", "group": f"g{g}", "domain": domain, "generator": gen})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    elif out.suffix == ".jsonl":
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        frame.to_parquet(out, index=False)
    return out
