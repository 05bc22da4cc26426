"""The append-only label log: what a person (or an import) decided an image is.

Every append writes one new JSONL object under the log root (local folder or ``s3://``), at
``<root>/date=YYYY-MM-DD/<UTC stamp>-<random>.jsonl``: nothing is ever rewritten, so concurrent
writers (review page, CSV import, Label Studio sync) cannot lose each other's labels and S3 needs no
append. Readers take the union; which label wins for an image when several disagree is the
feedback loop's policy, not the log's (:meth:`LabelLog.latest` is only the newest one).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields

from aidetect import paths, storage
from aidetect.errors import DataError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_TEXT = 200


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class LabelRecord:
    """One decision about one image (by content hash)."""

    sha256: str
    label: str  # a class name of the model's label set (e.g. REAL, FAKE)
    source: str  # where it came from: review-page, csv, label-studio, ...
    author: str = ""  # who decided (a reviewer name; never a token)
    model_name: str = ""
    model_version: str = ""  # the model whose output the person saw
    ts: str = field(default_factory=_now)  # ISO 8601, UTC
    note: str = ""

    def __post_init__(self) -> None:
        if not SHA256.match(self.sha256):
            raise DataError(f"label: sha256 must be 64 lowercase hex digits, got {self.sha256[:80]!r}")
        if not self.label.strip() or not self.source.strip():
            raise DataError("label: label and source must not be empty")
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise DataError(f"label: {f.name} must be a string of at most {MAX_TEXT} characters")
        try:
            dt.datetime.fromisoformat(self.ts)
        except ValueError:
            raise DataError(f"label: ts {self.ts!r} is not an ISO 8601 time") from None

    @classmethod
    def from_dict(cls, row: dict[str, object]) -> LabelRecord:
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in row.items() if k in known})  # type: ignore[arg-type]
        except TypeError as exc:
            raise DataError(f"label: {exc}") from None


def default_root() -> str:
    return str(paths.home() / "labels")


class LabelLog:
    """Append and read label records under ``root`` (default ``$AIDETECT_HOME/labels``)."""

    def __init__(self, root: str = "") -> None:
        self.root = root or default_root()

    def append(self, records: Iterable[LabelRecord]) -> str:
        """Write ``records`` as one new object (all or nothing); returns its URI."""
        rows = list(records)
        if not rows:
            raise DataError("label log: nothing to append")
        now = dt.datetime.now(dt.UTC)
        name = f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
        uri = storage.join(self.root, f"date={now:%Y-%m-%d}", name)
        body = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows)
        storage.write_bytes(uri, body.encode("utf-8"))
        return uri

    def read(self) -> list[LabelRecord]:
        """Every record, oldest first (by ``ts``)."""
        out: list[LabelRecord] = []
        for uri in storage.list_uris(self.root, ".jsonl"):
            for n, line in enumerate(storage.read_bytes(uri).decode("utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    out.append(LabelRecord.from_dict(json.loads(line)))
                except (ValueError, DataError) as exc:
                    raise DataError(f"label log {uri}:{n}: {exc}") from None
        return sorted(out, key=lambda r: r.ts)

    def latest(self) -> dict[str, LabelRecord]:
        """The newest record per image."""
        return {r.sha256: r for r in self.read()}
