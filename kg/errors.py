"""Errors with messages that name the record, the field and what was wrong."""

from __future__ import annotations


class CartkgError(Exception):
    """Base class: anything the CLI reports as a clean one-line error (exit 2)."""


class RecordError(CartkgError):
    """A record (or one field of it) could not be read."""

    def __init__(self, message: str, *, field: str | None = None, record: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.record = record


class UsageError(CartkgError):
    """The command was called with arguments that cannot work (missing file, unknown format…)."""
