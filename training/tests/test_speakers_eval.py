"""The speaker channel's measurement (training.speakers): the diarization error rate on known
cases, and dialogues stitched from real voices with the right reference turns."""

from __future__ import annotations

import random

import numpy as np
import pytest

from training import speakers as ts


def test_a_perfect_hypothesis_scores_zero_whatever_its_speaker_names():
    reference = [(0.0, 2.0, "ann"), (2.5, 4.0, "ben")]
    hypothesis = [(0.0, 2.0, "S2"), (2.5, 4.0, "S1")]
    assert ts.der(reference, hypothesis, 5.0) == {
        "der": 0.0,
        "miss": 0.0,
        "false_alarm": 0.0,
        "confusion": 0.0,
    }


def test_miss_false_alarm_and_confusion_are_fractions_of_the_reference_speech():
    reference = [(0.0, 4.0, "ann"), (4.0, 8.0, "ben")]  # 8 s of speech
    # 1 s of Ann missed, 1 s of silence called speech, 2 s of Ben given to Ann.
    hypothesis = [(1.0, 4.0, "A"), (4.0, 6.0, "A"), (6.0, 8.0, "B"), (9.0, 10.0, "B")]
    scores = ts.der(reference, hypothesis, 10.0)
    assert scores["miss"] == pytest.approx(1 / 8, abs=0.01)
    assert scores["false_alarm"] == pytest.approx(1 / 8, abs=0.01)
    assert scores["confusion"] == pytest.approx(2 / 8, abs=0.01)
    assert scores["der"] == pytest.approx(4 / 8, abs=0.02)


def test_overlapping_speech_counts_twice_and_one_voice_there_is_a_miss():
    reference = [(0.0, 3.0, "ann"), (2.0, 5.0, "ben")]  # 6 s of speech, 1 s of it overlapped
    hypothesis = [(0.0, 2.5, "A"), (2.5, 5.0, "B")]
    assert ts.der(reference, hypothesis, 5.0)["miss"] == pytest.approx(1 / 6, abs=0.01)


def test_the_collar_forgives_boundaries_only():
    reference = [(1.0, 3.0, "ann")]
    early = [(0.8, 3.2, "A")]  # 0.2 s too long at both ends
    assert ts.der(reference, early, 4.0)["false_alarm"] > 0
    assert ts.der(reference, early, 4.0, collar=0.25)["der"] == 0.0
    wrong = [(1.0, 3.0, "A"), (1.0, 3.0, "B")]  # a second speaker throughout: not forgiven
    assert ts.der(reference, wrong, 4.0, collar=0.25)["false_alarm"] > 0.5


def test_a_stitched_dialogue_places_each_voice_where_its_turns_say():
    rate = ts.SAMPLE_RATE
    clips = {
        name: [ts.Clip(np.full(rate, level, np.float32), 0.1, 0.9) for _ in range(3)]
        for name, level in (("ann", 0.1), ("ben", -0.1))
    }
    rec = ts.stitch(random.Random(1), "d", "test", clips, target_s=12.0)
    assert rec.speakers == 2 and rec.duration >= 12.0
    level = {"ann": 0.1, "ben": -0.1}
    for start, end, speaker in rec.turns:
        assert end - start == pytest.approx(0.8, abs=1e-6)  # the voice inside each 1 s clip
        middle = (start + end) / 2
        alone = all(not (s - 0.1 <= middle <= e + 0.1) for s, e, w in rec.turns if w != speaker)
        if alone:  # where another voice overlaps, the two add up
            assert rec.audio[int(middle * rate)] == pytest.approx(level[speaker])


def test_the_pocketsphinx_voices_alone_give_held_out_recordings():
    recordings = list(ts.recordings(None, None))
    assert {r.split for r in recordings} == {"test"}
    mixed = next(r for r in recordings if r.name == "test-pocketsphinx-3")
    assert mixed.speakers == 3 and 50 < mixed.duration < 80
    single = next(r for r in recordings if r.name == "test-single-librivox")
    assert single.speakers == 1
