"""The voice channel on real synthesised speech: pitch, loudness, rate, pauses, intensity."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest

from mlcore import testmedia
from mlcore.transcribe import Segment, Word
from mlcore.voice import Prosody, baseline, measure, measure_all, with_relative_intensity

RATE = 16_000
SENTENCE = "I really cannot believe what happened to us this morning at the station."


def _speech(tmp_path, name: str, **espeak) -> np.ndarray:
    wav = testmedia.make_speech_wav(SENTENCE, tmp_path / f"{name}.wav", **espeak)
    audio, _ = librosa.load(wav, sr=RATE)
    return audio.astype(np.float32)


def _whole(audio: np.ndarray, words: tuple[Word, ...] = ()) -> Segment:
    return Segment(0.0, audio.size / RATE, SENTENCE, words)


def test_a_higher_voice_measures_a_higher_pitch(tmp_path):
    low = _speech(tmp_path, "low", pitch=20)
    high = _speech(tmp_path, "high", pitch=85)
    low_p, high_p = measure(low, RATE, _whole(low)), measure(high, RATE, _whole(high))
    assert 65 < low_p.pitch_median_hz < high_p.pitch_median_hz < 600
    # espeak-ng's -p moves the base pitch by several semitones between 20 and 85.
    assert 12 * math.log2(high_p.pitch_median_hz / low_p.pitch_median_hz) > 3
    assert low_p.voiced_fraction > 0.3 and low_p.pitch_range_st > 0


def test_loudness_follows_the_signal_level(tmp_path):
    audio = _speech(tmp_path, "plain")
    full = measure(audio, RATE, _whole(audio))
    half = measure(audio * 0.5, RATE, _whole(audio))
    assert full.loudness_dbfs - half.loudness_dbfs == pytest.approx(6.02, abs=0.3)
    assert full.loudness_dbfs < 0  # dBFS: below a full-scale sine


def test_silence_has_no_pitch_and_no_loudness():
    silence = np.zeros(RATE * 2, dtype=np.float32)
    prosody = measure(silence, RATE, Segment(0.0, 2.0, "..."))
    assert prosody.pitch_median_hz is None and prosody.loudness_dbfs is None
    assert prosody.voiced_fraction == 0.0 and prosody.speaking_rate_wps is None


def test_rate_and_pauses_come_from_word_times():
    words = (
        Word(0.0, 0.4, "one"),
        Word(0.5, 0.9, "two"),
        Word(1.6, 2.0, "three"),  # a 0.7 s pause before
        Word(2.1, 2.5, "four"),
    )
    audio = np.zeros(RATE * 3, dtype=np.float32)
    prosody = measure(audio, RATE, Segment(0.0, 2.5, "one two three four", words))
    assert prosody.speaking_rate_wps == pytest.approx(4 / 2.5)
    assert prosody.pause_count == 1 and prosody.pause_s == pytest.approx(0.7)


def test_relative_intensity_is_against_the_videos_own_baseline(tmp_path):
    calm = _speech(tmp_path, "calm", pitch=40)
    raised = _speech(tmp_path, "raised", pitch=80)
    gap = np.zeros(RATE, dtype=np.float32)
    # Three calm utterances and one louder, higher one, in one track.
    track = np.concatenate([calm * 0.3, gap, calm * 0.3, gap, calm * 0.3, gap, raised])
    spans, t = [], 0.0
    for piece in (calm, calm, calm, raised):
        spans.append(Segment(t, t + piece.size / RATE, SENTENCE))
        t += (piece.size + gap.size) / RATE
    measured = measure_all(track, RATE, spans)
    assert [p.relative_intensity for p in measured[:3]] == pytest.approx([0, 0, 0], abs=0.05)
    assert measured[3].relative_intensity > 0.5  # ~10 dB louder and several semitones higher
    # The baseline is the calm level (one pitch track over the whole span: within a fraction
    # of a dB of each calm utterance).
    assert baseline(measured)["loudness_dbfs"] == pytest.approx(measured[0].loudness_dbfs, abs=0.5)


def test_relative_intensity_formula_and_its_bounds():
    base = Prosody(200.0, 2.0, 0.5, -30.0, 3.0, 0, 0.0)
    louder = Prosody(200.0, 2.0, 0.5, -24.0, 3.0, 0, 0.0)  # +6 dB, same pitch
    shouting = Prosody(400.0, 2.0, 0.5, -6.0, 3.0, 0, 0.0)
    no_pitch = Prosody(None, None, 0.0, -24.0, None, 0, 0.0)
    # Baselines: the medians, -30 dBFS and 200 Hz.
    out = with_relative_intensity([base, base, base, base, louder, shouting, no_pitch])
    assert out[0].relative_intensity == pytest.approx(0.0)
    assert out[4].relative_intensity == pytest.approx(0.5)  # 0.5 * (6 dB / 6 dB) + 0
    assert out[5].relative_intensity == 1.0  # clipped
    assert out[6].relative_intensity == pytest.approx(1.0)  # loudness only, at full weight


def test_tracks_skip_long_pauses_and_stay_bounded():
    """pyin runs over nearby utterances together, not over long silences, and never over more
    than TRACK_MAX_S at once (memory on a long video)."""
    from mlcore.voice import TRACK_GAP_S, TRACK_MAX_S, _track_groups

    close = [Segment(0.0, 2.0, "a"), Segment(2.5, 4.0, "b")]
    far = Segment(4.0 + TRACK_GAP_S + 0.5, 9.0, "c")
    assert _track_groups([far, *close]) == [[1, 2], [0]]  # time order, split at the pause
    steady = [Segment(t, t + 4.0, "x") for t in np.arange(0.0, 3 * TRACK_MAX_S, 5.0)]
    groups = _track_groups(steady)
    assert len(groups) >= 3
    for group in groups:
        assert steady[group[-1]].end - steady[group[0]].start <= TRACK_MAX_S


def test_utterances_far_apart_measure_as_they_would_alone(tmp_path):
    calm = _speech(tmp_path, "calm", pitch=40)
    gap = np.zeros(5 * RATE, dtype=np.float32)
    track = np.concatenate([calm, gap, calm])
    second_start = (calm.size + gap.size) / RATE
    spans = [_whole(calm), Segment(second_start, second_start + calm.size / RATE, SENTENCE)]
    first, second = measure_all(track, RATE, spans)
    alone = measure(calm, RATE, _whole(calm))
    for p in (first, second):
        assert p.pitch_median_hz == pytest.approx(alone.pitch_median_hz, rel=0.02)
        assert p.loudness_dbfs == pytest.approx(alone.loudness_dbfs, abs=0.2)


def test_each_speaker_is_measured_against_their_own_usual_voice():
    # A low, quiet voice and a high, loud one, each at their usual level: against one video
    # baseline the high voice would read as intense and the low one as subdued.
    low = [Prosody(100.0, 2.0, 0.5, -30.0, 3.0, 0, 0.0)] * 2
    high = [Prosody(250.0, 2.0, 0.5, -20.0, 3.0, 0, 0.0)] * 2
    pooled = with_relative_intensity(low + high)
    assert pooled[0].relative_intensity < -0.5 and pooled[2].relative_intensity > 0.5
    apart = with_relative_intensity(low + high, [1, 1, 2, 2])
    assert [p.relative_intensity for p in apart] == [0.0, 0.0, 0.0, 0.0]
