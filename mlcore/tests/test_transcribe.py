"""Whisper on espeak-ng speech, model resolution errors, and utterance merge/split."""

from __future__ import annotations

import itertools
import re
from types import SimpleNamespace

import numpy as np
import pytest

from mlcore import testmedia
from mlcore.media import load_audio
from mlcore.tests.conftest import SPOKEN_WORDS
from mlcore.transcribe import (
    Segment,
    WhisperModelError,
    Word,
    capped_decoding,
    clamp_to_duration,
    load_whisper,
    resolve_model,
    segments_to_utterances,
    transcribe,
    whisper_device,
)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_transcript_contains_the_spoken_words(analyzer, tmp_path):
    wav = testmedia.make_speech_wav("I really love this sunny weather today.", tmp_path / "s.wav")
    audio = load_audio(wav)
    segments = transcribe(audio, analyzer.whisper)
    heard = _words(" ".join(s.text for s in segments))
    assert {"love", "sunny", "weather", "today"} <= heard
    assert all(0 <= s.start < s.end <= len(audio) / 16_000 + 0.1 for s in segments)


def test_transcript_of_a_clip_with_pauses(analyzer, talking_clip):
    audio = load_audio(talking_clip)
    fractions: list[float] = []
    segments = transcribe(audio, analyzer.whisper, progress=fractions.append)
    heard = _words(" ".join(s.text for s in segments))
    missing = set(SPOKEN_WORDS) - heard
    assert len(missing) <= 1, f"not heard: {missing}"
    starts = [s.start for s in segments]
    assert starts == sorted(starts)
    assert all(s.words for s in segments)  # word timestamps are on
    assert fractions and all(0 <= f <= 1 for f in fractions)


def test_piece_bounds_cut_long_audio_at_its_quietest_moment_before_each_boundary():
    from mlcore import transcribe as module

    rate = 100  # samples per second, small numbers
    loud = np.ones(int(module.TRANSCRIBE_PIECE_S * 2.5 * rate), dtype=np.float32)
    quiet_at = int((module.TRANSCRIBE_PIECE_S - 7) * rate)  # 7 s before the first boundary
    loud[quiet_at : quiet_at + rate] = 0.0
    bounds = module.piece_bounds(loud.size, rate, loud)
    assert bounds[0] == 0 and bounds[-1] == loud.size and len(bounds) == 4
    assert quiet_at <= bounds[1] <= quiet_at + rate  # cut in the silence, not at 300 s
    assert all(b - a <= module.TRANSCRIBE_PIECE_S * rate for a, b in itertools.pairwise(bounds))
    assert module.piece_bounds(int(module.TRANSCRIBE_PIECE_S * rate), rate) == [0, 30000]


def test_long_audio_is_transcribed_in_pieces_with_the_same_words(
    analyzer, talking_clip, monkeypatch
):
    """Pieces keep memory bounded on a long video; cut in a pause, they hear the same words at
    the same times as one pass."""
    from mlcore import transcribe as module

    audio = load_audio(talking_clip)
    whole = transcribe(audio, analyzer.whisper)
    monkeypatch.setattr(module, "TRANSCRIBE_PIECE_S", audio.size / 16_000 / 2 + 1.0)
    monkeypatch.setattr(module, "CUT_SEARCH_S", 3.0)
    assert len(module.piece_bounds(audio.size, 16_000, audio)) == 3  # two pieces
    pieces = transcribe(audio, analyzer.whisper)
    assert _words(" ".join(s.text for s in pieces)) == _words(" ".join(s.text for s in whole))
    assert [round(s.start, 1) for s in pieces] == pytest.approx(
        [round(s.start, 1) for s in whole],
        abs=0.5,  # Whisper's own timestamp jitter
    )


def test_silence_and_empty_audio_give_no_segments(analyzer):
    assert transcribe(np.zeros(16_000 * 3, dtype=np.float32), analyzer.whisper) == []
    assert transcribe(np.zeros(0, dtype=np.float32), analyzer.whisper) == []


