"""Late fusion: one `combined` emotion and sentiment per utterance from the language model, the
face channel and the voice-emotion model. The channels' own labels are never changed.

Rule (log-linear pooling, a weighted geometric mean of the channels' distributions):

    combined(label) ∝ p_text(label) ** TEXT_WEIGHT
                      * p_face(label) ** (FACE_WEIGHT * coverage)
                      * p_voice(label) ** VOICE_WEIGHT

`coverage` is the share of the utterance's sampled frames that showed a face, so an utterance
with no face is the text result unchanged, and a face seen in half the frames counts half.
p_face(emotion) is the mean of the face classifier's probabilities over those frames; for
sentiment, p_face(sentiment) = sum over emotions of p_face(emotion) * P(sentiment | emotion),
with P(sentiment | emotion) counted in MELD's train annotations (`SENTIMENT_GIVEN_EMOTION`).

A flat distribution changes the product little whatever its weight, so a confident channel
outweighs an unsure one: where the voice is sure and the words are not, the voice decides.
p_voice for sentiment is derived from its emotions the same way as the face's.

FACE_WEIGHT = 0.5 is a chosen default, not fitted: no jointly labelled face + speech data is
available offline. TEXT_WEIGHT and VOICE_WEIGHT were chosen by measurement on two held-out
sets (MODEL_CARD.md, "Fusion"): RAVDESS actors the voice model never heard, end to end through
the product, and MELD dev spoken by espeak-ng (`training.voice_fusion`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlcore.labels import EMOTIONS, SENTIMENTS

DEFAULT_FACE_WEIGHT = 0.5
DEFAULT_TEXT_WEIGHT = 1.0
DEFAULT_VOICE_WEIGHT = 1.5
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
    *,
    voice: Mapping | None = None,
    voice_weight: float = DEFAULT_VOICE_WEIGHT,
    text_weight: float = DEFAULT_TEXT_WEIGHT,
) -> dict | None:
    """The `combined` block of one utterance. `face` is `mlcore.face.aggregate`'s dict (or None
    when the face channel is off); `voice` the utterance's voice dict, read when it holds
    `emotion_scores` (`mlcore.voice_emotion.reading`). None when no channel gave a reading."""
    parts: list[tuple[str, Mapping[str, float], Mapping[str, float], float]] = []
    if text_emotion is not None and text_sentiment is not None and text_weight > 0:
        parts.append(("text", text_emotion, text_sentiment, text_weight))
    face_scores = face.get("scores") if face else None
    weight = face_weight * float(face.get("coverage") or 0.0) if face_scores else 0.0
    if weight > 0:
        parts.append(("face", face_scores, sentiment_from_emotions(face_scores), weight))
    voice_scores = voice.get("emotion_scores") if voice else None
    if voice_scores and voice_weight > 0:
        parts.append(("voice", voice_scores, sentiment_from_emotions(voice_scores), voice_weight))
    if not parts:
        return None
    if len(parts) == 1:  # one channel alone is its own reading (a weight would only reshape it)
        emotion, sentiment = dict(parts[0][1]), dict(parts[0][2])
    else:
        emotion = pool([(p[1], p[3]) for p in parts], EMOTIONS)
        sentiment = pool([(p[2], p[3]) for p in parts], SENTIMENTS)
    return {
        "emotion": max(emotion, key=emotion.__getitem__),
        "emotion_scores": emotion,
        "sentiment": max(sentiment, key=sentiment.__getitem__),
        "sentiment_scores": sentiment,
        "channels": [p[0] for p in parts],
        "face_weight": round(weight, 4),
        "voice_weight": round(voice_weight, 4) if voice_scores else 0.0,
        "text_weight": round(text_weight, 4),
    }
