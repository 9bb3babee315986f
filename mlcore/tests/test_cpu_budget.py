"""A guard against slowing down unnoticed: CPU seconds per second of audio, per stage, for a short
fixed clip (real face, espeak-ng speech) through the product's own Analyzer, against budgets
stored beside this file (`cpu_budget.json`).

CPU seconds (all threads, and FFmpeg once it exits) rather than wall time: a loaded machine
slows the wall clock, not the work done, so the test is not a flaky timed test. A stage fails
when it costs more than `factor` times its recorded figure (plus `slack_cpu_s_per_s`, so the
smallest stages do not fail on noise), naming the stage.

After a deliberate change in cost, record new figures:

    DJANGO_SETTINGS_MODULE=config.settings.test python -m mlcore.tests.test_cpu_budget --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlcore import testmedia

BUDGET_FILE = Path(__file__).with_name("cpu_budget.json")
SENTENCES = (
    "We should meet at the coffee shop around noon.",
    "Oh wow, this is the best day of my whole life!",
    "I can't believe you did that to me, I'm so angry right now.",
)


def make_clip(directory: Path) -> Path:
    return testmedia.make_talking_clip(
        directory / "budget.mp4",
        SENTENCES,
        pause_s=0.8,
        picture=testmedia.real_face_video(),
        size=(352, 288),
    )


def measure(clip: Path, runs: int = 2) -> dict[str, float]:
    """Per stage, the least CPU seconds per audio second over `runs` analyses (after one warm-up
    run: first calls pay one-off set-up)."""
    from mlcore.bench import StageCpu
    from videos.jobs import get_analyzer

    get_analyzer.cache_clear()  # the product's settings now, not another test's
    analyzer = get_analyzer()
    analyzer.analyze(clip)
    best: dict[str, float] = {}
    for _ in range(runs):
        stage_cpu = StageCpu()
        result = analyzer.analyze(clip, progress=stage_cpu)
        stage_cpu("end", 1.0)
        for stage, seconds in stage_cpu.seconds.items():
            per_s = seconds / result.duration
            best[stage] = min(best.get(stage, per_s), per_s)
    best["total"] = sum(best.values())
    return best


def over_budget(measured: dict[str, float], budget: dict) -> list[str]:
    """A line per stage that costs more than its budget allows."""
    factor, slack = budget["factor"], budget["slack_cpu_s_per_s"]
    lines = []
    for stage, recorded in budget["cpu_s_per_audio_s"].items():
        limit = factor * recorded + slack
        got = measured.get(stage, 0.0)
        if got > limit:
            lines.append(
                f"stage '{stage}' costs {got:.4f} CPU s per audio second, over its budget "
                f"{limit:.4f} ({factor:g} x the recorded {recorded:.4f} + {slack:g})"
            )
    return lines


def test_over_budget_names_the_stage():
    budget = {"factor": 2.0, "slack_cpu_s_per_s": 0.01, "cpu_s_per_audio_s": {"faces": 0.05}}
    assert over_budget({"faces": 0.10}, budget) == []
    (line,) = over_budget({"faces": 0.12}, budget)
    assert "'faces'" in line and "0.1200" in line


@pytest.mark.slow
@pytest.mark.django_db
def test_no_stage_costs_twice_its_recorded_cpu(tmp_path):
    budget = json.loads(BUDGET_FILE.read_text())
    measured = measure(make_clip(tmp_path))
    problems = over_budget(measured, budget)
    assert not problems, "\n".join(problems) + f"\nmeasured: {measured}"


if __name__ == "__main__":  # python -m mlcore.tests.test_cpu_budget [--write]
    import tempfile

    import django

    django.setup()
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(make_clip(Path(tmp)), runs=3)
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}, indent=2))
    if "--write" in sys.argv:
        budget = json.loads(BUDGET_FILE.read_text())
        budget["cpu_s_per_audio_s"] = {k: round(v, 4) for k, v in figures.items()}
        BUDGET_FILE.write_text(json.dumps(budget, indent=2) + "\n")
        print(f"written to {BUDGET_FILE}")
