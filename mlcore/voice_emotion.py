"""Voice emotion: what the sound of an utterance says, from a frozen Whisper encoder.

Features (`embed`, the one function training and inference share): the utterance's 16 kHz audio,
its leading and trailing silence trimmed (`trim`), goes through Whisper's own log-mel front end
and encoder (CTranslate2, the model transcription already loaded; no 30 s padding: the encoder
takes the utterance's own length), and the encoder states are pooled into their mean and
standard deviation over time. A small head trained on RAVDESS (`training.voice`) maps that
vector to the 7 emotions and to arousal (how activated the voice is).

The head is a multinomial logistic regression for the emotions and a binary one for arousal,
on standardised features; its numbers live in `mlcore/weights/voice_emotion.npz` with the
training run's provenance (`VoiceEmotionModel.info`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcore.fusion import sentiment_from_emotions
from mlcore.labels import EMOTIONS

SAMPLE_RATE = 16_000
# Shorter than this after trimming, an utterance carries too little voice to read (and a
# one-word "yes" is no basis for a confident label).
MIN_VOICE_S = 0.5
# Whisper's encoder was built for at most 30 s (3,000 mel frames); longer utterances are read
# from their first 30 s.
MAX_VOICE_S = 30.0
# Silence trimming: frames more than this far below the utterance's loudest 32 ms frame.
TRIM_DB = 35.0
TRIM_FRAME = 512
TRIM_MARGIN_S = 0.1
# Below this RMS over the whole utterance (-60 dBFS) there is no voice to read.
SILENCE_RMS = 1e-3
# A clipped recording: this share of samples at full scale distorts the voice's spectrum.
CLIPPED_SHARE = 0.02
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "voice_emotion.npz"
# The shipped head's SHA-256 (`python -m training.voice train` prints it): a different file at
# that path is refused rather than silently read.
DEFAULT_WEIGHTS_SHA256 = "b3b47cc17a1e50a3f3ee3e710e5ee5a5c09aa99f4ff51ce9648c4fc707dfeec7"


class VoiceEmotionError(Exception):
    """The voice-emotion weights are missing or do not match the Whisper model given."""


def trim(audio: np.ndarray) -> np.ndarray:
    """`audio` without its leading and trailing stretches quieter than TRIM_DB below the peak
    frame (TRIM_MARGIN_S kept either side). All of it when nothing stands out."""
    if audio.size < TRIM_FRAME:
        return audio
    frames = np.lib.stride_tricks.sliding_window_view(audio, TRIM_FRAME)[:: TRIM_FRAME // 2]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = float(rms.max())
    if peak <= 0:
        return audio
    loud = np.flatnonzero(rms >= peak * 10 ** (-TRIM_DB / 20))
    hop, margin = TRIM_FRAME // 2, int(TRIM_MARGIN_S * SAMPLE_RATE)
    first = max(0, int(loud[0]) * hop - margin)
    last = min(audio.size, int(loud[-1]) * hop + TRIM_FRAME + margin)
    return audio[first:last]


def unreadable_reason(audio: np.ndarray) -> str | None:
    """Why this utterance's audio gives no voice reading, or None when it can be read."""
    if audio.size == 0 or float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS:
        return "silent"
    if float(np.mean(np.abs(audio) >= 0.999)) >= CLIPPED_SHARE:
        return "clipped"
    if trim(audio).size < MIN_VOICE_S * SAMPLE_RATE:
        return "too short"
    return None


