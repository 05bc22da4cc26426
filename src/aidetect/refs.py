"""Model references: the one parser for ``models:/name@alias``, ``models:/name/3``, ``name/3``, ``3``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aidetect.errors import DataError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FORMS = (
    "models:/<name>@<alias>, models:/<name>/<version>, <name>/<version>, <name>@<alias>, "
    "<version> or @<alias>"
)


@dataclass(frozen=True)
class ModelRef:
    """A registered model and one of its versions (digits) or aliases."""

    name: str
    ref: str

    @property
    def is_version(self) -> bool:
        return self.ref.isdigit()

    @property
    def uri(self) -> str:
        sep = "/" if self.is_version else "@"
        return f"models:/{self.name}{sep}{self.ref}"

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, text: str, default_name: str = "") -> ModelRef:
        """Parse any accepted form; a bare version or alias belongs to ``default_name``."""
        raw = text.strip()
        body = raw.removeprefix("models:/") if raw.startswith("models:/") else raw
        if "@" in body and not body.startswith("@"):
            name, _, ref = body.partition("@")
        elif "/" in body:
            name, _, ref = body.rpartition("/")
        elif raw.startswith("models:/"):
            name, ref = "", ""
        else:
            name, ref = default_name, body.lstrip("@")
        if not name or not ref or not _NAME.match(name) or not _NAME.match(ref):
            raise DataError(f"bad model reference {text!r}: use {_FORMS}")
        return cls(name, ref)

    @staticmethod
    def is_registry_uri(text: str) -> bool:
        return text.strip().startswith("models:/")
