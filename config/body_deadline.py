"""A deadline on reading each request's body, for the web tier behind gunicorn.

gunicorn's threaded workers give every connection a thread while its body is read, with no
timeout: 140 connections that announce a small login form and send it a byte at a time (no
account needed) held every thread and froze the site. This WSGI wrapper bounds each body read:

- a read that waits more than `WEB_BODY_STALL_S` (default 20 s) for the next bytes fails;
- the whole body must arrive within `WEB_BODY_GRACE_S` (10 s) plus its length at
  `WEB_BODY_MIN_RATE` bytes a second (16 kB/s: a 500 MB upload gets ~9 hours, a login form 10 s).

A body that misses either is cut off (its thread is freed; the request fails as unreadable). It
works on the socket gunicorn hands the application (`gunicorn.socket`); elsewhere (the test
client, runserver) it changes nothing. A buffering reverse proxy in front does the same and more
(SECURITY.md)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable

STALL_S = float(os.environ.get("WEB_BODY_STALL_S", "20"))
GRACE_S = float(os.environ.get("WEB_BODY_GRACE_S", "10"))
MIN_RATE = float(os.environ.get("WEB_BODY_MIN_RATE", str(16 * 1024)))


class BodyTooSlow(OSError):
    """The client did not send its body in time."""


class DeadlineInput:
    """wsgi.input whose every read waits at most until the body's deadline (and STALL_S)."""

    def __init__(self, stream, sock: socket.socket, deadline: float) -> None:
        self._stream, self._sock, self._deadline = stream, sock, deadline

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise BodyTooSlow("the request body did not arrive in time")
        self._sock.settimeout(min(left, STALL_S))

    def _call(self, method: str, *args):
        self._arm()
        try:
            return getattr(self._stream, method)(*args)
        except TimeoutError as exc:
            raise BodyTooSlow("the request body did not arrive in time") from exc

    def read(self, *args):
        return self._call("read", *args)

    def readline(self, *args):
        return self._call("readline", *args)

    def readlines(self, *args):
        return self._call("readlines", *args)

    def __iter__(self):
        return iter(self.readline, b"")


def deadline_s(content_length: int) -> float:
    return GRACE_S + content_length / MIN_RATE


def with_body_deadline(app: Callable) -> Callable:
    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if isinstance(sock, socket.socket) and (length.isdigit() or chunked):
            size = int(length) if length.isdigit() else 0
            deadline = time.monotonic() + deadline_s(size)
            environ["wsgi.input"] = DeadlineInput(environ["wsgi.input"], sock, deadline)
            try:
                return app(environ, start_response)
            finally:
                sock.settimeout(None)  # gunicorn sets the mode it wants for keep-alive itself
        return app(environ, start_response)

    return application
