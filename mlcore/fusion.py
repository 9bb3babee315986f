"""Late fusion: one `combined` emotion and sentiment per utterance from the language model and
the face channel. The language model's own `emotion`/`sentiment` are never changed.

Rule (log-linear pooling, a weighted geometric mean of the channels' distributions):

    combined(label) ∝ p_text(label) ** 1  *  p_face(label) ** (FACE_WEIGHT * coverage)

`coverage` is the share of the utterance's sampled frames that showed a face, so an utterance
with no face is the text result unchanged, and a face seen in half the frames counts half.
p_face(emotion) is the mean of the face classifier's probabilities over those frames; for
sentiment, p_face(sentiment) = sum over emotions of p_face(emotion) * P(sentiment | emotion),
with P(sentiment | emotion) counted in MELD's train annotations (`SENTIMENT_GIVEN_EMOTION`).

FACE_WEIGHT = 0.5 is a chosen default, not fitted: no jointly labelled face + speech data is
available offline. The voice channel measures prosody only and takes no part.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlcore.labels import EMOTIONS, SENTIMENTS

DEFAULT_FACE_WEIGHT = 0.5
# Probabilities are floored before the logarithm: one channel's hard zero must not veto a label.
PROBABILITY_FLOOR = 1e-4

# P(sentiment | emotion) in MELD train (9,989 utterances): every emotion but surprise has one
# sentiment; surprise is 51% negative, 49% positive.
SENTIMENT_GIVEN_EMOTION: dict[str, dict[str, float]] = {
    "anger": {"negative": 1.0, "neutral": 0.0, "positive": 0.0},
    "disgust": {"negative": 1.0, "neutral": 0.0, "positive": 0.0},
    "fear": {"negative": 1.0, "neutral": 0.0, "positive": 0.0},
    "joy": {"negative": 0.0, "neutral": 0.0, "positive": 1.0},
    "neutral": {"negative": 0.0, "neutral": 1.0, "positive": 0.0},
    "sadness": {"negative": 1.0, "neutral": 0.0, "positive": 0.0},
    "surprise": {"negative": 0.51, "neutral": 0.0, "positive": 0.49},
}


def sentiment_from_emotions(emotion_scores: Mapping[str, float]) -> dict[str, float]:
    """Sentiment probabilities implied by emotion probabilities (MELD's co-occurrence)."""
    return {
        s: float(sum(emotion_scores[e] * SENTIMENT_GIVEN_EMOTION[e][s] for e in EMOTIONS))
        for s in SENTIMENTS
    }


def pool(
    distributions: list[tuple[Mapping[str, float], float]], labels: tuple[str, ...]
) -> dict[str, float]:
    """Log-linear pooling of (distribution, weight) pairs over `labels`; sums to 1."""
    log_p = np.zeros(len(labels))
    for scores, weight in distributions:
        values = np.array([max(float(scores[label]), PROBABILITY_FLOOR) for label in labels])
        log_p += weight * np.log(values)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    return {label: float(v) for label, v in zip(labels, p, strict=True)}


def combine(
    text_emotion: Mapping[str, float] | None,
    text_sentiment: Mapping[str, float] | None,
    face: Mapping | None,
    face_weight: float = DEFAULT_FACE_WEIGHT,
) -> dict | None:
    """The `combined` block of one utterance. `face` is `mlcore.face.aggregate`'s dict (or None
    when the face channel is off). No text scores (the language model gave no label): the face's
    own reading where a face was seen, else None."""
    face_scores = face.get("scores") if face else None
    weight = face_weight * float(face.get("coverage") or 0.0) if face_scores else 0.0
    if text_emotion is None or text_sentiment is None:
        if weight <= 0:
            return None
        emotion, sentiment = dict(face_scores), sentiment_from_emotions(face_scores)
        channels = ["face"]
    elif weight <= 0:
        emotion, sentiment, channels = dict(text_emotion), dict(text_sentiment), ["text"]
    else:
        emotion = pool([(text_emotion, 1.0), (face_scores, weight)], EMOTIONS)
        face_sentiment = sentiment_from_emotions(face_scores)
        sentiment = pool([(text_sentiment, 1.0), (face_sentiment, weight)], SENTIMENTS)
        channels = ["text", "face"]
    return {
        "emotion": max(emotion, key=emotion.__getitem__),
        "emotion_scores": emotion,
        "sentiment": max(sentiment, key=sentiment.__getitem__),
        "sentiment_scores": sentiment,
        "channels": channels,
        "face_weight": round(weight, 4),
    }
