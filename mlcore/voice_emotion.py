"""Voice emotion: what the sound of an utterance says, from a frozen Whisper encoder and prosody.

Features (`embed`, the one function training and inference share): the utterance's 16 kHz audio,
its leading and trailing silence trimmed (`trim`), goes
- through Whisper's own log-mel front end and encoder (CTranslate2, the tiny.en model that
  transcribes anyway; no 30 s padding: the encoder takes the utterance's own length), its states
  pooled into their mean and standard deviation over time, and
- through `prosody_features`: 70 statistics of pitch, level dynamics, voicing, spectral shape
  and MFCCs (gain-invariant, as Whisper's normalised log-mel is).
Whisper's states alone read RAVDESS well and other corpora badly (they also carry the words and
the recording); the prosody statistics carry over better; together they did best on both
(MODEL_CARD.md, "Voice emotion").

The head (`training.voice`, trained on RAVDESS) is a multinomial logistic regression for the 7
emotions and a logistic regression on soft targets for arousal (how activated the voice is,
0-1), on standardised features with the prosody block weighted up to count as much as the
Whisper block. Its numbers live in `mlcore/weights/voice_emotion.npz` with the training run's
provenance (`VoiceEmotionModel.info`).
"""

from __future__ import annotations

import json
import math
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
# Spectral statistics of the prosody features: 32 ms windows every 20 ms (the pitch frames' rate).
SPEC_N_FFT = 512
SPEC_HOP = 320
PROSODY_FEATURES = 70  # the length of `prosody_features`' vector
# A voice the head takes for text-to-speech gets no reading: the emotion heads learned from
# people, and read synthetic voices as confident anger (MODEL_CARD, "Voice emotion").
SYNTHETIC_THRESHOLD = 0.5
SYNTHETIC_NOTE = "no voice reading: the voice sounds synthetic (text-to-speech)"
# A clipped recording: this share of samples at full scale distorts the voice's spectrum.
CLIPPED_SHARE = 0.02
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "voice_emotion.npz"
# The shipped head's SHA-256 (`python -m training.voice train` prints it): a different file at
# that path is refused rather than silently read.
DEFAULT_WEIGHTS_SHA256 = "a4dbd855426d0716e698489e3863a61f3879fbda6eeef6c84bb8ed73ee9c929b"


class VoiceEmotionError(Exception):
    """The voice-emotion weights are missing, or are not the recorded file."""


def trim(audio: np.ndarray) -> np.ndarray:
    """`audio` without its leading and trailing stretches quieter than TRIM_DB below the peak
    frame (TRIM_MARGIN_S kept either side). All of it when nothing stands out."""
    first, last = trim_bounds(audio)
    return audio[first:last]


