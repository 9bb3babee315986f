"""Video in, per-utterance emotion and sentiment out.

`Analyzer` loads the checkpoint, tokenizer and Whisper once (a worker keeps one per process) and
runs: probe -> audio (decoded once) -> transcribe -> features (text, log-mel, frames from one
video decode) -> batched inference. Progress is reported per stage as (stage, fraction of that
stage done), stages in the order of `STAGES`.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mlcore.checkpoint import CheckpointError, load_checkpoint
from mlcore.config import PreprocessConfig
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.media import (
    MediaInfo,
    MediaLimits,
    decode_window_frames,
    frames_to_tensor,
    load_checked_audio,
    log_mel,
    probe,
)
from mlcore.paths import DEFAULT_CHECKPOINT
from mlcore.text import context_string, encode_texts
from mlcore.transcribe import (
    MAX_UTTERANCE_S,
    MIN_UTTERANCE_S,
    Segment,
    clamp_to_duration,
    load_whisper,
    segments_to_utterances,
    transcribe,
)

STAGES: tuple[str, ...] = ("probe", "audio", "transcribe", "features", "inference", "done")
# Typical share of the run time per stage on CPU (for one overall progress bar).
STAGE_SHARE: dict[str, float] = {
    "probe": 0.02,
    "audio": 0.03,
    "transcribe": 0.35,
    "features": 0.1,
    "inference": 0.5,
    "done": 0.0,
}
_SHARE_BEFORE = {s: sum(STAGE_SHARE[p] for p in STAGES[: STAGES.index(s)]) for s in STAGES}


def overall_progress(stage: str, fraction: float) -> float:
    """Fraction (0-1) of the whole run done at `fraction` of `stage`; 0 for an unknown stage."""
    if stage not in STAGE_SHARE:
        return 0.0
    return _SHARE_BEFORE[stage] + STAGE_SHARE[stage] * min(max(fraction, 0.0), 1.0)


NO_SPEECH_MESSAGE = "No speech detected: there is nothing to classify."
NO_AUDIO_WARNING = (
    "The video has no audio track: nothing could be transcribed, and the audio branch was not used."
)

Progress = Callable[[str, float], None]


class UntrainedModelError(CheckpointError):
    """The checkpoint was never trained: its predictions would be random."""


@dataclass
class UtteranceResult:
    index: int
    start: float
    end: float
    text: str
    emotion: str
    emotion_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]


@dataclass
class AnalysisResult:
    utterances: list[UtteranceResult]
    summary: dict
    model_version: str
    modalities_used: list[str]
    has_audio: bool
    duration: float
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return asdict(self)


def _distribution(
    utterances: Sequence[UtteranceResult], key: str, labels: Sequence[str]
) -> dict[str, float]:
    # A 0-length utterance still counts a little, so a summary never divides by zero.
    weights = np.array([max(u.end - u.start, 1e-3) for u in utterances])
    scores = np.array([[getattr(u, key)[label] for label in labels] for u in utterances])
    mean = weights @ scores / weights.sum()
    return {label: float(p) for label, p in zip(labels, mean, strict=True)}


def summarize(utterances: Sequence[UtteranceResult]) -> dict:
    """Whole-video emotion and sentiment: each utterance's probabilities weighted by its duration
    (a 6 s utterance counts three times a 2 s one); dominant = the largest share."""
    if not utterances:
        return {
            "speech_detected": False,
            "message": NO_SPEECH_MESSAGE,
            "utterance_count": 0,
            "speech_duration": 0.0,
            "dominant_emotion": None,
            "dominant_sentiment": None,
            "emotion_distribution": {},
            "sentiment_distribution": {},
        }
    emotions = _distribution(utterances, "emotion_scores", EMOTIONS)
    sentiments = _distribution(utterances, "sentiment_scores", SENTIMENTS)
    return {
        "speech_detected": True,
        "message": f"{len(utterances)} utterances analysed.",
        "utterance_count": len(utterances),
        "speech_duration": float(sum(u.end - u.start for u in utterances)),
        "dominant_emotion": max(emotions, key=emotions.__getitem__),
        "dominant_sentiment": max(sentiments, key=sentiments.__getitem__),
        "emotion_distribution": emotions,
        "sentiment_distribution": sentiments,
    }


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_checkpoint(checkpoint: str | Path | None) -> Path:
    """The checkpoint file to load: `checkpoint`, else the shipped default."""
    if checkpoint:
        return Path(checkpoint)
    if not DEFAULT_CHECKPOINT.is_file():
        raise CheckpointError(
            f"No trained model found at {DEFAULT_CHECKPOINT}. Train one with the training/ "
            "package (see README) and save it there, or point MODEL_CHECKPOINT (or "
            "--checkpoint) at a checkpoint file."
        )
    return DEFAULT_CHECKPOINT


class _StageClock:
    """Reports (stage, fraction) and times each stage."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    def report(self, stage: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(stage, fraction)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Callable[[float], None]]:
        self.report(name, 0.0)
        start = time.perf_counter()
        yield functools.partial(self.report, name)
        self.timings[name] = time.perf_counter() - start
        self.report(name, 1.0)


