"""Quiet, useful server logs: client errors as one warning line, no per-request lines unless asked."""

from __future__ import annotations

import logging
import warnings


class ClientErrorFilter(logging.Filter):
    """KServe logs every rejected input with a full traceback; turn those into one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aidetect.serving.kserve_compat import InvalidInput

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InvalidInput):
            record.exc_info = None
            record.exc_text = None
            record.msg, record.args = "client error: %s", (exc,)
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