def trim_bounds(audio: np.ndarray) -> tuple[int, int]:
    """The sample range `trim` keeps."""
    if audio.size < TRIM_FRAME:
        return 0, audio.size
    frames = np.lib.stride_tricks.sliding_window_view(audio, TRIM_FRAME)[:: TRIM_FRAME // 2]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    peak = float(rms.max())
    if peak <= 0:
        return 0, audio.size
    loud = np.flatnonzero(rms >= peak * 10 ** (-TRIM_DB / 20))
    hop, margin = TRIM_FRAME // 2, int(TRIM_MARGIN_S * SAMPLE_RATE)
    first = max(0, int(loud[0]) * hop - margin)
    last = min(audio.size, int(loud[-1]) * hop + TRIM_FRAME + margin)
    return first, last


def unreadable_reason(audio: np.ndarray) -> str | None:
    """Why this utterance's audio gives no voice reading, or None when it can be read."""
    if audio.size == 0 or float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS:
        return "silent"
    if float(np.mean(np.abs(audio) >= 0.999)) >= CLIPPED_SHARE:
        return "clipped"
    if trim(audio).size < MIN_VOICE_S * SAMPLE_RATE:
        return "too short"
    return None


# --- Features: prosody statistics + Whisper encoder states ---


def _stats(prefix: str, values: np.ndarray, out: dict[str, float]) -> None:
    """Mean, standard deviation and 10/50/90th percentiles (NaN where there are no values)."""
    values = values[np.isfinite(values)]
    empty = values.size == 0
    out[f"{prefix}_mean"] = math.nan if empty else float(values.mean())
    out[f"{prefix}_std"] = math.nan if empty else float(values.std())
    for q in (10, 50, 90):
        out[f"{prefix}_p{q}"] = math.nan if empty else float(np.percentile(values, q))


def prosody_features(audio: np.ndarray, track=None) -> dict[str, float]:
    """Per-utterance voice statistics of one trimmed 16 kHz clip, an eGeMAPS-like compact set
    (NaN where undefined): pitch, level dynamics (not the level itself), voicing runs, spectral
    shape, zero crossings, vocal effort, MFCC 1-13. `track`: the clip's pitch frames already
    tracked by the voice channel (`mlcore.voice.utterance_tracks`, cut to the clip), else pyin
    runs here (training does; pyin is most of this function's cost)."""
    import librosa

    from mlcore import voice
    from mlcore.transcribe import Segment

    sr = SAMPLE_RATE
    duration = audio.size / sr
    track = track if track is not None else voice._track(audio, sr, 0.0, duration)
    product = voice._measure(track, sr, Segment(track.offset_s, track.offset_s + duration, ""))
    out: dict[str, float] = {
        "duration_s": duration,
        "pitch_median_st": (
            voice._semitones(product.pitch_median_hz) if product.pitch_median_hz else math.nan
        ),
        "pitch_range_st": product.pitch_range_st or math.nan,
        "voiced_fraction": product.voiced_fraction,
    }
    voiced = track.voiced
    pitch = 12.0 * np.log2(track.f0[voiced] / 440.0) if voiced.any() else np.empty(0)
    _stats("pitch_st", pitch, out)
    # Frame-to-frame pitch movement within voiced stretches (intonation activity).
    both = voiced[1:] & voiced[:-1]
    step = np.abs(np.diff(12.0 * np.log2(np.where(voiced, track.f0, 440.0) / 440.0)))[both]
    out["pitch_delta_st_mean"] = float(step.mean()) if step.size else math.nan
    level = 20.0 * np.log10(track.rms + 1e-5)
    # The level's spread only: its absolute value is the recording's gain, not the speaker's
    # emotion (with it, LibriVox narration read as joy and anger; TESS UAR 0.543 -> 0.508
    # without it, but real recordings at other gains are what the product meets).
    out["level_db_std"] = float(level.std()) if level.size else math.nan
    out["level_delta_db_mean"] = float(np.abs(np.diff(level)).mean()) if level.size > 1 else 0.0
    # Voiced runs per second: a syllable-rate proxy; their mean length in seconds.
    starts = int(voiced[0]) + int(np.sum(voiced[1:] & ~voiced[:-1])) if voiced.size else 0
    out["voiced_runs_per_s"] = starts / duration if duration > 0 else 0.0
    out["voiced_run_s"] = float(voiced.sum()) * voice.HOP_S / starts if starts else 0.0

    spectrum = np.abs(librosa.stft(audio, n_fft=SPEC_N_FFT, hop_length=SPEC_HOP))
    power = spectrum**2
    freqs = librosa.fft_frequencies(sr=sr, n_fft=SPEC_N_FFT)
    _stats("centroid_hz", librosa.feature.spectral_centroid(S=spectrum, sr=sr)[0], out)
    _stats("rolloff_hz", librosa.feature.spectral_rolloff(S=spectrum, sr=sr)[0], out)
    flatness = librosa.feature.spectral_flatness(S=spectrum)[0]
    _stats("flatness_log10", np.log10(flatness + 1e-10), out)
    zcr = librosa.feature.zero_crossing_rate(audio, frame_length=SPEC_N_FFT, hop_length=SPEC_HOP)
    _stats("zcr", zcr[0], out)
    # Vocal effort (eGeMAPS): alpha ratio (1-5 kHz against 50 Hz-1 kHz energy) and Hammarberg
    # index (peak 0-2 kHz against peak 2-5 kHz).
    low = power[(freqs >= 50) & (freqs < 1000)].sum(axis=0) + 1e-10
    high = power[(freqs >= 1000) & (freqs < 5000)].sum(axis=0) + 1e-10
    _stats("alpha_ratio_db", 10.0 * np.log10(high / low), out)
    peak_low = power[freqs < 2000].max(axis=0) + 1e-10
    peak_high = power[(freqs >= 2000) & (freqs < 5000)].max(axis=0) + 1e-10
    _stats("hammarberg_db", 10.0 * np.log10(peak_low / peak_high), out)
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=40)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=14)[1:]
    for i, row in enumerate(mfcc, start=1):
        out[f"mfcc{i}_mean"] = float(row.mean())
        out[f"mfcc{i}_std"] = float(row.std())
    return out