def test_capped_decoding_is_greedy_with_tokens_in_proportion_to_the_audio():
    assert capped_decoding(5.0) == {"temperature": 0.0, "max_new_tokens": 32 + 60}
    assert capped_decoding(0.0)["max_new_tokens"] == 32
    # One decode writes one 30 s window: longer audio gets a window's worth, within Whisper's 448.
    assert capped_decoding(600.0) == capped_decoding(30.0)
    assert capped_decoding(30.0)["max_new_tokens"] == 32 + 360 < 448
    assert capped_decoding(5.0, tokens_per_s=8.0)["max_new_tokens"] == 32 + 40


class _Recorder:
    """A stand-in Whisper that records the options `transcribe` passes it."""

    feature_extractor = SimpleNamespace(sampling_rate=16_000)

    def __init__(self) -> None:
        self.options: list[dict] = []

    def transcribe(self, _audio, **options):
        self.options.append(options)
        return iter(()), None


def test_only_capped_transcription_changes_faster_whispers_decoding():
    audio = np.zeros(16_000 * 4, dtype=np.float32)
    model = _Recorder()
    transcribe(audio, model)  # English: faster-whisper's defaults, so the same transcripts
    transcribe(audio, model, multilingual=True, capped=True)
    english, other = model.options
    assert "temperature" not in english and "max_new_tokens" not in english
    assert other["temperature"] == 0.0 and other["max_new_tokens"] == 32 + 48


def test_the_packaged_model_is_the_default_and_loaded_once(analyzer):
    assert resolve_model(None) == resolve_model("tiny.en") == resolve_model("")
    assert load_whisper() is load_whisper("tiny.en") is analyzer.whisper


def test_a_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(WhisperModelError, match="no Whisper model"):
        resolve_model(tmp_path / "nowhere")
    with pytest.raises(WhisperModelError, match="no Whisper model"):
        resolve_model(str(tmp_path))  # exists, but holds no model.bin


def test_an_uncached_model_name_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(WhisperModelError, match="not available offline"):
        resolve_model("large-v3")
    assert not any(tmp_path.rglob("model.bin"))


# --- segments_to_utterances: a pure function ---


def seg(start: float, end: float, text: str = "words here") -> Segment:
    return Segment(start, end, text)


def test_no_segments_no_utterances():
    assert segments_to_utterances([]) == []
    assert segments_to_utterances([seg(0, 2, "   ")]) == []


def test_a_short_fragment_merges_into_its_neighbour():
    out = segments_to_utterances(
        [seg(0.0, 3.0, "I told you already."), seg(3.2, 3.6, "Okay?"), seg(6.0, 9.0, "Fine.")],
        min_duration_s=1.0,
        max_duration_s=8.0,
    )
    assert [(u.start, u.end, u.text) for u in out] == [
        (0.0, 3.6, "I told you already. Okay?"),
        (6.0, 9.0, "Fine."),
    ]


def test_a_short_first_fragment_merges_forward():
    out = segments_to_utterances([seg(0.0, 0.4, "Well,"), seg(0.5, 3.0, "that went badly.")])
    assert [(u.start, u.end, u.text) for u in out] == [(0.0, 3.0, "Well, that went badly.")]


def test_merging_never_exceeds_the_maximum():
    out = segments_to_utterances(
        [seg(0.0, 7.5, "a long one"), seg(7.6, 8.3, "Hm.")], min_duration_s=1.0, max_duration_s=8.0
    )
    assert len(out) == 2
    assert all(u.duration <= 8.0 for u in out)


def test_a_long_segment_splits_at_word_timestamps():
    words = tuple(Word(float(i), i + 0.9, f"w{i}") for i in range(10))
    out = segments_to_utterances([Segment(0.0, 9.9, "...", words)], 1.0, 4.0)
    assert [u.text for u in out] == ["w0 w1 w2", "w3 w4 w5 w6", "w7 w8 w9"]
    assert out[0].start == 0.0
    assert out[-1].end == 9.9
    assert all(u.duration <= 4.0 for u in out)
    assert all(a.end <= b.start for a, b in zip(out, out[1:], strict=False))


