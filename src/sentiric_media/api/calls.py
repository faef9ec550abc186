"""What every RPC does around its body: trace id, status mapping, request metrics.

`unary` and `streaming` wrap servicer methods (whose object has a
`count_request(method, code)`). They put the caller's
`x-trace-id` (and the port or call id of the request) into the logging context,
turn a `MediaError` into its gRPC status with the error's message, turn anything
unexpected into INTERNAL without a stack trace on the wire (it goes to the log),
and count the request by method and final status.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from sentiric_media.errors import MediaError
from sentiric_media.observability.logging import call_id_var, port_var, trace_id_var

log = logging.getLogger("sentiric_media.api")


def _note_request(request: Any, context: grpc.aio.ServicerContext) -> None:
    for key, value in context.invocation_metadata() or ():
        if key == "x-trace-id":
            trace_id_var.set(str(value))
    port = getattr(request, "server_rtp_port", 0) or getattr(request, "rtp_port", 0)
    if port:
        port_var.set(port)
    call_id = getattr(request, "call_id", "")
    if call_id:
        call_id_var.set(call_id)


@contextlib.asynccontextmanager
async def _rpc(
    servicer: Any, method: str, request: Any, context: grpc.aio.ServicerContext
) -> AsyncIterator[None]:
    """The error handling and accounting shared by every kind of handler."""
    _note_request(request, context)
    code = "OK"
    try:
        yield
    except MediaError as exc:
        code = exc.status
        log.info("%s -> %s: %s", method, exc.status, exc)
        await context.abort(getattr(grpc.StatusCode, exc.status), str(exc))
    except grpc.aio.AbortError:
        code = _code(context)
        raise
    except Exception as exc:
        code = "INTERNAL"
        log.exception("%s failed unexpectedly", method)
        await context.abort(grpc.StatusCode.INTERNAL, f"{method} failed: {type(exc).__name__}")
    except BaseException:
        code = "CANCELLED"
        raise
    finally:
        servicer.count_request(method, code)


def _code(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "OK"


def unary(handler: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]) -> Any:
    """Decorator for unary-response handlers (unary or client-streaming requests)."""
    method = handler.__name__

    @functools.wraps(handler)
    async def run(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _rpc(self, method, request, context):
            return await handler(self, request, context)

    return run


def streaming(handler: Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[Any]]) -> Any:
    """Decorator for response-streaming handlers written as async generators."""
    method = handler.__name__

    @functools.wraps(handler)
    async def run(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _rpc(self, method, request, context):
            async for message in handler(self, request, context):
                yield message

    return run
