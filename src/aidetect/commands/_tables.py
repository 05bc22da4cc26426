"""Plain-text tables for command output."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[str]], indent: int = 0) -> str:
    """Align ``rows`` (the first is the header) in columns; numbers are right-aligned."""
    if not rows:
        return ""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]

    def fmt(row: Sequence[str]) -> str:
        cells = []
        for cell, w in zip(row, widths, strict=True):
            s = str(cell)
            cells.append(s.rjust(w) if s.replace(".", "", 1).isdigit() else s.ljust(w))
        return " " * indent + "  ".join(cells).rstrip()

    lines = [fmt(rows[0]), " " * indent + "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows[1:]]
    return "\n".join(lines)
