"""Domain errors, one class per gRPC status that CONTRACT.md names.

Every layer raises these with a message that says what was wrong and with which
value; only `api/` turns them into gRPC statuses, so the media code never
imports grpc.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class: `status` is the name of the gRPC status code it maps to."""

    status = "INTERNAL"


class InvalidArgument(MediaError):
    status = "INVALID_ARGUMENT"


class NotFound(MediaError):
    status = "NOT_FOUND"


class ResourceExhausted(MediaError):
    status = "RESOURCE_EXHAUSTED"


class FailedPrecondition(MediaError):
    status = "FAILED_PRECONDITION"


class AlreadyExists(MediaError):
    status = "ALREADY_EXISTS"


class PermissionDenied(MediaError):
    status = "PERMISSION_DENIED"


class Unavailable(MediaError):
    status = "UNAVAILABLE"
