"""Logging: JSON lines in production, readable lines in development.

Every record carries `call_id`, `port` and `trace_id`: sessions pass them as
`extra`, and the gRPC layer sets them in context variables for the duration of
a request, so a line written anywhere while serving a call names that call.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

trace_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="")
call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="")
port_var: contextvars.ContextVar[int] = contextvars.ContextVar("port", default=0)

_CONTEXT_FIELDS = (("call_id", call_id_var), ("port", port_var), ("trace_id", trace_id_var))


class CallContextFilter(logging.Filter):
    """Fills the call fields from the request context where the caller gave none."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, variable in _CONTEXT_FIELDS:
            if not getattr(record, name, None):
                setattr(record, name, variable.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, _ in _CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s%(call)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = [
            f"{name}={getattr(record, name)}"
            for name, _ in _CONTEXT_FIELDS
            if getattr(record, name, None)
        ]
        record.call = f"  [{' '.join(fields)}]" if fields else ""
        return super().format(record)


def configure_logging(production: bool, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if production else ReadableFormatter())
    handler.addFilter(CallContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("aio_pika", "aiormq", "botocore", "aiobotocore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