def embed(whisper, audio: np.ndarray, track=None, offset_s: float = 0.0) -> np.ndarray:
    """The features of one utterance's 16 kHz mono `audio` (trimmed here), float32: the mean and
    standard deviation over time of Whisper's encoder states (2 x the encoder width), then the
    `PROSODY_FEATURES` prosody statistics (NaN where undefined). `track`: the voice channel's
    pitch track holding this audio, which starts `offset_s` into the video (no second pyin)."""
    import ctranslate2

    audio = np.asarray(audio, dtype=np.float32)
    first, last = trim_bounds(audio)
    last = min(last, first + int(MAX_VOICE_S * SAMPLE_RATE))
    segment = audio[first:last]
    if track is not None:
        track = track.between(
            offset_s + first / SAMPLE_RATE, offset_s + last / SAMPLE_RATE, SAMPLE_RATE
        )
    prosody = np.array(list(prosody_features(segment, track).values()), dtype=np.float32)
    mel = whisper.feature_extractor(segment)
    # Whisper's first convolution halves the frame count; an even count keeps every frame whole.
    mel = mel[:, : max(2, mel.shape[1] // 2 * 2)]
    states = whisper.model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True
    )
    states = np.asarray(states)[0]
    return np.concatenate([states.mean(axis=0), states.std(axis=0), prosody]).astype(np.float32)


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
    synthetic_coef: np.ndarray  # (d,): synthetic (text-to-speech) voice against a person's
    synthetic_bias: float  # -inf: a head trained without synthetic speech never flags it
    info: dict  # whisper model, training data, licence, figures (written by training.voice)

    @property
    def whisper_model(self) -> str:
        return str(self.info["whisper"])

    @property
    def name(self) -> str:
        return str(self.info["name"])

    def _standardised(self, features: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(features)
        x = np.where(np.isnan(x), self.mean, x)  # an undefined statistic (no pitch) reads as usual
        return (x - self.mean) / self.scale

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(emotion probabilities (n, 7), arousal probabilities (n,)) for features (n, d)."""
        x = self._standardised(features)
        emotion = _softmax(x @ self.emotion_coef.T + self.emotion_bias)
        arousal = 1.0 / (1.0 + np.exp(-(x @ self.arousal_coef + self.arousal_bias)))
        return emotion, arousal

    def synthetic(self, features: np.ndarray) -> np.ndarray:
        """(n,) probability that each voice is synthetic speech rather than a person's."""
        x = self._standardised(features)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-(x @ self.synthetic_coef + self.synthetic_bias)))

    def read(self, features: np.ndarray) -> dict:
        """One utterance's voice fields from its features (d,): `reading`'s, or none with a note
        where the voice sounds synthetic."""
        if self.synthetic(features)[0] >= SYNTHETIC_THRESHOLD:
            return NO_READING | {"emotion_note": SYNTHETIC_NOTE}
        emotion, arousal = self.predict(features)
        return reading(emotion[0], float(arousal[0])) | {"emotion_note": ""}

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            emotion_coef=self.emotion_coef.astype(np.float32),
            emotion_bias=self.emotion_bias.astype(np.float32),
            arousal_coef=self.arousal_coef.astype(np.float32),
            arousal_bias=np.float32(self.arousal_bias),
            synthetic_coef=self.synthetic_coef.astype(np.float32),
            synthetic_bias=np.float32(self.synthetic_bias),
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
                synthetic_coef=data["synthetic_coef"],
                synthetic_bias=float(data["synthetic_bias"]),
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
    tracks: Sequence | None = None,
) -> list[dict]:
    """The voice reading of each (start_s, end_s) span of the video's 16 kHz `audio`: `reading`'s
    fields, or the same fields empty with `emotion_note` saying why the voice could not be read
    (silence, clipping, too short, a synthetic voice). `tracks`: each span's pitch track from the
    voice channel (`mlcore.voice.utterance_tracks`), so pyin runs once per stretch of speech."""
    out: list[dict] = []
    for i, (start, end) in enumerate(spans):
        first = max(0, int(start * SAMPLE_RATE))
        segment = audio[first : max(0, int(end * SAMPLE_RATE))]
        reason = unreadable_reason(segment)
        if reason:
            out.append(NO_READING | {"emotion_note": f"no voice reading: {reason}"})
            continue
        track = tracks[i] if tracks is not None else None
        out.append(model.read(embed(whisper, segment, track, first / SAMPLE_RATE)))
    return out


# What a reader of a result needs to know about where the voice's emotion comes from.
MODEL_NOTE = (
    "Voice emotion comes from a model trained on acted emotional speech (RAVDESS: 24 North "
    "American actors reading two sentences): a trained guess from the sound of the voice, "
    "surest on clear, strongly expressed emotion."
)