class Analyzer:
    """Model + tokenizer + Whisper, loaded once; `analyze` may be called many times."""

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        whisper_model: str | Path | None = None,
        device: str | None = None,
        whisper_device: str = "cpu",
        batch_size: int = 8,
        limits: MediaLimits = MediaLimits(),  # noqa: B008 - frozen dataclass
        allow_untrained: bool = False,
        min_utterance_s: float = MIN_UTTERANCE_S,
        max_utterance_s: float = MAX_UTTERANCE_S,
    ) -> None:
        self.device = torch.device(device or default_device())
        self.checkpoint_path = resolve_checkpoint(checkpoint)
        self.model, self.checkpoint_info = load_checkpoint(self.checkpoint_path, self.device)
        if not self.checkpoint_info.trained and not allow_untrained:
            raise UntrainedModelError(
                f"{self.checkpoint_path} holds an untrained model "
                f"({self.checkpoint_info.model_version}): its predictions would be random. "
                "Train a model first (see README); only tests may use untrained checkpoints."
            )
        if self.model.video is not None:
            # R3D-18's 3-D convolutions run ~25% faster channels-last on CPU (oneDNN); frames
            # come out of `frames_to_tensor` in that layout already.
            self.model.video.to(memory_format=torch.channels_last_3d)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(
            self.model.config.resolved_text_encoder_path(), local_files_only=True
        )
        self.whisper = load_whisper(whisper_model, device=whisper_device)
        if self.model.audio is not None:
            # librosa's first call imports and JIT-compiles (~2 s): pay it at load, not per video.
            log_mel(np.ones(self.preprocess.sample_rate, np.float32), 0.0, 1.0, self.preprocess)
        self.batch_size = batch_size
        self.limits = limits
        self.min_utterance_s = min_utterance_s
        self.max_utterance_s = max_utterance_s

    @property
    def preprocess(self) -> PreprocessConfig:
        """What the checkpoint was trained on; inference must feed exactly this."""
        return self.model.config.preprocess

    @property
    def model_version(self) -> str:
        return self.checkpoint_info.model_version

    def analyze(self, video_path: str | Path, progress: Progress | None = None) -> AnalysisResult:
        """Raises `MediaError` for unusable media; no speech gives zero utterances, not an error."""
        clock = _StageClock(progress)
        started = time.perf_counter()
        warnings: list[str] = []
        if not self.checkpoint_info.trained:
            warnings.append(
                f"The model ({self.model_version}) is untrained: these predictions are random."
            )
        with clock.stage("probe"):
            info = probe(video_path, self.limits)
        with clock.stage("audio"):
            audio = (
                load_checked_audio(video_path, info, self.preprocess.sample_rate)
                if info.has_audio
                else None
            )
        if audio is None:
            warnings.append(NO_AUDIO_WARNING)
        with clock.stage("transcribe") as report:
            utterances = self._utterances(audio, info, report)
        with clock.stage("features") as report:
            mels, frames = self._features(video_path, info, audio, utterances, report)
        with clock.stage("inference") as report:
            results = self._classify(utterances, mels, frames, report)
        clock.timings["total"] = time.perf_counter() - started
        clock.report("done", 1.0)
        return AnalysisResult(
            utterances=results,
            summary=summarize(results),
            model_version=self.model_version,
            modalities_used=[
                m for m in self.model.config.modalities if m != "audio" or info.has_audio
            ],
            has_audio=info.has_audio,
            duration=info.duration,
            warnings=warnings,
            timings=clock.timings,
        )

    def _utterances(
        self, audio: np.ndarray | None, info: MediaInfo, report: Callable[[float], None]
    ) -> list[Segment]:
        if audio is None:
            return []
        segments = transcribe(audio, self.whisper, progress=report)
        utterances = segments_to_utterances(segments, self.min_utterance_s, self.max_utterance_s)
        clamped = (clamp_to_duration(u, info.duration) for u in utterances)
        return [u for u in clamped if u.end > u.start]

    def _features(
        self,
        video_path: str | Path,
        info: MediaInfo,
        audio: np.ndarray | None,
        utterances: Sequence[Segment],
        report: Callable[[float], None],
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Log-mels (N, 1, n_mels, steps) if the model has an audio branch and the video has
        audio; uint8 frames (N, T, S, S, 3) if it has a video branch. Frames stay uint8 until
        their batch runs: a quarter of the memory of float."""
        if not utterances:
            return None, None
        windows = [(u.start, u.end) for u in utterances]
        mels = None
        if self.model.audio is not None and audio is not None:
            mels = np.stack([log_mel(audio, s, e, self.preprocess)[None] for s, e in windows])
        report(0.2)
        frames = None
        if self.model.video is not None:
            frames = decode_window_frames(
                video_path, windows, self.preprocess, info, lambda f: report(0.2 + 0.8 * f)
            )
        return mels, frames

    def _classify(
        self,
        utterances: Sequence[Segment],
        mels: np.ndarray | None,
        frames: np.ndarray | None,
        report: Callable[[float], None],
    ) -> list[UtteranceResult]:
        texts = [u.text for u in utterances]
        contexts = [
            context_string(texts[:i], self.preprocess.context_utterances) for i in range(len(texts))
        ]
        results: list[UtteranceResult] = []
        with torch.inference_mode():
            for lo in range(0, len(utterances), self.batch_size):
                hi = min(lo + self.batch_size, len(utterances))
                text = encode_texts(self.tokenizer, texts[lo:hi], contexts[lo:hi], self.preprocess)
                audio = None if mels is None else torch.from_numpy(mels[lo:hi])
                video = None if frames is None else frames_to_tensor(frames[lo:hi], self.preprocess)
                logits = self.model(
                    text={k: v.to(self.device) for k, v in text.items()},
                    audio=None if audio is None else audio.to(self.device),
                    video=None if video is None else video.to(self.device),
                )
                emotion = logits["emotion"].softmax(-1).cpu().tolist()
                sentiment = logits["sentiment"].softmax(-1).cpu().tolist()
                for i in range(hi - lo):
                    results.append(_result(lo + i, utterances[lo + i], emotion[i], sentiment[i]))
                report(hi / len(utterances))
        return results


def _result(
    index: int, utterance: Segment, emotion: list[float], sentiment: list[float]
) -> UtteranceResult:
    emotion_scores = dict(zip(EMOTIONS, emotion, strict=True))
    sentiment_scores = dict(zip(SENTIMENTS, sentiment, strict=True))
    return UtteranceResult(
        index=index,
        start=round(utterance.start, 3),
        end=round(utterance.end, 3),
        text=utterance.text,
        emotion=max(emotion_scores, key=emotion_scores.__getitem__),
        emotion_scores=emotion_scores,
        sentiment=max(sentiment_scores, key=sentiment_scores.__getitem__),
        sentiment_scores=sentiment_scores,
    )


@functools.lru_cache(maxsize=2)
def get_analyzer(
    checkpoint: str | None = None,
    whisper_model: str | None = None,
    allow_untrained: bool = False,
    whisper_device: str = "cpu",
) -> Analyzer:
    """One cached `Analyzer` per (checkpoint, whisper model, ...) in this process."""
    return Analyzer(
        checkpoint,
        whisper_model=whisper_model,
        allow_untrained=allow_untrained,
        whisper_device=whisper_device,
    )


def analyze(
    video_path: str | Path,
    progress: Progress | None = None,
    checkpoint: str | Path | None = None,
    whisper_model: str | Path | None = None,
    *,
    allow_untrained: bool = False,
    whisper_device: str = "cpu",
) -> AnalysisResult:
    """Analyse one video with a cached `Analyzer` (loaded on the first call)."""
    analyzer = get_analyzer(
        str(checkpoint) if checkpoint else None,
        str(whisper_model) if whisper_model else None,
        allow_untrained,
        whisper_device,
    )
    return analyzer.analyze(video_path, progress=progress)
