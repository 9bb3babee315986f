"""Late fusion of the language model and the face channel (mlcore.fusion)."""

from __future__ import annotations

import pytest

from mlcore.fusion import SENTIMENT_GIVEN_EMOTION, combine, pool, sentiment_from_emotions
from mlcore.labels import EMOTIONS, SENTIMENTS

TEXT_EMOTION = {e: (0.55 if e == "neutral" else 0.45 / 6) for e in EMOTIONS}
TEXT_SENTIMENT = {"negative": 0.2, "neutral": 0.6, "positive": 0.2}
JOYFUL_FACE = {e: (0.94 if e == "joy" else 0.01) for e in EMOTIONS}


def _face(coverage: float, scores: dict | None = JOYFUL_FACE) -> dict:
    return {"frames": 4, "coverage": coverage, "faces_seen": 1, "emotion": "joy", "scores": scores}


def test_without_a_face_combined_is_the_text_result():
    for face in (None, _face(0.0), _face(0.0, None)):
        combined = combine(TEXT_EMOTION, TEXT_SENTIMENT, face)
        assert combined["emotion_scores"] == TEXT_EMOTION
        assert combined["sentiment_scores"] == TEXT_SENTIMENT
        assert combined["channels"] == ["text"] and combined["face_weight"] == 0


def test_a_clear_face_moves_the_combined_label_and_keeps_distributions():
    combined = combine(TEXT_EMOTION, TEXT_SENTIMENT, _face(1.0), face_weight=0.5)
    assert combined["channels"] == ["text", "face"] and combined["face_weight"] == 0.5
    assert combined["emotion"] == "joy" and combined["sentiment"] == "positive"
    assert sum(combined["emotion_scores"].values()) == pytest.approx(1.0)
    assert sum(combined["sentiment_scores"].values()) == pytest.approx(1.0)


def test_the_face_counts_in_proportion_to_how_long_it_was_seen():
    half = combine(TEXT_EMOTION, TEXT_SENTIMENT, _face(0.5), face_weight=0.5)
    full = combine(TEXT_EMOTION, TEXT_SENTIMENT, _face(1.0), face_weight=0.5)
    assert half["face_weight"] == pytest.approx(0.25)
    assert TEXT_EMOTION["joy"] < half["emotion_scores"]["joy"] < full["emotion_scores"]["joy"]


def test_log_linear_pooling_is_a_normalised_weighted_geometric_mean():
    a = {"x": 0.8, "y": 0.2}
    b = {"x": 0.2, "y": 0.8}
    assert pool([(a, 1.0), (b, 1.0)], ("x", "y")) == pytest.approx({"x": 0.5, "y": 0.5})
    expected_x = 0.8 * 0.2**0.5 / (0.8 * 0.2**0.5 + 0.2 * 0.8**0.5)
    assert pool([(a, 1.0), (b, 0.5)], ("x", "y"))["x"] == pytest.approx(expected_x)


def test_face_sentiment_follows_melds_emotion_sentiment_pairs():
    assert all(sum(row.values()) == pytest.approx(1.0) for row in SENTIMENT_GIVEN_EMOTION.values())
    sentiment = sentiment_from_emotions(JOYFUL_FACE)
    assert set(sentiment) == set(SENTIMENTS)
    assert sum(sentiment.values()) == pytest.approx(1.0)
    assert max(sentiment, key=sentiment.get) == "positive"


ANGRY_VOICE = {
    "emotion": "anger",
    "emotion_scores": {e: (0.88 if e == "anger" else 0.02) for e in EMOTIONS},
}


def test_a_sure_voice_outweighs_unsure_words():
    combined = combine(TEXT_EMOTION, TEXT_SENTIMENT, None, voice=ANGRY_VOICE, voice_weight=1.0)
    assert combined["channels"] == ["text", "voice"] and combined["voice_weight"] == 1.0
    assert combined["emotion"] == "anger" and combined["sentiment"] == "negative"
    assert sum(combined["emotion_scores"].values()) == pytest.approx(1.0)


def test_a_voice_without_a_reading_or_weight_leaves_the_words():
    no_reading = {"emotion": None, "emotion_scores": None, "emotion_note": "no voice reading"}
    for voice, weight in ((no_reading, 1.0), (ANGRY_VOICE, 0.0), (None, 1.0)):
        combined = combine(TEXT_EMOTION, TEXT_SENTIMENT, None, voice=voice, voice_weight=weight)
        assert combined["channels"] == ["text"] and combined["voice_weight"] == 0.0
        assert combined["emotion_scores"] == TEXT_EMOTION


def test_the_voice_alone_is_its_own_reading():
    combined = combine(None, None, None, voice=ANGRY_VOICE, voice_weight=0.3)
    assert combined["channels"] == ["voice"]
    assert combined["emotion_scores"] == pytest.approx(ANGRY_VOICE["emotion_scores"])
    assert combine(None, None, None, voice=None) is None
