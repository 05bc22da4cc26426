"""User-facing errors: one clear line, a non-zero exit, never a stack trace."""

from __future__ import annotations


class AidetectError(Exception):
    """An error the user can act on. The CLI prints ``error: <message>`` and exits ``exit_code``."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} (hint: {self.hint})" if self.hint else base


class ConfigError(AidetectError):
    """A configuration value is missing or invalid; the message names the field."""

    exit_code = 2


class DataError(AidetectError):
    """Input data is missing, malformed or fails validation."""


class StorageError(AidetectError):
    """An object store or folder could not be read or written."""


class ServiceUnavailableError(AidetectError):
    """An external service (tracking server, S3, Prometheus, KFP) could not be reached."""


class GateFailedError(AidetectError):
    """The model failed its quality gates, so it is not registered."""

    exit_code = 3