def embed(whisper, audio: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over time of Whisper's encoder states for one utterance's
    16 kHz mono `audio` (trimmed here): a vector of 2 x the encoder width, float32."""
    import ctranslate2

    segment = trim(np.asarray(audio, dtype=np.float32))[: int(MAX_VOICE_S * SAMPLE_RATE)]
    mel = whisper.feature_extractor(segment)
    # Whisper's first convolution halves the frame count; an even count keeps every frame whole.
    mel = mel[:, : max(2, mel.shape[1] // 2 * 2)]
    states = whisper.model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True
    )
    states = np.asarray(states)[0]
    return np.concatenate([states.mean(axis=0), states.std(axis=0)]).astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class VoiceEmotionModel:
    """The trained head: standardisation, emotion and arousal logistic regressions."""

    mean: np.ndarray
    scale: np.ndarray
    emotion_coef: np.ndarray  # (7, d), rows in EMOTIONS order
    emotion_bias: np.ndarray  # (7,)
    arousal_coef: np.ndarray  # (d,)
    arousal_bias: float
    info: dict  # whisper model, training data, licence, figures (written by training.voice)

    @property
    def whisper_model(self) -> str:
        return str(self.info["whisper"])

    @property
    def name(self) -> str:
        return str(self.info["name"])

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(emotion probabilities (n, 7), arousal probabilities (n,)) for features (n, d)."""
        x = (np.atleast_2d(features) - self.mean) / self.scale
        emotion = _softmax(x @ self.emotion_coef.T + self.emotion_bias)
        arousal = 1.0 / (1.0 + np.exp(-(x @ self.arousal_coef + self.arousal_bias)))
        return emotion, arousal

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            emotion_coef=self.emotion_coef.astype(np.float32),
            emotion_bias=self.emotion_bias.astype(np.float32),
            arousal_coef=self.arousal_coef.astype(np.float32),
            arousal_bias=np.float32(self.arousal_bias),
            info=np.array(json.dumps(self.info, sort_keys=True)),
        )

    @classmethod
    def load(
        cls, path: str | Path = DEFAULT_WEIGHTS, sha256: str | None = None
    ) -> VoiceEmotionModel:
        """The head at `path`, checked against `sha256` (the recorded one for the shipped
        file; other files, e.g. a head you trained, unless given)."""
        from mlcore.weights import file_sha256

        path = Path(path)
        if not path.is_file():
            raise VoiceEmotionError(
                f"no voice-emotion weights at {path}: train them (training/README.md) or turn "
                "the voice-emotion model off (ANALYSIS_VOICE_EMOTION=false)"
            )
        if sha256 is None and path.resolve() == DEFAULT_WEIGHTS:
            sha256 = DEFAULT_WEIGHTS_SHA256
        if sha256 is not None and (found := file_sha256(path)) != sha256:
            raise VoiceEmotionError(
                f"{path} has SHA-256 {found}, not the recorded {sha256}: not the shipped "
                "voice-emotion head (set ANALYSIS_VOICE_EMOTION=false, or restore the file)"
            )
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["info"]))
            if info.get("labels") != list(EMOTIONS):
                raise VoiceEmotionError(
                    f"{path} was trained for other labels: {info.get('labels')}"
                )
            return cls(
                mean=data["mean"],
                scale=data["scale"],
                emotion_coef=data["emotion_coef"],
                emotion_bias=data["emotion_bias"],
                arousal_coef=data["arousal_coef"],
                arousal_bias=float(data["arousal_bias"]),
                info=info,
            )


def reading(emotion: np.ndarray, arousal: float) -> dict:
    """The per-utterance `voice` fields the model adds (emotion, scores, arousal, sentiment)."""
    scores = {label: round(float(p), 4) for label, p in zip(EMOTIONS, emotion, strict=True)}
    sentiment = sentiment_from_emotions(scores)
    return {
        "emotion": max(scores, key=scores.__getitem__),
        "emotion_scores": scores,
        "arousal": round(float(arousal), 4),
        "sentiment": max(sentiment, key=sentiment.__getitem__),
        "sentiment_scores": {k: round(v, 4) for k, v in sentiment.items()},
    }


NO_READING = {
    "emotion": None,
    "emotion_scores": None,
    "arousal": None,
    "sentiment": None,
    "sentiment_scores": None,
}


def read_utterances(
    model: VoiceEmotionModel,
    whisper,
    audio: np.ndarray,
    spans: Sequence[tuple[float, float]],
) -> list[dict]:
    """The voice reading of each (start_s, end_s) span of the video's 16 kHz `audio`: `reading`'s
    fields, or the same fields empty with `emotion_note` saying why the voice could not be read
    (silence, clipping, too short)."""
    out: list[dict] = []
    for start, end in spans:
        segment = audio[max(0, int(start * SAMPLE_RATE)) : max(0, int(end * SAMPLE_RATE))]
        reason = unreadable_reason(segment)
        if reason:
            out.append(NO_READING | {"emotion_note": f"no voice reading: {reason}"})
            continue
        emotion, arousal = model.predict(embed(whisper, segment))
        out.append(reading(emotion[0], float(arousal[0])) | {"emotion_note": ""})
    return out


# What a reader of a result needs to know about where the voice's emotion comes from.
MODEL_NOTE = (
    "Voice emotion comes from a model trained on acted emotional speech (RAVDESS: 24 North "
    "American actors reading two sentences): a trained guess from the sound of the voice, "
    "surest on clear, strongly expressed emotion."
)
