"""Quiet, useful server logs: client errors as one warning line, no per-request lines unless asked."""

from __future__ import annotations

import logging
import re
import warnings

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str, limit: int = 500) -> str:
    """``text`` as one log-safe line: control characters escaped (a client's ``\\r\\n`` cannot forge
    a log line), at most ``limit`` characters. Everything a client sent that reaches a log or an
    error message passes through here."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text if len(text) <= limit else text[:limit] + "..."


class ClientErrorFilter(logging.Filter):
    """KServe logs every rejected input with a full traceback; turn those into one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aidetect.serving.kserve_compat import InvalidInput

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InvalidInput):
            record.exc_info = None
            record.exc_text = None
            record.msg, record.args = "client error: %s", (printable(str(exc)),)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_server_logging(access_log: bool) -> None:
    """Apply after KServe configured logging: filter client-error traces, per-request lines optional."""
    flt = ClientErrorFilter()
    for name in ("kserve", "kserve.trace"):
        logger = logging.getLogger(name)
        logger.addFilter(flt)
        for handler in logger.handlers:
            handler.addFilter(flt)
    # KServe's app uses FastAPI's ORJSONResponse, deprecated in this FastAPI: warn once, not per request
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    per_request = logging.INFO if access_log else logging.WARNING
    logging.getLogger("uvicorn.access").setLevel(per_request)
    logging.getLogger("kserve.trace").setLevel(per_request)
