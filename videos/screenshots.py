"""Screenshots of the job page: `python -m videos.screenshots` (with the test settings and
servers, as for the tests) writes var/screenshots/job-desktop.png (1366x900), job-phone.png
(390x844) and their whole-page versions (*-full.png).

They come from the job page's browser test, which checks the page while it takes them (a demo
result on a real spoken clip, in real Chromium against a live server), so a screenshot of a
broken page is never produced quietly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TEST = "videos/tests/test_results_browser.py::test_key_moments_player_sync_and_screenshots"


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    code = pytest.main(["-q", "-p", "no:warnings", "--rootdir", str(root), str(root / TEST)])
    if code == 0:
        print(f"Screenshots in {root / 'var' / 'screenshots'}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
