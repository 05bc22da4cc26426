"""``aidetect feedback import FILE``: labels from a team's own tool (CSV or JSONL) into the label log.

Each row names an image by ``sha256`` (of the bytes as served and kept) or by ``image`` (a file path,
relative to the label file; its bytes go into the capture store), and gives its ``label``; optional
``source``, ``author``, ``model_name``, ``model_version``, ``ts``, ``note``. The whole file is checked
before anything is written: one broken row (bad CSV quoting, no label, an unknown class, a bad sha256,
a missing image file, an image the store does not hold) fails the file with a message naming its
line, and nothing is written. Rows already in the log (same image, label, source and author) are
skipped, so importing the same file twice adds nothing.

Text models' labels name a text by ``text`` (the text itself): its key is the sha256 of the normalised
text (:func:`aidetect.data.text.normalize.text_sha256`, what a text model's inference log records), a
``sha256`` given beside it must match, and its label is checked against the text label set
(``configs/text_data.yaml``). Texts go into no store; an unusable text (empty, too long, control
characters) fails the file naming its line.

Unknown images (a ``sha256`` the capture store does not hold, no ``image`` given) are an error by
default: a label nobody can train on is usually a typo or the wrong store. ``allow_unknown_images``
imports them anyway (e.g. the store was pruned but the label should count for live quality).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aidetect.data.labels import LabelMatcher
from aidetect.errors import DataError
from aidetect.feedback.labels import SHA256, LabelLog, LabelRecord

if TYPE_CHECKING:
    from aidetect.feedback.capture import ImageStore

OPTIONAL = ("source", "author", "model_name", "model_version", "ts", "note")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class ImportReport:
    path: str
    rows: int = 0  # label rows read
    added: int = 0  # records appended to the log
    already: int = 0  # rows the log (or an earlier row of the file) already had
    images_stored: int = 0  # image files put into the capture store
    unknown_images: int = 0  # imported without bytes in the store (allow_unknown_images)
    log_uri: str = ""  # the log object written; "" when nothing was new
    labels: dict[str, int] = field(default_factory=dict)  # label -> rows added

    def summary(self) -> str:
        per = ", ".join(f"{k} {v}" for k, v in sorted(self.labels.items())) or "none"
        return (
            f"{self.path}: {self.rows} rows, {self.added} added ({per}), {self.already} already in the log, "
            f"{self.images_stored} images stored"
            + (f", {self.unknown_images} without a kept image" if self.unknown_images else "")
        )


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with lower-case keys and string values) for each row of a CSV/JSONL file."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: not a label file (expected .csv or .jsonl)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such label file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the label file ({exc})") from None
    if kind == "jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}:{n}: not a JSON object ({exc})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{n}: not a JSON object")
            yield n, {str(k).strip().lower(): "" if v is None else str(v) for k, v in row.items()}
        return
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if "label" not in header or not {"sha256", "image", "text"} & set(header):
            raise DataError(
                f"{path}: the header needs a 'label' column and a 'sha256', 'image' or 'text' column"
            )
        reader.fieldnames = header
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{reader.line_num}: more fields than the header has")
            yield reader.line_num, {k: (v or "") for k, v in row.items()}
    except csv.Error as exc:  # line_num is still the end of the last good row
        raise DataError(f"{path}:{reader.line_num + 1}: broken CSV row ({exc})") from None


def _image_bytes(base: Path, name: str, where: str) -> bytes:
    file = (base / name).resolve()
    try:
        data = file.read_bytes()
    except OSError:
        raise DataError(f"{where}: image file not found: {name}") from None
    if not data:
        raise DataError(f"{where}: image file {name} is empty")
    return data


class _TextKeys:
    """The label log's key of a text row and the text label set (``configs/text_data.yaml``)."""

    def __init__(self, labels: Sequence[str] | None) -> None:
        from aidetect.data.text.settings import load_text_data_config

        cfg = load_text_data_config()
        self.max_bytes = cfg.max_bytes
        self.matcher = LabelMatcher(labels) if labels is not None else LabelMatcher(cfg.labels, cfg.synonyms)

    def key(self, raw: str, sha: str, where: str) -> str:
        from aidetect.data.text.normalize import TextError, clean_text, text_sha256

        try:
            key = text_sha256(clean_text(raw, self.max_bytes))
        except TextError as exc:
            raise DataError(f"{where}: unusable text ({exc})") from None
        if sha and sha != key:
            raise DataError(f"{where}: sha256 does not match the normalised text")
        return key


