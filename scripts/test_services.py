"""Throwaway PostgreSQL and Redis servers for `scripts/test` when none is configured.

`start` launches each missing service on a free loopback port, from Debian's server binaries, in
a fresh temporary directory, and prints the `export ...` lines for the shell to eval; `stop DIR`
shuts them down and deletes the directory. PostgreSQL refuses to run as root, so as root it runs
as the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATABASE = "video_sentiment"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        sys.exit(f"error: PostgreSQL's {name} not found (apt-get install -y postgresql)")
    return found[-1]


def _as_postgres_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])}... failed: {done.stderr.strip()[-800:]}")


def start_postgres(workdir: Path) -> str:
    data = workdir / "pg"
    data.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (workdir, data):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = _free_port()
    prefix = _as_postgres_user()
    _run(
        [
            *prefix,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]
    )
    # fsync off: a throwaway database need not survive a power cut, and tests create many.
    options = (
        f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    )
    _run(
        [
            *prefix,
            _pg_bin("pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(workdir / "pg.log"),
            "-w",
            "start",
        ]
    )
    _run([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE])
    return f"postgres://postgres@127.0.0.1:{port}/{DATABASE}"


def start_redis(workdir: Path) -> str:
    port = _free_port()
    server = shutil.which("redis-server") or sys.exit("error: redis-server not found")
    _run(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(workdir / "redis.pid"), "--dir", str(workdir),
         "--logfile", str(workdir / "redis.log")]
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    sys.exit("error: redis-server did not start")


def start(need_db: bool, need_broker: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="vs-test-services-"))
    os.chmod(workdir, 0o755)
    lines = [f"export TEST_SERVICES_DIR={workdir}"]
    if need_db:
        lines.append(f"export DATABASE_URL={start_postgres(workdir)}")
    if need_broker:
        lines.append(f"export CELERY_BROKER_URL={start_redis(workdir)}")
    print("\n".join(lines))


def stop(workdir: Path) -> None:
    if (workdir / "pg").is_dir():
        subprocess.run(
            [
                *_as_postgres_user(),
                _pg_bin("pg_ctl"),
                "-D",
                str(workdir / "pg"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
    pidfile = workdir / "redis.pid"
    if pidfile.is_file():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), 15)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["start"]:
        start(need_db="--db" in sys.argv, need_broker="--broker" in sys.argv)
    elif sys.argv[1:2] == ["stop"] and len(sys.argv) == 3:
        stop(Path(sys.argv[2]))
    else:
        sys.exit("usage: test_services.py start [--db] [--broker] | stop DIR")