def test_a_long_segment_without_word_times_splits_by_text():
    text = "one two three four five six seven eight nine ten eleven twelve"
    out = segments_to_utterances([seg(10.0, 30.0, text)], 1.0, 8.0)
    assert len(out) == 3
    assert " ".join(u.text for u in out) == text
    assert out[0].start == 10.0
    assert out[-1].end == pytest.approx(30.0)
    assert all(u.duration <= 8.0 + 1e-9 for u in out)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(out, out[1:], strict=False))


def test_a_sentence_split_across_segments_is_joined():
    # Seen on a LibriVox clip: Whisper ended a segment in the middle of the sentence.
    out = segments_to_utterances(
        [
            seg(0.0, 5.2, "And Mr. John Dashwood had then leisure to consider how much there "
                          "might be prudently in"),
            seg(5.3, 7.0, "his power to do for them."),
            seg(7.4, 9.0, "He was not an ill-disposed young man."),
        ]
    )  # fmt: skip
    assert [u.text for u in out] == [
        "And Mr. John Dashwood had then leisure to consider how much there might be prudently "
        "in his power to do for them.",
        "He was not an ill-disposed young man.",
    ]


def test_mid_sentence_pieces_stay_apart_after_a_long_pause_or_past_the_maximum():
    after_pause = segments_to_utterances([seg(0.0, 2.0, "so I said"), seg(4.0, 6.0, "never.")])
    assert len(after_pause) == 2
    too_long = segments_to_utterances(
        [seg(0.0, 7.0, "so I said"), seg(7.2, 10.0, "never.")], max_duration_s=9.6
    )
    assert len(too_long) == 2


def test_a_long_segment_is_cut_at_a_sentence_end_near_the_middle():
    texts = ["I", "went", "home.", "Then", "I", "slept", "well"]
    words = tuple(Word(float(i), i + 0.9, t) for i, t in enumerate(texts))
    out = segments_to_utterances([Segment(0.0, 6.9, " ".join(texts), words)], 1.0, 6.0)
    # The midpoint (3.45 s) is nearest the end of "Then" (3.9 s); the sentence end (2.9 s) wins.
    assert [u.text for u in out] == ["I went home.", "Then I slept well"]


def test_input_is_not_modified_and_order_is_by_time():
    segments = [seg(5.0, 7.0, "second"), seg(0.0, 2.0, "first")]
    out = segments_to_utterances(segments)
    assert [u.text for u in out] == ["first", "second"]
    assert segments[0].text == "second"


def test_bounds_are_checked():
    with pytest.raises(ValueError, match="min_duration_s"):
        segments_to_utterances([seg(0, 1)], min_duration_s=5, max_duration_s=2)


def test_clamp_to_duration_keeps_times_inside_the_video():
    assert clamp_to_duration(seg(-0.2, 10.3), 10.0) == seg(0.0, 10.0)
    assert clamp_to_duration(seg(11.0, 12.0), 10.0).duration == 0.0


def test_whisper_device_is_cpu_unless_asked():
    assert whisper_device() == "cpu"
    assert whisper_device("auto") in {"cpu", "cuda"}
    with pytest.raises(WhisperModelError, match="unknown Whisper device"):
        whisper_device("tpu")


def test_heard_speech_outside_every_utterance_is_found():
    from mlcore.transcribe import untranscribed

    regions = [(0.0, 10.0), (12.0, 20.0), (30.0, 30.5)]
    utterances = [Segment(0.1, 9.8, "a"), Segment(12.2, 15.0, "b")]
    # 15.3-20 was heard and is in no utterance; 30-30.5 is too short to count; the edges of
    # each utterance have 0.3 s of slack.
    assert untranscribed(regions, utterances) == [(15.3, 20.0)]
    assert untranscribed(regions, [Segment(0.0, 20.0, "all")]) == []
    assert untranscribed([(0.0, 4.0)], []) == [(0.0, 4.0)]
