"""Domain errors raised by services and mapped once to transport responses."""

from __future__ import annotations


class MotcuaError(Exception):
    """Base of every error the product explains to its user."""


class NotFound(MotcuaError):
    """The named thing does not exist."""


class Invalid(MotcuaError, ValueError):
    """Input failed validation; the message names the record and field."""


class Conflict(MotcuaError):
    """The change clashes with existing state (duplicate, concurrent claim...)."""


class PermissionDenied(MotcuaError):
    """The caller may not do this."""


class Unauthenticated(MotcuaError):
    """No valid credentials: missing, malformed, expired or revoked token, or a wrong password."""
