"""What the pages show, computed once in Python: stage wording, chart data, usage meters."""

from __future__ import annotations

from dataclasses import dataclass

from mlcore.labels import CHANNELS, EMOTIONS, SENTIMENTS
from quotas.services import UsageSummary
from videos.models import AnalysisJob, Utterance

# Engine stages (mlcore.inference.STAGES) and job states, in plain words for people.
STAGE_LABELS: dict[str, str] = {
    "queued": "Waiting for a worker",
    "starting": "Starting",
    "probe": "Checking the video",
    "audio": "Extracting the audio",
    "transcribe": "Transcribing the speech",
    "faces": "Reading facial expressions",
    "voice": "Measuring the voice",
    "features": "Preparing the language model's input",
    "inference": "Recognising emotions",
    "done": "Done",
    "failed": "Failed",
    "canceled": "Canceled",
}


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage.replace("_", " ").capitalize())


@dataclass(frozen=True)
class UtteranceRow:
    """An utterance with the confidences and channel readings the transcript shows."""

    utterance: Utterance
    emotion_confidence: float
    sentiment_confidence: float
    face_emotion: str | None = None  # None: no face seen during the utterance (or channel off)
    face_confidence: float = 0.0
    face_coverage: float = 0.0
    combined_emotion: str | None = None
    combined_sentiment: str | None = None
    voice_text: str = ""


def _voice_text(voice: dict | None) -> str:
    """Measured prosody in a few words: "128 Hz · 2.9 words/s · intensity +0.35"."""
    if not voice:
        return ""
    parts = []
    if voice.get("pitch_median_hz"):
        parts.append(f"{voice['pitch_median_hz']:.0f} Hz")
    if voice.get("speaking_rate_wps") is not None:
        parts.append(f"{voice['speaking_rate_wps']:.1f} words/s")
    if voice.get("relative_intensity") is not None:
        parts.append(f"intensity {voice['relative_intensity']:+.2f}")
    return " · ".join(parts)


def utterance_rows(utterances: list[Utterance]) -> list[UtteranceRow]:
    rows = []
    for u in utterances:
        face = u.face or {}
        combined = u.combined or {}
        face_emotion = face.get("emotion")
        rows.append(
            UtteranceRow(
                utterance=u,
                emotion_confidence=float((u.emotion_scores or {}).get(u.emotion, 0.0)),
                sentiment_confidence=float((u.sentiment_scores or {}).get(u.sentiment, 0.0)),
                face_emotion=face_emotion,
                face_confidence=float((face.get("scores") or {}).get(face_emotion, 0.0)),
                face_coverage=float(face.get("coverage") or 0.0),
                combined_emotion=combined.get("emotion"),
                combined_sentiment=combined.get("sentiment"),
                voice_text=_voice_text(u.voice),
            )
        )
    return rows


CHANNEL_NAMES = {"text": "Words", "face": "Face", "voice": "Voice", "combined": "Combined"}


def channel_rows(channels: dict) -> list[dict]:
    """Which channels produced this result, with their model and any note, for the page."""
    rows = []
    for name in CHANNELS:
        if name not in (channels or {}):
            continue
        info = channels[name]
        detail = info.get("model") or info.get("method") or info.get("rule") or ""
        if name == "face" and info.get("frames"):
            detail += f" · a face in {info['frames_with_face']} of {info['frames']} sampled frames"
        rows.append(
            {
                "name": CHANNEL_NAMES.get(name, name),
                "used": bool(info.get("used")),
                "detail": detail,
                "note": info.get("note", ""),
            }
        )
    return rows


def chart_data(job: AnalysisJob, utterances: list[Utterance]) -> dict:
    """Everything the result charts draw (rendered into the page with json_script)."""
    summary = job.summary or {}
    return {
        "duration": job.video.duration,
        "emotions": list(EMOTIONS),
        "sentiments": list(SENTIMENTS),
        "emotion_distribution": summary.get("emotion_distribution") or {},
        "sentiment_distribution": summary.get("sentiment_distribution") or {},
        # Frames where a face was seen: time, the face's top expression and its probability.
        "face_track": [
            {
                "time": f["time"],
                "emotion": max(f["scores"], key=f["scores"].__getitem__),
                "confidence": max(f["scores"].values()),
            }
            for f in (job.face_track or [])
            if f.get("scores")
        ],
        "utterances": [
            {
                "index": u.index,
                "start": u.start,
                "end": u.end,
                "text": u.text,
                "emotion": u.emotion,
                "emotion_confidence": (u.emotion_scores or {}).get(u.emotion, 0.0),
                "sentiment": u.sentiment,
                # One number per utterance for the sentiment line: -1 (negative) .. +1 (positive).
                "polarity": (u.sentiment_scores or {}).get("positive", 0.0)
                - (u.sentiment_scores or {}).get("negative", 0.0),
            }
            for u in utterances
        ],
    }


def distribution_rows(distribution: dict[str, float], labels: tuple[str, ...]) -> list[dict]:
    """[{label, percent}] in label order, for the text version of a distribution."""
    return [
        {"label": label, "percent": round(100 * float(distribution.get(label, 0.0)), 1)}
        for label in labels
    ]


@dataclass(frozen=True)
class Meter:
    label: str
    used: str
    limit: str
    percent: int  # 0-100, for the bar
    remaining: str


def usage_meters(usage: UsageSummary) -> list[Meter]:
    """The dashboard's "used of allowed" bars."""

    def percent(used: float, limit: float) -> int:
        return 100 if limit <= 0 else min(100, round(100 * used / limit))

    limits, used, left = usage.limits, usage.used, usage.remaining
    return [
        Meter(
            "Analyses",
            f"{used.analyses}",
            f"{limits.analyses}",
            percent(used.analyses, limits.analyses),
            f"{left.analyses} left",
        ),
        Meter(
            "Minutes of video",
            f"{used.video_seconds / 60:.1f}",
            f"{limits.video_seconds / 60:g}",
            percent(used.video_seconds, limits.video_seconds),
            f"{left.video_seconds / 60:.1f} min left",
        ),
    ]
