"""Cheap text statistics shared by validation, the drift reference profile and the inference log.

Pure Python + ``re`` (no numpy needed, no torch); each statistic is one C-level regex scan, so a
512-character text costs a few microseconds per column. Every value is a float and every column is always
present, so a reference profile and a logged window have the same schema by construction. The text
itself is not part of the features (the inference log stores it only when configured).

Columns (:data:`TEXT_FEATURE_COLUMNS`): ``n_chars``, ``n_words``, ``n_lines``, ``mean_word_len``, shares
of all characters that are ``letter``, ``digit``, ``upper`` (of letters), ``punct``, ``space``,
``non_ascii``, ``mojibake`` (C1 controls or U+FFFD), and ``script_latin``, ``script_cyrillic``,
``script_greek``, ``script_arabic``, ``script_cjk``, ``script_indic`` (shares of the letters);
``script_other`` is what is left.
"""

from __future__ import annotations

import re

from aidetect.data.text.normalize import MOJIBAKE

SCRIPTS: dict[str, re.Pattern[str]] = {
    "latin": re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"),
    "cyrillic": re.compile(r"[\u0400-\u052f]"),
    "greek": re.compile(r"[\u0370-\u03ff]"),
    "arabic": re.compile(r"[\u0600-\u06ff\u0750-\u077f]"),
    "cjk": re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"),
    "indic": re.compile(r"[\u0900-\u0dff]"),
}
_LETTER = re.compile(r"[^\W\d_]")
_UPPER = re.compile(r"[A-Z\u00c0-\u00de\u0400-\u042f\u0391-\u03a9]")
_DIGIT = re.compile(r"\d")
_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_WORD = re.compile(r"\w+")

TEXT_FEATURE_COLUMNS: list[str] = [
    "n_chars",
    "n_words",
    "n_lines",
    "mean_word_len",
    "letter",
    "digit",
    "upper",
    "punct",
    "space",
    "non_ascii",
    "mojibake",
    *(f"script_{s}" for s in SCRIPTS),
    "script_other",
]


def _count(pattern: re.Pattern[str], text: str) -> int:
    return len(pattern.findall(text))


def text_features(text: str) -> dict[str, float]:
    """The statistics of one (normalised) text; every column of :data:`TEXT_FEATURE_COLUMNS`."""
    n = len(text)
    words = _WORD.findall(text)
    letters = _count(_LETTER, text)
    out = {
        "n_chars": float(n),
        "n_words": float(len(words)),
        "n_lines": float(text.count("\n") + 1 if text else 0),
        "mean_word_len": sum(map(len, words)) / len(words) if words else 0.0,
    }
    share = 1.0 / n if n else 0.0
    out["letter"] = letters * share
    out["digit"] = _count(_DIGIT, text) * share
    out["upper"] = _count(_UPPER, text) / letters if letters else 0.0
    out["punct"] = _count(_PUNCT, text) * share
    out["space"] = _count(_SPACE, text) * share
    out["non_ascii"] = _count(_NON_ASCII, text) * share
    out["mojibake"] = _count(MOJIBAKE, text) * share
    rest = 1.0 if letters else 0.0
    for name, pattern in SCRIPTS.items():
        value = _count(pattern, text) / letters if letters else 0.0
        out[f"script_{name}"] = value
        rest -= value
    out["script_other"] = max(0.0, rest)
    return out


def dominant_script(features: dict[str, float]) -> str:
    """The script with the largest share of the letters (``none`` for a text without letters)."""
    names = [*SCRIPTS, "other"]
    best = max(names, key=lambda s: features[f"script_{s}"])
    return best if features[f"script_{best}"] > 0 else "none"
