"""Errors with a machine-readable code, shared by the API (JSON) and the web UI (messages)."""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal the user can act on: `code` for machines, `message` for people."""

    status = 400

    def __init__(self, code: str, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class UploadRejected(ServiceError):
    status = 400


class Conflict(ServiceError):
    status = 409
