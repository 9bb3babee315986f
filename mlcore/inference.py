"""Video in, per-utterance emotion and sentiment out.

`Analyzer` loads the checkpoint, tokenizer and Whisper once (a worker keeps one per process) and
runs: probe -> audio (decoded once) -> language (which language is spoken where,
`mlcore.language`) -> transcribe -> speakers (who speaks when, `mlcore.speakers`; utterances
split where a turn changes) -> translate (non-English utterances to English) -> faces (the
face channel, sampled across the whole video) -> voice (prosody and the voice-emotion model per
utterance) -> features
(text, log-mel, frames from one video decode) -> batched inference -> fusion (`mlcore.fusion`).
Progress is reported per stage as (stage, fraction of that stage done), stages in the order of
`STAGES`.

Channels: the language model (`emotion`/`sentiment`, validated on MELD), the face channel (a
pretrained expression classifier, `mlcore.face`), the voice channel (measured prosody,
`mlcore.voice`, and an emotion model trained on acted speech, `mlcore.voice_emotion`) and
`combined` (late fusion of words, face and voice). `AnalysisResult.channels` says
which ran, with which model, and why one did not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mlcore import face as face_channel
from mlcore import language as lang
from mlcore import speakers as speaker_channel
from mlcore import voice_emotion as voice_emotion_model
from mlcore.checkpoint import CheckpointError, load_checkpoint
from mlcore.config import PreprocessConfig
from mlcore.face_expression import DEFAULT_EXPRESSION_MODEL
from mlcore.fusion import DEFAULT_FACE_WEIGHT, DEFAULT_TEXT_WEIGHT, DEFAULT_VOICE_WEIGHT, combine
from mlcore.labels import EMOTIONS, SENTIMENTS, headline, used_channels
from mlcore.media import (
    MediaError,
    MediaInfo,
    MediaLimits,
    decode_window_frames,
    frames_to_tensor,
    load_checked_audio,
    log_mel,
    probe,
)
from mlcore.paths import DEFAULT_CHECKPOINT
from mlcore.text import conversation_contexts, encode_texts
from mlcore.transcribe import (
    MAX_UTTERANCE_S,
    MIN_UTTERANCE_S,
    MULTILINGUAL_MODEL_NAME,
    Segment,
    WhisperModelError,
    clamp_to_duration,
    load_whisper,
    model_label,
    segments_to_utterances,
    shift_segment,
    transcribe,
    untranscribed,
)
from mlcore.voice import VOICE_METHOD, Prosody, measure_all, utterance_tracks
from mlcore.voice import baseline as voice_baseline

STAGES: tuple[str, ...] = (
    "probe",
    "audio",
    "language",
    "transcribe",
    "speakers",
    "translate",
    "faces",
    "voice",
    "features",
    "inference",
    "done",
)
# Typical share of the run time per stage on CPU (for one overall progress bar).
STAGE_SHARE: dict[str, float] = {
    "probe": 0.02,
    "audio": 0.03,
    "language": 0.05,
    "transcribe": 0.32,
    "speakers": 0.03,
    "translate": 0.05,
    "faces": 0.25,
    "voice": 0.1,
    "features": 0.05,
    "inference": 0.1,
    "done": 0.0,
}
_SHARE_BEFORE = {s: sum(STAGE_SHARE[p] for p in STAGES[: STAGES.index(s)]) for s in STAGES}


def overall_progress(stage: str, fraction: float) -> float:
    """Fraction (0-1) of the whole run done at `fraction` of `stage`; 0 for an unknown stage."""
    if stage not in STAGE_SHARE:
        return 0.0
    return _SHARE_BEFORE[stage] + STAGE_SHARE[stage] * min(max(fraction, 0.0), 1.0)


NO_SPEECH_MESSAGE = "No speech detected: the language model had nothing to classify."
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
    text: str  # what the language model read: the transcript, or its English translation
    # The language model's labels; None: it gave none (language uncertain, or not English with
    # translation off: see `language` and the text channel's note).
    emotion: str | None
    emotion_scores: dict[str, float] | None
    sentiment: str | None
    sentiment_scores: dict[str, float] | None
    face: dict | None = None  # mlcore.face.aggregate over the utterance; None: channel off
    voice: dict | None = None  # mlcore.voice.Prosody; None: no audio
    combined: dict | None = None  # mlcore.fusion.combine; None: no channel gave a label
    language: str = ""  # Whisper's language ID ("" when identification is off)
    language_probability: float | None = None
    original_text: str = ""  # the words as spoken, when `text` is a translation
    translated: bool = False
    speaker: int | None = None  # 1, 2, ... (mlcore.speakers); None: speakers off, or unheard


@dataclass
class AnalysisResult:
    utterances: list[UtteranceResult]
    summary: dict
    model_version: str
    modalities_used: list[str]  # the language model's own input branches
    has_audio: bool
    duration: float
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    channels: dict[str, dict] = field(default_factory=dict)
    face_track: list[dict] = field(default_factory=list)
    language: str = ""  # the language spoken longest ("" when none was identified)
    language_probability: float | None = None
    speakers: list[dict] = field(default_factory=list)  # `speaker_summaries`
    speaker_turns: list[dict] = field(default_factory=list)  # who speaks when: start, end, speaker

    @property
    def channels_used(self) -> list[str]:
        return used_channels(self.channels)

    def to_dict(self) -> dict:
        """Plain JSON-ready data."""
        return asdict(self)


def _distribution(
    utterances: Sequence[UtteranceResult],
    scores_of: Callable[[UtteranceResult], dict[str, float]],
    labels: Sequence[str],
) -> dict[str, float]:
    # A 0-length utterance still counts a little, so a summary never divides by zero.
    weights = np.array([max(u.end - u.start, 1e-3) for u in utterances])
    scores = np.array([[scores_of(u)[label] for label in labels] for u in utterances])
    mean = weights @ scores / weights.sum()
    return {label: float(p) for label, p in zip(labels, mean, strict=True)}


def _shares(
    utterances: Sequence[UtteranceResult],
    label_of: Callable[[UtteranceResult], str],
    labels: Sequence[str],
) -> dict[str, float]:
    """Each label's share of the utterances' speaking time (each utterance counts its label)."""
    seconds = dict.fromkeys(labels, 0.0)
    for u in utterances:
        seconds[label_of(u)] += max(u.end - u.start, 1e-3)
    total = sum(seconds.values())
    return {label: s / total for label, s in seconds.items()}


def _dominant(shares: dict[str, float], means: dict[str, float]) -> str:
    """The label with the most speaking time (ties: the higher mean probability)."""
    return max(shares, key=lambda label: (round(shares[label], 9), means[label]))


def summarize(
    utterances: Sequence[UtteranceResult],
    faces: Sequence[face_channel.FaceFrame] = (),
    *,
    face_on: bool = False,
) -> dict:
    """Whole-video emotion and sentiment. `*_shares`: each label's share of the labelled speaking
    time; `dominant_*`: the label with the most of it (what a reader of the transcript sees).
    `*_distribution`: each utterance's probabilities averaged, weighted by its duration (a 6 s
    utterance counts three times a 2 s one). The face channel's summary covers the whole video,
    speech or not."""
    face = face_summary(faces) if face_on else None
    out = {
        "speech_detected": bool(utterances),
        "message": NO_SPEECH_MESSAGE,
        "utterance_count": len(utterances),
        "labelled_utterance_count": 0,
        "speech_duration": float(sum(u.end - u.start for u in utterances)),
        "dominant_emotion": None,
        "dominant_sentiment": None,
        "emotion_distribution": {},
        "sentiment_distribution": {},
        "emotion_shares": {},
        "sentiment_shares": {},
        "combined": None,
        "face": face,
        "voice": None,
    }
    if not utterances:
        if face and face["frames_with_face"]:
            out["message"] += (
                f" The face channel read {face['frames_with_face']} frames with a face: "
                "see the face timeline."
            )
        return out
    labelled = [u for u in utterances if u.emotion_scores is not None]
    fused = [u for u in utterances if u.combined]
    out["labelled_utterance_count"] = len(labelled)
    out["voice"] = voice_summary(utterances)
    out["message"] = f"{len(utterances)} utterances analysed."
    if len(labelled) < len(utterances):
        out["message"] += (
            f" {len(utterances) - len(labelled)} of them got no language-model label "
            "(see the text channel's note)."
        )
    if labelled:
        out |= _label_summary(
            labelled,
            lambda u: (u.emotion, u.emotion_scores),
            lambda u: (u.sentiment, u.sentiment_scores),
        )
    if fused:
        out["combined"] = _label_summary(
            fused,
            lambda u: (u.combined["emotion"], u.combined["emotion_scores"]),
            lambda u: (u.combined["sentiment"], u.combined["sentiment_scores"]),
        )
    return out


def voice_summary(utterances: Sequence[UtteranceResult]) -> dict | None:
    """The video's typical voice (`voice_baseline`) and, where the voice-emotion model read
    utterances, its emotion and sentiment over them (as the words' summary) and mean arousal."""
    voiced = [u for u in utterances if u.voice and "pitch_median_hz" in u.voice]
    out = voice_baseline([Prosody.from_dict(u.voice) for u in voiced])
    read = [u for u in utterances if u.voice and u.voice.get("emotion_scores")]
    if not read:
        return out
    out = (out or {}) | _label_summary(
        read,
        lambda u: (u.voice["emotion"], u.voice["emotion_scores"]),
        lambda u: (u.voice["sentiment"], u.voice["sentiment_scores"]),
    )
    weights = np.array([max(u.end - u.start, 1e-3) for u in read])
    arousal = np.array([u.voice["arousal"] for u in read])
    out["mean_arousal"] = round(float(weights @ arousal / weights.sum()), 4)
    out["read_utterance_count"] = len(read)
    return out


def _label_summary(
    utterances: Sequence[UtteranceResult],
    emotion_of: Callable[[UtteranceResult], tuple[str, dict[str, float]]],
    sentiment_of: Callable[[UtteranceResult], tuple[str, dict[str, float]]],
) -> dict:
    out = {}
    for key, reading, labels in (
        ("emotion", emotion_of, EMOTIONS),
        ("sentiment", sentiment_of, SENTIMENTS),
    ):
        means = _distribution(utterances, lambda u, r=reading: r(u)[1], labels)
        shares = _shares(utterances, lambda u, r=reading: r(u)[0], labels)
        out[f"dominant_{key}"] = _dominant(shares, means)
        out[f"{key}_shares"] = shares
        out[f"{key}_distribution"] = means
        out[f"{key}_headline"] = headline(shares, _confidence(utterances, reading, labels))
    return out


def _confidence(
    utterances: Sequence[UtteranceResult],
    reading: Callable[[UtteranceResult], tuple[str, dict[str, float]]],
    labels: Sequence[str],
) -> dict[str, float]:
    """Per label, the model's mean probability for it over the utterances it labels (weighted
    by duration): how sure the time a label holds is."""
    sums, weights = dict.fromkeys(labels, 0.0), dict.fromkeys(labels, 0.0)
    for u in utterances:
        label, scores = reading(u)
        weight = max(u.end - u.start, 1e-3)
        sums[label] += weight * scores[label]
        weights[label] += weight
    return {label: sums[label] / weights[label] for label in labels if weights[label]}


def media_warnings(info: MediaInfo) -> list[str]:
    """What a reader should know about the file itself: which audio track was read, and audio
    that runs past the picture (analysed and charged by the container's full duration)."""
    out = []
    if info.audio_streams > 1:
        out.append(
            f"The video has {info.audio_streams} audio tracks; the first one "
            f"({info.audio_codec}) was analysed."
        )
    if (
        info.audio_duration
        and info.video_duration
        and (info.audio_duration > info.video_duration + 1.0)
    ):
        out.append(
            f"The audio ({info.audio_duration:.1f} s) runs longer than the picture "
            f"({info.video_duration:.1f} s): all of the audio was analysed and counts towards "
            "your minutes."
        )
    return out


# A header may round its length; a file that decodes shorter than this (or 2%) under what it
# declares overstates it.
DURATION_SHORTFALL_S = 1.0


def decoded_length(
    info: MediaInfo, audio_s: float | None, last_frame_s: float | None
) -> float | None:
    """How far the file really decodes, when that is well short of its declared length: the end
    of its audio or of its last decoded sampled frame (plus one sample interval), whichever is
    later. None when it decodes as long as it says (or nothing tells: no audio and no frames)."""
    reached = [t for t in (audio_s, last_frame_s) if t is not None]
    if last_frame_s is not None:
        reached.append(last_frame_s + 1.0 / face_channel.FACE_SAMPLE_FPS)
    if not reached:
        return None
    end = min(max(reached), info.duration)
    if end >= info.duration - max(DURATION_SHORTFALL_S, 0.02 * info.duration):
        return None
    return end


def untranscribed_warning(skipped: Sequence[tuple[float, float]]) -> str:
    """What a reader must know when heard speech is in no utterance, and where it is."""

    def clock(seconds: float) -> str:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    total = sum(end - start for start, end in skipped)
    where = ", ".join(f"{clock(a)}-{clock(b)}" for a, b in skipped[:5])
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    return (
        f"{total:.0f} s of what sounded like speech got no transcript (at {where}{more}): "
        "music, noise, or speech the transcriber could not read. It is in no utterance and "
        "has no label."
    )


def overstated_length_warning(declared_s: float, decoded_s: float) -> str:
    return (
        f"The file says it lasts {declared_s:.1f} s, but its sound and picture end at "
        f"{decoded_s:.1f} s: {decoded_s:.1f} s were analysed, and only those count towards your "
        "minutes."
    )


def text_note(readings: Sequence[lang.Reading], identified: bool, translation_on: bool) -> str:
    """The text channel's note: what the language model read, in words."""
    if not identified:
        return (
            "Language identification is off (WHISPER_LANGUAGE_MODEL): the speech was taken to be "
            "English."
        )
    parts = []
    translated = [r for r in readings if r.translated]
    if translated:
        names = ", ".join(sorted({lang.language_name(r.language) for r in translated}))
        parts.append(
            f"{len(translated)} utterance(s) in {names} were read through Whisper's English "
            "translation; the original words are kept beside it."
        )
    uncertain = [r for r in readings if r.unread_reason == "uncertain"]
    if uncertain:
        guess = uncertain[0]
        parts.append(
            f"{len(uncertain)} utterance(s) got no language-model label: the spoken language was "
            f"uncertain (best guess {lang.language_name(guess.language)}, "
            f"{(guess.probability or 0):.0%}), so the transcript may be misheard."
        )
    untranslated = [r for r in readings if r.unread_reason == "translation_off"]
    if untranslated:
        names = ", ".join(sorted({lang.language_name(r.language) for r in untranslated}))
        parts.append(
            f"{len(untranslated)} utterance(s) in {names} got no language-model label: it reads "
            "English only and translation is off (ANALYSIS_TRANSLATE). The face and voice "
            "channels still apply."
        )
    return " ".join(parts)


def language_warnings(
    spans: Sequence[lang.LanguageSpan], readings: Sequence[lang.Reading]
) -> list[str]:
    """Warnings at the top of a result when the words were not read as plain English."""
    out = []
    main = lang.main_language(list(spans))
    if main and main[0] != lang.ENGLISH and main[1] >= lang.MIN_LANGUAGE_PROBABILITY:
        out.append(
            f"The speech is mostly in {lang.language_name(main[0])} ({main[1]:.0%} sure). "
            "The language model reads English only: see the text channel for how it was read."
        )
    if any(r.unread_reason == "uncertain" for r in readings):
        out.append(
            "The spoken language could not be identified with confidence for part of the speech "
            "(music, noise or very short speech?): those utterances got no language-model label."
        )
    return out


def speaker_summaries(
    results: Sequence[UtteranceResult],
    turns: Sequence[speaker_channel.Turn],
    faces: Sequence[face_channel.FaceFrame],
) -> list[dict]:
    """Per speaker: talk time (their turns) and share of all talk, utterances, each channel's
    dominant emotion and sentiment over their utterances (as the video summary computes them),
    the voice's typical pitch and mean arousal, and the face track tied to the voice where the
    evidence is clear (`speakers.link_faces`; only then is a face reading given)."""
    ids = sorted({who for _, _, who in turns} | {r.speaker for r in results if r.speaker})
    links = speaker_channel.link_faces(faces, turns) if faces else {}
    talk = {i: sum(end - start for start, end, who in turns if who == i) for i in ids}
    total = sum(talk.values()) or 1.0
    out = []
    for i in ids:
        mine = [r for r in results if r.speaker == i]
        labelled = [r for r in mine if r.emotion_scores is not None]
        fused = [r for r in mine if r.combined]
        voice = voice_summary(mine) or {}
        link = links.get(i) or {"person": None, "note": "The face channel is off or saw nothing."}
        face = _person_face(faces, link["person"], [(r.start, r.end) for r in mine])
        out.append(
            {
                "id": i,
                "name": speaker_channel.speaker_name(i),
                "talk_s": round(talk[i], 3),
                "share": round(talk[i] / total, 4),
                "utterance_count": len(mine),
                "text": _dominants(labelled, lambda u: (u.emotion_scores, u.sentiment_scores)),
                "face": face,
                "voice": (
                    {
                        "emotion": voice.get("dominant_emotion"),
                        "sentiment": voice.get("dominant_sentiment"),
                        "mean_arousal": voice.get("mean_arousal"),
                        "pitch_median_hz": voice.get("pitch_median_hz"),
                    }
                    if voice
                    else None
                ),
                "combined": _dominants(
                    fused,
                    lambda u: (u.combined["emotion_scores"], u.combined["sentiment_scores"]),
                ),
                "face_person": link["person"],
                "face_note": link["note"],
            }
        )
    return out


def _dominants(
    utterances: Sequence[UtteranceResult],
    scores_of: Callable[[UtteranceResult], tuple[dict[str, float], dict[str, float]]],
) -> dict | None:
    """The dominant emotion and sentiment over `utterances` (most speaking time, `_dominant`)."""
    if not utterances:
        return None
    summary = _label_summary(
        utterances,
        lambda u: (max(scores_of(u)[0], key=scores_of(u)[0].get), scores_of(u)[0]),
        lambda u: (max(scores_of(u)[1], key=scores_of(u)[1].get), scores_of(u)[1]),
    )
    return {"emotion": summary["dominant_emotion"], "sentiment": summary["dominant_sentiment"]}


def _person_face(
    faces: Sequence[face_channel.FaceFrame],
    person: int | None,
    spans: Sequence[tuple[float, float]],
) -> dict | None:
    """The face track `person`'s mean expression over the frames inside `spans`."""
    if person is None:
        return None
    seen = []
    for frame in faces:
        if not any(start <= frame.time <= end for start, end in spans):
            continue
        if frame.person == person and frame.scores:
            seen.append(frame.scores)
        else:
            seen += [s.scores for s in frame.people if s.person == person and s.scores]
    if not seen:
        return None
    scores = {e: float(np.mean([s[e] for s in seen])) for e in EMOTIONS}
    return {"emotion": max(scores, key=scores.get), "frames": len(seen)}


def face_summary(faces: Sequence[face_channel.FaceFrame]) -> dict:
    """The face channel over the whole video (`face_channel.aggregate` over every sampled frame):
    how often a face was seen, and the mean expression probabilities over the frames with one."""
    whole = face_channel.aggregate(faces, -math.inf, math.inf)
    return {
        "frames": whole["frames"],
        "frames_with_face": sum(1 for f in faces if f.scores),
        "coverage": whole["coverage"],
        "max_faces": whole["faces_seen"],
        "people": whole["people"],
        "dominant_emotion": whole["emotion"],
        "mean_emotion_scores": whole["scores"] or {},
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
        language_model: str | Path | None = MULTILINGUAL_MODEL_NAME,
        translate_speech: bool = True,
        device: str | None = None,
        whisper_device: str = "cpu",
        batch_size: int = 8,
        limits: MediaLimits = MediaLimits(),  # noqa: B008 - frozen dataclass
        allow_untrained: bool = False,
        min_utterance_s: float = MIN_UTTERANCE_S,
        max_utterance_s: float = MAX_UTTERANCE_S,
        face: bool = True,
        face_model: str = DEFAULT_EXPRESSION_MODEL,
        voice: bool = True,
        voice_emotion: bool = True,
        voice_emotion_weights: str | Path | None = None,
        speakers: bool = True,
        face_weight: float = DEFAULT_FACE_WEIGHT,
        text_weight: float = DEFAULT_TEXT_WEIGHT,
        voice_weight: float = DEFAULT_VOICE_WEIGHT,
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
        self.whisper_name = model_label(whisper_model)
        self.multilingual_name = model_label(language_model) if language_model else None
        # Language identification and translation need a multilingual Whisper; with none
        # (language_model=""), speech is taken to be English. Where WHISPER_MODEL is that same
        # model, the worker holds it once (load_whisper caches per path).
        self.multilingual = (
            load_whisper(language_model, device=whisper_device) if language_model else None
        )
        if self.multilingual is not None and not self.multilingual.model.is_multilingual:
            raise WhisperModelError(
                f"the language model {language_model!r} is English-only: language "
                "identification needs a multilingual Whisper (e.g. 'base')"
            )
        self.translate_speech = translate_speech
        one_second = np.sin(np.linspace(0, 2 * np.pi * 150, self.preprocess.sample_rate))
        if self.model.audio is not None:
            # librosa's first call imports and JIT-compiles (~2 s): pay it at load, not per video.
            log_mel(one_second.astype(np.float32), 0.0, 1.0, self.preprocess)
        # The face channel's detector and classifier load once (repository and packages).
        self.face_reader = (
            face_channel.FaceReader(device=str(self.device), expression_model=face_model)
            if face
            else None
        )
        self.voice = voice
        # The voice-emotion head reads the encoder of a Whisper the worker holds anyway (tiny.en
        # transcribes; load_whisper shares one instance per model).
        self.voice_model = (
            voice_emotion_model.VoiceEmotionModel.load(
                voice_emotion_weights or voice_emotion_model.DEFAULT_WEIGHTS
            )
            if voice and voice_emotion
            else None
        )
        self.voice_encoder = (
            load_whisper(self.voice_model.whisper_model, device=whisper_device)
            if self.voice_model
            else None
        )
        if voice:  # the same for pyin's compiled kernels (~1.3 s on the first video otherwise)
            measure_all(
                one_second.astype(np.float32),
                self.preprocess.sample_rate,
                [Segment(0.0, 1.0, "warm-up")],
            )
        if self.voice_model is not None:  # librosa's spectral features and the encoder's first
            # call cost seconds (21 s on a cold disk): pay them at load, not on the first video.
            voice_emotion_model.embed(self.voice_encoder, one_second.astype(np.float32))
        # Who speaks when: CAM++ (its first call pays oneDNN's set-up: at load, not per video).
        self.speaker_encoder = (
            speaker_channel.load_speaker_encoder(str(self.device)) if speakers else None
        )
        if self.speaker_encoder is not None:
            speaker_channel.embed_windows(
                self.speaker_encoder, one_second.astype(np.float32), [(0, 0.0, 1.0)]
            )
        self.face_weight = face_weight
        self.text_weight = text_weight
        self.voice_weight = voice_weight
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
        warnings += media_warnings(info)
        with clock.stage("language"):
            identify = self.multilingual is not None and audio is not None
            windows = lang.speech_windows(audio) if identify else []
            spans = lang.identify_windows(windows[:1], self.multilingual) if identify else []
        with clock.stage("transcribe") as report:
            utterances, spans = self._utterances(audio, info, windows, spans, report)
        with clock.stage("speakers"):
            # Where speech is heard (VAD): the speaker windows, and the check that no heard
            # speech is left out of the transcript without saying so.
            regions = speaker_channel.speech_regions(audio) if audio is not None else []
            diarization = (
                speaker_channel.diarize(self.speaker_encoder, audio, utterances, regions)
                if self.speaker_encoder is not None and audio is not None and utterances
                else None
            )
        skipped = untranscribed(regions, utterances)
        if skipped:
            warnings.append(untranscribed_warning(skipped))
        if diarization is not None:
            utterances = diarization.utterances
        speaker_of = diarization.speakers if diarization else [None] * len(utterances)
        with clock.stage("translate") as report:
            readings = (
                lang.read_utterances(
                    audio,
                    utterances,
                    spans,
                    self.multilingual,
                    translate_speech=self.translate_speech,
                    progress=report,
                )
                if utterances
                else []
            )
        warnings += language_warnings(spans, readings)
        with clock.stage("faces") as report:
            faces, face_note = self._faces(video_path, info, utterances, report)
        # The decoded length decides what was analysed (and is charged), not the header. With
        # the face channel off the picture is not decoded, so it cannot tell.
        decoded_s = decoded_length(
            info,
            audio.size / self.preprocess.sample_rate if audio is not None else None,
            faces[-1].time if faces else None,
        )
        if decoded_s is not None and (self.face_reader is not None or not info.video_codec):
            warnings.append(overstated_length_warning(info.duration, decoded_s))
            info = dataclasses.replace(info, duration=decoded_s)
        with clock.stage("voice"):
            # One pyin call per stretch of speech, read by both the measures and the emotion model.
            tracks = (
                utterance_tracks(audio, self.preprocess.sample_rate, utterances)
                if self.voice and audio is not None
                else []
            )
            prosody = (
                measure_all(audio, self.preprocess.sample_rate, utterances, tracks, speaker_of)
                if tracks
                else []
            )
            voice_readings = (
                voice_emotion_model.read_utterances(
                    self.voice_model,
                    self.voice_encoder,
                    audio,
                    [(u.start, u.end) for u in utterances],
                    tracks,
                )
                if self.voice_model is not None and audio is not None
                else []
            )
        with clock.stage("features") as report:
            mels, frames = self._features(video_path, info, audio, utterances, report)
        with clock.stage("inference") as report:
            results = self._classify(utterances, readings, mels, frames, report)
        for result, speaker in zip(results, speaker_of, strict=True):
            result.speaker = speaker
        self._add_channels(results, faces, prosody, voice_readings)
        summary = summarize(results, faces, face_on=self.face_reader is not None)
        summary["untranscribed"] = {
            "seconds": round(sum(end - start for start, end in skipped), 3),
            "spans": [{"start": round(a, 3), "end": round(b, 3)} for a, b in skipped],
        }
        turns = diarization.turns if diarization else []
        clock.timings["total"] = time.perf_counter() - started
        clock.report("done", 1.0)
        return AnalysisResult(
            utterances=results,
            summary=summary,
            model_version=self.model_version,
            modalities_used=[
                m for m in self.model.config.modalities if m != "audio" or info.has_audio
            ],
            has_audio=info.has_audio,
            duration=info.duration,
            warnings=warnings,
            timings=clock.timings,
            channels=self._channels(
                results,
                summary["face"],
                face_note,
                prosody,
                audio is not None,
                voice_readings=voice_readings,
                spans=spans,
                readings=readings,
                diarization=diarization,
            ),
            face_track=[f.to_dict() for f in faces],
            language=main[0] if (main := lang.main_language(spans)) else "",
            language_probability=round(main[1], 4) if main else None,
            speakers=speaker_summaries(results, turns, faces),
            speaker_turns=[
                {"start": round(a, 3), "end": round(b, 3), "speaker": who} for a, b, who in turns
            ],
        )

    def _faces(
        self,
        video_path: str | Path,
        info: MediaInfo,
        utterances: Sequence[Segment],
        report: Callable[[float], None],
    ) -> tuple[list[face_channel.FaceFrame], str]:
        """The face track, and a note when the channel could not read the video (the
        other channels still report: one unreadable stream is not a failed analysis)."""
        if self.face_reader is None:
            return [], "The face channel is turned off (ANALYSIS_FACE_CHANNEL)."
        windows = [(u.start, u.end) for u in utterances]
        try:
            track = self.face_reader.read_video(
                video_path,
                info,
                extra_times=face_channel.face_times(info.duration, windows),
                progress=report,
            )
        except MediaError as exc:
            return [], f"The face channel could not read the picture: {exc}"
        return track, ""

    def _add_channels(
        self,
        results: list[UtteranceResult],
        frames: list[face_channel.FaceFrame],
        prosody: list[Prosody],
        voice_readings: list[dict],
    ) -> None:
        """Per utterance: the face aggregate, the voice (measures and emotion reading) and the
        combined label."""
        for i, result in enumerate(results):
            if self.face_reader is not None:
                result.face = face_channel.aggregate(frames, result.start, result.end)
            if i < len(prosody):
                result.voice = prosody[i].to_dict()
            if i < len(voice_readings):
                result.voice = (result.voice or {}) | voice_readings[i]
            result.combined = combine(
                result.emotion_scores,
                result.sentiment_scores,
                result.face,
                self.face_weight,
                voice=result.voice,
                voice_weight=self.voice_weight,
                text_weight=self.text_weight,
            )

    def _channels(
        self,
        results: list[UtteranceResult],
        face: dict | None,
        face_note: str,
        prosody: list[Prosody],
        has_audio: bool,
        *,
        voice_readings: list[dict],
        spans: list[lang.LanguageSpan],
        readings: list[lang.Reading],
        diarization: speaker_channel.Diarization | None,
    ) -> dict[str, dict]:
        """What each channel did, in words a reader of the result can check. `face` is the
        summary's `face_summary` (None when the channel is off)."""
        frames = face["frames"] if face else 0
        with_face = face["frames_with_face"] if face else 0
        if not face_note and self.face_reader is not None and not with_face:
            face_note = f"No face was found in the {frames} sampled frames."
        voice_note = ""
        if not self.voice:
            voice_note = "The voice channel is turned off (ANALYSIS_VOICE_CHANNEL)."
        elif not has_audio:
            voice_note = "The video has no audio track."
        elif not results:
            voice_note = "No speech: prosody is measured per utterance."
        labelled = sum(1 for r in results if r.emotion is not None)
        return {
            "text": {
                "used": labelled > 0,
                "model": self.model_version,
                # What the model read around each utterance (its training said so).
                "context": {
                    "previous": self.preprocess.context_utterances,
                    "following": self.preprocess.context_following,
                },
                "transcription": self._transcription_models(spans),
                "language_identification": (
                    f"whisper-{self.multilingual_name}" if self.multilingual_name else None
                ),
                "languages": [span.to_dict() for span in spans],
                "translated_utterances": sum(1 for r in readings if r.translated),
                "labelled_utterances": labelled,
                "note": text_note(readings, self.multilingual is not None, self.translate_speech)
                if results
                else NO_SPEECH_MESSAGE,
            },
            "face": {
                "used": with_face > 0,
                "model": self.face_reader.model_name if self.face_reader else None,
                "sample_fps": face_channel.FACE_SAMPLE_FPS,
                "frames": frames,
                "frames_with_face": with_face,
                "people": face["people"] if face else 0,
                "smoothing_s": face_channel.SMOOTHING_WINDOW_S,
                "note": face_note,
            },
            "voice": {
                "used": bool(prosody) or bool(voice_readings),
                "method": VOICE_METHOD,
                "emotion_model": self.voice_model.name if self.voice_model else None,
                "emotion_read_utterances": sum(1 for v in voice_readings if v["emotion"]),
                "note": voice_note or self._voice_emotion_note(voice_readings),
            },
            "speakers": self._speakers_channel(diarization, has_audio, bool(results)),
            "combined": {
                "used": any(r.combined for r in results),
                "rule": "log-linear pooling of words, face and voice (mlcore.fusion)",
                "face_weight": self.face_weight,
                "text_weight": self.text_weight,
                "voice_weight": self.voice_weight if self.voice_model else 0.0,
            },
        }

    def _speakers_channel(
        self, diarization: speaker_channel.Diarization | None, has_audio: bool, speech: bool
    ) -> dict:
        count = diarization.count if diarization else 0
        if self.speaker_encoder is None:
            note = "Speaker turns are turned off (ANALYSIS_SPEAKERS)."
        elif not has_audio:
            note = "The video has no audio track."
        elif not speech:
            note = "No speech: nobody to tell apart."
        else:
            note = (
                f"{count} speaker{'s' if count != 1 else ''} told apart by voice. "
                + speaker_channel.ACCURACY_NOTE
            )
        return {
            "used": count > 0,
            "model": speaker_channel.MODEL_NAME if self.speaker_encoder is not None else None,
            "method": speaker_channel.METHOD,
            "count": count,
            "note": note,
        }

    def _voice_emotion_note(self, voice_readings: list[dict]) -> str:
        if self.voice_model is None:
            return (
                "Voice emotion is turned off (ANALYSIS_VOICE_EMOTION): the voice channel "
                "reports measured prosody only."
            )
        unread = sum(1 for v in voice_readings if not v["emotion"])
        note = voice_emotion_model.MODEL_NOTE
        if unread:
            note += f" {unread} of {len(voice_readings)} utterances gave no voice reading."
        return note

    def _transcription_models(self, spans: list[lang.LanguageSpan]) -> str:
        """Which Whisper wrote the transcript (`_utterances`): the English model, the
        multilingual one for stretches in other languages, or both."""

        def foreign(span: lang.LanguageSpan) -> bool:
            return span.certain and span.language != lang.ENGLISH

        first = min(spans, key=lambda s: s.start, default=None)
        if first is not None and foreign(first):  # the multilingual model wrote it all
            return f"whisper-{self.multilingual_name}"
        if any(foreign(span) for span in spans):  # and wrote its foreign stretches again
            return f"whisper-{self.whisper_name} + whisper-{self.multilingual_name}"
        return f"whisper-{self.whisper_name}"

    def _utterances(
        self,
        audio: np.ndarray | None,
        info: MediaInfo,
        windows: list[lang.Window],
        spans: list[lang.LanguageSpan],
        report: Callable[[float], None],
    ) -> tuple[list[Segment], list[lang.LanguageSpan]]:
        """The utterances, and the language spans with every stretch that needed identifying.

        `spans` holds the first window's language. Another language, identified with
        certainty: every window is identified and the multilingual model transcribes, writing
        each window in its own language. Otherwise (English, or uncertain: a music intro must
        not send a video down the multilingual path) the English model transcribes; only the
        later stretches whose transcript reads unlike English are identified, and only those
        identified as another language are transcribed again by the multilingual model (a mostly
        English video is never transcribed twice in full). An utterance that spans of two
        languages overlap is then identified on its own (`lang.disputed_utterances`)."""
        if audio is None:
            return [], spans
        if any(span.certain and span.language != lang.ENGLISH for span in spans):
            known = {span.start for span in spans}
            rest = [window for window in windows if window[0] not in known]
            spans = spans + lang.identify_windows(rest, self.multilingual)
            # The first window's language, given, spares faster-whisper identifying it again
            # (an encoder pass); `multilingual` still reads each window's own language.
            segments = transcribe(
                audio,
                self.multilingual,
                language=spans[0].language,
                multilingual=True,
                capped=True,
                progress=report,
            )
        else:
            # A multilingual English transcriber (WHISPER_MODEL=base) is held to English, so
            # other languages come out unsure and are found.
            held_to = "en" if self.whisper.model.is_multilingual else None
            segments = transcribe(audio, self.whisper, language=held_to, progress=report)
            if self.multilingual is not None:
                doubtful = lang.doubtful_stretches(audio, windows[1:], segments)
                spans = spans + lang.identify_windows(doubtful, self.multilingual)
                spans = lang.confirm_english(spans, segments)
                foreign = [s for s in spans if s.certain and s.language != lang.ENGLISH]
                if foreign:
                    segments = self._transcribe_again(audio, segments, foreign)
        utterances = segments_to_utterances(segments, self.min_utterance_s, self.max_utterance_s)
        clamped = (clamp_to_duration(u, info.duration) for u in utterances)
        utterances = [u for u in clamped if u.end > u.start]
        if self.multilingual is not None:
            disputed = lang.disputed_utterances(audio, utterances, spans)
            spans = spans + lang.identify_windows(disputed, self.multilingual)
        return utterances, sorted(spans, key=lambda s: s.start)

    def _transcribe_again(
        self,
        audio: np.ndarray,
        segments: list[Segment],
        foreign: list[lang.LanguageSpan],
    ) -> list[Segment]:
        """`segments` with each stretch in `foreign` written again by the multilingual model, in
        its identified language (one capped decode; the English model's words there dropped)."""
        rate = lang.SAMPLE_RATE

        def inside(segment: Segment) -> bool:
            middle = (segment.start + segment.end) / 2
            return any(span.start <= middle <= span.end for span in foreign)

        kept = [s for s in segments if not inside(s)]
        for span in foreign:
            stretch = audio[int(span.start * rate) : int(span.end * rate)]
            written = transcribe(stretch, self.multilingual, language=span.language, capped=True)
            kept += [shift_segment(s, span.start) for s in written]
        return sorted(kept, key=lambda s: (s.start, s.end))

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
        readings: Sequence[lang.Reading],
        mels: np.ndarray | None,
        frames: np.ndarray | None,
        report: Callable[[float], None],
    ) -> list[UtteranceResult]:
        """The language model over the readable utterances (each with the readable ones around it
        as context, as the config says); the others keep their transcript and get no label."""
        results = [
            _result(i, u, r) for i, (u, r) in enumerate(zip(utterances, readings, strict=True))
        ]
        readable = [i for i, r in enumerate(readings) if r.readable]
        texts = [readings[i].text for i in readable]
        contexts = conversation_contexts(texts, self.preprocess)
        with torch.inference_mode():
            for lo in range(0, len(readable), self.batch_size):
                hi = min(lo + self.batch_size, len(readable))
                rows = readable[lo:hi]
                text = encode_texts(self.tokenizer, texts[lo:hi], contexts[lo:hi], self.preprocess)
                audio = None if mels is None else torch.from_numpy(mels[rows])
                video = None if frames is None else frames_to_tensor(frames[rows], self.preprocess)
                logits = self.model(
                    text={k: v.to(self.device) for k, v in text.items()},
                    audio=None if audio is None else audio.to(self.device),
                    video=None if video is None else video.to(self.device),
                )
                emotion = logits["emotion"].softmax(-1).cpu().tolist()
                sentiment = logits["sentiment"].softmax(-1).cpu().tolist()
                for row, e, s in zip(rows, emotion, sentiment, strict=True):
                    _set_labels(results[row], e, s)
                report(hi / len(readable))
        return results


def _result(index: int, utterance: Segment, reading: lang.Reading) -> UtteranceResult:
    """An utterance with its language and what the model read, labels still to come."""
    return UtteranceResult(
        index=index,
        start=round(utterance.start, 3),
        end=round(utterance.end, 3),
        text=reading.text,
        emotion=None,
        emotion_scores=None,
        sentiment=None,
        sentiment_scores=None,
        language=reading.language,
        language_probability=(
            round(reading.probability, 4) if reading.probability is not None else None
        ),
        original_text=reading.original_text,
        translated=reading.translated,
    )


def _set_labels(result: UtteranceResult, emotion: list[float], sentiment: list[float]) -> None:
    result.emotion_scores = dict(zip(EMOTIONS, emotion, strict=True))
    result.sentiment_scores = dict(zip(SENTIMENTS, sentiment, strict=True))
    result.emotion = max(result.emotion_scores, key=result.emotion_scores.__getitem__)
    result.sentiment = max(result.sentiment_scores, key=result.sentiment_scores.__getitem__)


@functools.lru_cache(maxsize=2)
def get_analyzer(
    checkpoint: str | None = None,
    whisper_model: str | None = None,
    allow_untrained: bool = False,
    whisper_device: str = "cpu",
    *,
    face: bool = True,
    face_model: str = DEFAULT_EXPRESSION_MODEL,
    voice: bool = True,
    voice_emotion: bool = True,
    face_weight: float = DEFAULT_FACE_WEIGHT,
    text_weight: float = DEFAULT_TEXT_WEIGHT,
    voice_weight: float = DEFAULT_VOICE_WEIGHT,
    language_model: str | None = MULTILINGUAL_MODEL_NAME,
    translate_speech: bool = True,
    speakers: bool = True,
) -> Analyzer:
    """One cached `Analyzer` per (checkpoint, whisper model, ...) in this process."""
    return Analyzer(
        checkpoint,
        whisper_model=whisper_model,
        language_model=language_model,
        translate_speech=translate_speech,
        allow_untrained=allow_untrained,
        whisper_device=whisper_device,
        face=face,
        face_model=face_model,
        voice=voice,
        voice_emotion=voice_emotion,
        speakers=speakers,
        face_weight=face_weight,
        text_weight=text_weight,
        voice_weight=voice_weight,
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
