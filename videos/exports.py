"""Downloadable results of a finished analysis: JSON (as the API shows it) and CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.http import Http404, HttpRequest

from mlcore.labels import EMOTIONS, SENTIMENTS
from videos.models import AnalysisJob, JobStatus
from videos.serializers import AnalysisSerializer

# A cell starting with one of these is run as a formula by spreadsheet programs; transcripts are
# whatever was said in an uploaded video, so they are defused (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

VOICE_COLUMNS = (
    "pitch_median_hz",
    "pitch_range_st",
    "loudness_dbfs",
    "speaking_rate_wps",
    "pause_count",
    "pause_s",
    "relative_intensity",
    "emotion",
    "arousal",
    "sentiment",
)
CSV_COLUMNS = (
    ["index", "start", "end", "speaker", "speaker_name"]
    + ["text", "original_text", "translated", "language"]
    + ["language_probability", "emotion", "emotion_confidence"]
    + ["sentiment", "sentiment_confidence"]
    + [f"emotion_{label}" for label in EMOTIONS]
    + [f"sentiment_{label}" for label in SENTIMENTS]
    + ["face_coverage", "face_emotion"]
    + [f"face_{label}" for label in EMOTIONS]
    + [f"voice_{name}" for name in VOICE_COLUMNS]
    + [f"voice_{label}" for label in EMOTIONS]
    + ["combined_emotion", "combined_emotion_confidence"]
    + ["combined_sentiment", "combined_sentiment_confidence", "combined_channels"]
)


def require_results(job: AnalysisJob) -> None:
    """Only a succeeded job has results to download."""
    if job.status != JobStatus.SUCCEEDED:
        raise Http404("This analysis has no results (yet).")


def results_json(job: AnalysisJob, request: HttpRequest) -> dict:
    """The same document as GET /api/v1/analyses/{id}: one format to learn."""
    require_results(job)
    return AnalysisSerializer(job, context={"request": request, "with_results": True}).data


def speaker_names(job: AnalysisJob) -> dict[int, str]:
    """Speaker id -> the name shown (the owner's, else "Speaker N")."""
    return {s["id"]: s["name"] for s in job.named_speakers()}


def _safe_text(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def results_csv(job: AnalysisJob) -> str:
    """One row per utterance: times, text, labels with their confidence, and every score."""
    require_results(job)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    names = speaker_names(job)
    for u in job.utterances.all():
        emotion_scores = u.emotion_scores or {}
        sentiment_scores = u.sentiment_scores or {}
        face = u.face or {}
        face_scores = face.get("scores") or {}
        voice = u.voice or {}
        combined = u.combined or {}
        writer.writerow(
            [
                u.index,
                f"{u.start:.3f}",
                f"{u.end:.3f}",
                u.speaker or "",
                _safe_text(names.get(u.speaker, "")),
                _safe_text(u.text),
                _safe_text(u.original_text),
                "yes" if u.translated else "",
                u.language,
                _score(u.language_probability),
                u.emotion,
                _score(emotion_scores.get(u.emotion)),
                u.sentiment,
                _score(sentiment_scores.get(u.sentiment)),
                *(_score(emotion_scores.get(label)) for label in EMOTIONS),
                *(_score(sentiment_scores.get(label)) for label in SENTIMENTS),
                _score(face.get("coverage")),
                face.get("emotion") or "",
                *(_score(face_scores.get(label)) for label in EMOTIONS),
                *("" if voice.get(name) is None else voice[name] for name in VOICE_COLUMNS),
                *(_score((voice.get("emotion_scores") or {}).get(label)) for label in EMOTIONS),
                combined.get("emotion", ""),
                _score((combined.get("emotion_scores") or {}).get(combined.get("emotion"))),
                combined.get("sentiment", ""),
                _score((combined.get("sentiment_scores") or {}).get(combined.get("sentiment"))),
                "+".join(combined.get("channels") or []),
            ]
        )
    return out.getvalue()


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def download_name(job: AnalysisJob, extension: str, what: str = "analysis") -> str:
    """`talk.mp4` -> `talk-analysis.csv` (`talk-subtitles.vtt` with what="subtitles")."""
    stem = Path(job.video.original_name).stem or "video"
    return f"{stem}-{what}.{extension}"
