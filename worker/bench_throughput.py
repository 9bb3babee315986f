"""Throughput benchmark: jobs per minute for one worker on a batch of short clips.

    python -m worker.bench_throughput [--jobs 20]

Starts one Celery worker as production runs it (prefork pool, concurrency 1, `inference` queue)
on the configured database and broker (the embedded defaults when nothing is set), waits until it
answers a ping (model loading is not counted: a worker loads once), submits the batch through the
same service the API uses, and times until every job has finished. Prints jobs/minute, the mean
seconds per stage from the jobs' own timings, and the outcome counts.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = (
    "I can't believe you did that to me.",
    "Oh wow, this is the best day of my life!",
    "We should meet at the coffee shop around noon.",
)


def _wait_for_worker(app, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.control.ping(destination=None, timeout=1.0):
            return
    raise SystemExit("the worker did not answer a ping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import User
    from config.celery import app
    from mlcore import media, testmedia
    from quotas.services import grant_extra_analyses
    from videos.models import AnalysisJob
    from videos.services import submit_analysis
    from worker.processes import inference_worker_command

    call_command("migrate", verbosity=0)
    app.control.purge()
    user, _ = User.objects.get_or_create(email="throughput@bench.invalid")
    grant_extra_analyses(user, args.jobs)
    with tempfile.TemporaryDirectory() as tmp:
        clip = testmedia.make_talking_clip(Path(tmp) / "short.mp4", SENTENCES, pause_s=0.8)
        clip_seconds = media.probe(clip).duration
        worker = subprocess.Popen(inference_worker_command("bench"), cwd=ROOT)
        try:
            _wait_for_worker(app)
            started = time.monotonic()
            ids = []
            for _ in range(args.jobs):
                with clip.open("rb") as fh:
                    ids.append(submit_analysis(user, upload=fh, name="short.mp4").pk)
            jobs = AnalysisJob.objects.filter(pk__in=ids)
            while jobs.exclude(finished_at=None).count() < len(ids):
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"timed out; {Counter(jobs.values_list('status', flat=True))}")
                time.sleep(0.25)
            elapsed = time.monotonic() - started
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=60)

    finished = list(AnalysisJob.objects.filter(pk__in=ids))
    stages: dict[str, list[float]] = {}
    for job in finished:
        for stage, seconds in job.stage_timings.items():
            stages.setdefault(stage, []).append(seconds)
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    print(
        f"{args.jobs} jobs of a {clip_seconds:.1f} s clip ({len(SENTENCES)} sentences), one "
        f"worker (prefork, concurrency 1), {db}, broker {broker}, {os.cpu_count()} CPUs"
    )
    print(f"outcomes   {dict(Counter(j.status for j in finished))}")
    print(f"wall       {elapsed:.1f} s  ->  {args.jobs / elapsed * 60:.1f} jobs/minute")
    print(
        "per job    "
        + "  ".join(f"{k} {statistics.fmean(v):.2f}s" for k, v in sorted(stages.items()))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
