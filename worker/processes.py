"""Servers that benchmarks and tests start as separate processes: real `celery worker`s as
production runs them, and loopback ports for Redis, gunicorn or S3 stand-ins."""

from __future__ import annotations

import socket
import sys


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def inference_worker_command(name: str) -> list[str]:
    """`celery worker` for the `inference` queue as production runs it (prefork, one process)."""
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "inference",
        "--pool", "prefork", "--concurrency", "1", "-n", f"{name}@%h", "--loglevel", "WARNING",
    ]  # fmt: skip
