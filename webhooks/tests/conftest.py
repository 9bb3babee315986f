"""Fixtures for webhooks: a real HTTP receiver on loopback, users, jobs that can end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.models import User
from videos.models import AnalysisJob
from videos.testing import make_stored_video


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next action of `script` (the last one repeats): an HTTP
    status, ("sleep", seconds) before a 200, or ("redirect", location)."""

    url: str
    script: list = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)

    def wait_for(self, count: int, timeout_s: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} of {count} requests came"
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 (http.server in a thread)."""
    state: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rx: Receiver = state["receiver"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rx.received.append(Received(self.path, dict(self.headers.items()), body))
            action = rx.script[min(len(rx.received), len(rx.script)) - 1]
            if isinstance(action, tuple) and action[0] == "sleep":
                time.sleep(action[1])
                action = 200
            if isinstance(action, tuple) and action[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", action[1])
            else:
                self.send_response(action)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks/vs?x=1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_loopback(settings):
    """Tests deliver to loopback: the setting a deployment would turn on for its own network."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.WEBHOOK_RETRY_BASE_S = 0.2
    settings.WEBHOOK_TIMEOUT_S = 2.0
    return settings


@pytest.fixture
def user(db) -> User:
    return User.objects.create_user("hooks@example.com", "pw-Hooks-12345")


@pytest.fixture
def make_job(user, media_root):
    """A queued job with a stored (not media) video and the given callback URL; not sent."""

    def make(callback_url: str = "", **fields: object) -> AnalysisJob:
        video = make_stored_video(user, original_name="talk.mp4", duration=300.0)
        return AnalysisJob.objects.create(
            video=video, owner=user, callback_url=callback_url, **fields
        )

    return make
