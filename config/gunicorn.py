"""gunicorn settings, one file for every way the web tier runs: scripts/run, the Docker image,
the API benchmark and the slow-client test (`gunicorn -c config/gunicorn.py ...`).

Threaded workers: a client that sends its body slowly (or never) ties up one thread, not a whole
worker process, so `/health/live` and status polls stay fast while uploads crawl in, and
`config.body_deadline` frees that thread when the body stalls or trickles. 2 workers x 256
threads keep 150 stalled logins or uploads at once from delaying anything (SECURITY.md); the
threads mostly wait on sockets, so they cost memory (~8 MB of stack each, reserved, not used)
rather than CPU. Put a buffering reverse proxy in front for more than that.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
# Enough that one worker alone can hold a burst of slow clients: the two do not share a burst
# evenly (one may accept most of it).
threads = int(os.environ.get("WEB_THREADS", "256"))
# gthread: how long the worker's main loop may go silent before the arbiter restarts it (a
# request that runs long, e.g. probing a big upload, runs in a thread and does not count).
timeout = int(os.environ.get("WEB_TIMEOUT_S", "120"))
graceful_timeout = 30
keepalive = 5  # seconds an idle kept-alive connection is held before it is closed
backlog = 2048
accesslog = "-"