def import_labels(
    path: str | Path,
    log: LabelLog,
    *,
    store: ImageStore | None = None,
    labels: Sequence[str] | None = None,
    source: str = "import",
    allow_unknown_images: bool = False,
) -> ImportReport:
    """Append the file's new label rows to ``log`` (all or nothing); see the module doc for the rules.

    ``labels``: the model's label set (default: ``configs/data.yaml``'s labels and their synonyms);
    ``store``: the capture store (default ``$AIDETECT_HOME/captured``); ``source``: for rows without one.
    """
    from aidetect.feedback.capture import ImageStore, sha256_of

    file = Path(path)
    store = store or ImageStore()
    if labels is None:
        from aidetect.data.config import load_data_config

        data_cfg = load_data_config()
        matcher = LabelMatcher(data_cfg.labels, data_cfg.synonyms)
    else:
        matcher = LabelMatcher(labels)
    texts: _TextKeys | None = None  # made at the first text row
    seen = {(r.sha256, r.label, r.source, r.author) for r in log.read()}
    report = ImportReport(path=str(file))
    new: list[LabelRecord] = []
    images: dict[str, bytes] = {}
    for n, row in _rows(file):
        where = f"{file}:{n}"
        report.rows += 1
        is_text = bool(row.get("text", "").strip())
        if is_text and texts is None:
            texts = _TextKeys(labels)
        classes = texts.matcher if is_text and texts is not None else matcher
        label = classes.get(row.get("label", "")) if row.get("label", "").strip() else None
        if label is None:
            given, known = row.get("label", "").strip(), ", ".join(classes.labels)
            why = f"unknown class {given!r} (labels: {known})" if given else "no label"
            raise DataError(f"{where}: {why}")
        sha = row.get("sha256", "").strip().lower()
        if sha and not SHA256.match(sha):
            raise DataError(f"{where}: sha256 {sha[:80]!r} is not 64 hex digits")
        if is_text and texts is not None:
            sha = texts.key(row["text"], sha, where)
        elif row.get("image", "").strip():
            data = _image_bytes(file.parent, row["image"].strip(), where)
            if sha and sha != sha256_of(data):
                raise DataError(f"{where}: sha256 does not match the bytes of {row['image'].strip()}")
            sha = sha256_of(data)
            images[sha] = data
        elif not sha:
            raise DataError(f"{where}: neither sha256, image nor text given")
        elif sha not in images and not store.has(sha):
            if not allow_unknown_images:
                raise DataError(
                    f"{where}: image {sha[:12]}… is not in the capture store {store.root}",
                    hint="give its file in an 'image' column, or pass --allow-unknown-images",
                )
            report.unknown_images += 1
        extra = {k: row[k].strip() for k in OPTIONAL if row.get(k, "").strip()}
        extra.setdefault("source", source)
        try:
            record = LabelRecord(sha256=sha, label=label, **extra)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        key = (record.sha256, record.label, record.source, record.author)
        if key in seen:
            report.already += 1
            continue
        seen.add(key)
        new.append(record)
    if report.rows == 0:
        raise DataError(f"{file}: no label rows")
    for data in images.values():
        store.put(data)
    report.images_stored = len(images)
    if new:
        report.log_uri = log.append(new)
    report.added = len(new)
    for r in new:
        report.labels[r.label] = report.labels.get(r.label, 0) + 1
    return report
