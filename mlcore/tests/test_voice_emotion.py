"""The voice-emotion model (mlcore.voice_emotion) on real read speech (LibriVox readers from
pocketsphinx-testdata) and on espeak-ng's synthetic voice, its shipped weights, and the feature
path training shares with inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlcore import testmedia
from mlcore.labels import EMOTIONS
from mlcore.media import load_audio
from mlcore.transcribe import Segment, load_whisper
from mlcore.voice import utterance_tracks
from mlcore.voice_emotion import (
    DEFAULT_WEIGHTS,
    DEFAULT_WEIGHTS_SHA256,
    MIN_VOICE_S,
    SAMPLE_RATE,
    SYNTHETIC_NOTE,
    VoiceEmotionError,
    VoiceEmotionModel,
    embed,
    read_utterances,
    reading,
    trim,
    unreadable_reason,
)
from mlcore.weights import file_sha256
from training.emotional_speech import Clip
from training.voice import features

SENTENCE = "Kids are talking by the door, and the dogs are sitting by the gate."


@pytest.fixture(scope="module")
def speech_wav() -> Path:
    """A LibriVox reader: 3 s of real read speech."""
    return testmedia.librivox_wavs()[1]


@pytest.fixture(scope="module")
def synthetic_wav(tmp_path_factory) -> Path:
    return testmedia.make_speech_wav(SENTENCE, tmp_path_factory.mktemp("voice") / "espeak.wav")


@pytest.fixture(scope="module")
def speech(speech_wav) -> np.ndarray:
    return load_audio(speech_wav, SAMPLE_RATE)


@pytest.fixture(scope="module")
def model() -> VoiceEmotionModel:
    return VoiceEmotionModel.load()


@pytest.fixture(scope="module")
def whisper(model):
    return load_whisper(model.whisper_model)


def test_the_shipped_weights_are_the_recorded_ones_and_say_what_they_are(model):
    assert file_sha256(DEFAULT_WEIGHTS) == DEFAULT_WEIGHTS_SHA256
    assert model.info["labels"] == list(EMOTIONS)
    assert model.whisper_model in {"tiny.en", "base"}
    assert "RAVDESS" in model.info["trained_on"] and "CC BY-NC-SA" in model.info["licence"]
    assert model.emotion_coef.shape == (len(EMOTIONS), model.mean.size)


def test_missing_or_unexpected_weights_are_refused_with_a_way_out(tmp_path, model):
    with pytest.raises(VoiceEmotionError, match="ANALYSIS_VOICE_EMOTION"):
        VoiceEmotionModel.load(tmp_path / "none.npz")
    other = tmp_path / "other.npz"
    model.save(other)  # a head of your own loads from its own path
    assert VoiceEmotionModel.load(other).name == model.name
    with pytest.raises(VoiceEmotionError, match="not the recorded"):
        VoiceEmotionModel.load(other, sha256="0" * 64)


def test_trim_keeps_the_speech_and_drops_the_silence_around_it(speech):
    padded = np.concatenate([np.zeros(SAMPLE_RATE), speech, np.zeros(SAMPLE_RATE)])
    kept = trim(padded)
    assert speech.size * 0.6 < kept.size < speech.size + 0.5 * SAMPLE_RATE


def test_silence_clipping_and_a_short_blip_give_reasons_not_readings(speech):
    assert unreadable_reason(speech) is None
    assert unreadable_reason(np.zeros(2 * SAMPLE_RATE, dtype=np.float32)) == "silent"
    assert unreadable_reason(np.clip(speech * 60, -1, 1)) == "clipped"
    assert unreadable_reason(speech[: int(0.3 * SAMPLE_RATE)]) == "too short"
    assert MIN_VOICE_S > 0.3


def test_each_span_gets_a_reading_or_says_why_not(model, whisper, speech):
    seconds = speech.size / SAMPLE_RATE
    track = np.concatenate([speech, np.zeros(2 * SAMPLE_RATE, dtype=np.float32)])
    spans = [(0.0, seconds), (seconds + 0.5, seconds + 1.5), (0.0, 0.3)]
    heard, silent, short = read_utterances(model, whisper, track, spans)
    assert heard["emotion"] in EMOTIONS and heard["emotion_note"] == ""
    assert sum(heard["emotion_scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= heard["arousal"] <= 1.0 and heard["sentiment"] in heard["sentiment_scores"]
    assert silent["emotion"] is None and silent["emotion_note"] == "no voice reading: silent"
    assert short["emotion_scores"] is None and "too short" in short["emotion_note"]


def test_a_synthetic_voice_gets_no_reading_and_real_readers_do(model, whisper, synthetic_wav):
    """espeak-ng's voice (and its voices the detector never heard) is declined; every LibriVox
    reader is read. The emotion heads learned from people: on text-to-speech they were sure
    and wrong (anger at 0.9)."""
    for pitch, voice in ((50, "en-us"), (80, "en-gb+f3")):
        wav = testmedia.make_speech_wav(
            SENTENCE, synthetic_wav.with_name(f"{voice}.wav"), voice=voice, pitch=pitch
        )
        audio = load_audio(wav, SAMPLE_RATE)
        (synthetic,) = read_utterances(model, whisper, audio, [(0.0, audio.size / SAMPLE_RATE)])
        assert synthetic["emotion"] is None and synthetic["emotion_note"] == SYNTHETIC_NOTE
    for wav in testmedia.librivox_wavs():
        audio = load_audio(wav, SAMPLE_RATE)
        (person,) = read_utterances(model, whisper, audio, [(0.0, audio.size / SAMPLE_RATE)])
        assert person["emotion"] in EMOTIONS, wav.name


def test_training_reads_a_clip_exactly_as_the_analyzer_reads_an_utterance(
    model, whisper, speech_wav, speech, tmp_path
):
    clip = Clip(path=speech_wav, emotion="neutral", speaker="test-1", corpus="test")
    x, kept = features([clip], model.whisper_model, tmp_path)
    assert kept == [clip]
    np.testing.assert_array_equal(x[0], embed(whisper, speech))
    emotion, arousal = model.predict(x)
    (analyzed,) = read_utterances(model, whisper, speech, [(0.0, speech.size / SAMPLE_RATE)])
    assert analyzed | {"emotion_note": ""} == reading(emotion[0], float(arousal[0])) | {
        "emotion_note": ""
    }
    # The second call reads the cache: the same numbers.
    np.testing.assert_array_equal(features([clip], model.whisper_model, tmp_path)[0], x)


def test_the_voice_channels_pitch_track_gives_the_reading_training_gives(model, whisper):
    """The Analyzer reuses the voice channel's pitch track (one pyin per stretch of speech);
    training runs pyin on each clip. The same readers read the same within a rounding."""
    audios = [load_audio(wav, SAMPLE_RATE) for wav in testmedia.librivox_wavs()]
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    track_audio = np.concatenate([part for a in audios for part in (a, gap)])
    spans, t = [], 0.0
    for a in audios:
        spans.append((t, t + a.size / SAMPLE_RATE))
        t += a.size / SAMPLE_RATE + 1.0
    tracks = utterance_tracks(track_audio, SAMPLE_RATE, [Segment(s, e, "") for s, e in spans])
    assert len({id(track) for track in tracks}) == 1  # gaps under 1.5 s: one pyin call
    shared = read_utterances(model, whisper, track_audio, spans, tracks)
    for audio, reading_ in zip(audios, shared, strict=True):
        emotion, arousal = model.predict(embed(whisper, audio))
        scores = np.array([reading_["emotion_scores"][e] for e in EMOTIONS])
        np.testing.assert_allclose(scores, emotion[0], atol=0.05)
        assert reading_["arousal"] == pytest.approx(float(arousal[0]), abs=0.05)
