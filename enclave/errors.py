"""Domain errors: a message safe to show a person, a detail for the log, and a reason code."""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of every refusal; `str(exc)` is the safe message."""

    reason = "error"
    status = 400

    def __init__(self, message: str, *, detail: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or message
        if reason:
            self.reason = reason


class NotFound(EnclaveError):
    reason = "not_found"
    status = 404


class Invalid(EnclaveError):
    reason = "invalid"
    status = 400


class Conflict(EnclaveError):
    reason = "conflict"
    status = 409


class PermissionDenied(EnclaveError):
    reason = "forbidden"
    status = 403


class Unavailable(PermissionDenied):
    """Refused for now: the host has no room (memory, network addresses); the same request may work later."""

    reason = "unavailable"
    status = 503


class HostFault(EnclaveError):
    """Refused because something on the host is wrong (image missing, data folder gone, hardening not
    applied): the person can do nothing about it, an administrator must."""

    reason = "host_fault"
    status = 500
