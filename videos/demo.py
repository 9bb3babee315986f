"""A finished analysis with realistic results, without running the models: the job page's
browser tests and its screenshots (`python -m videos.screenshots`) show it.

The speech is real (espeak-ng over real footage of a face), and each utterance lies where its
sentence is spoken, so playing a line plays its words. The labels are set here: five neutral
utterances and one of disgust, the case where averaged probabilities used to read as "anger 12%,
disgust 17%, sadness 18%" on the page."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from django.core.files import File

from mlcore import testmedia
from mlcore.fusion import combine
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.voice_emotion import MODEL_NOTE, reading
from videos.models import AnalysisJob, JobStatus, Utterance, Video

# (sentence, emotion, emotion probability, sentiment, sentiment probability, face expression)
SCRIPT: list[tuple[str, str, float, str, float, str]] = [
    ("Good morning everyone, thanks for joining the weekly review.",
     "neutral", 0.81, "neutral", 0.74, "neutral"),
    ("We shipped the new upload page on Tuesday, and the early numbers look great.",
     "joy", 0.77, "positive", 0.86, "joy"),
    ("The support queue is about the same size as last week.",
     "neutral", 0.68, "neutral", 0.71, "neutral"),
    ("Honestly, the way the old billing code was written is revolting, I could not believe it.",
     "disgust", 0.58, "negative", 0.83, "disgust"),
    ("We will rewrite that part next sprint.", "neutral", 0.46, "neutral", 0.52, "neutral"),
    ("Any questions before we close?", "neutral", 0.72, "neutral", 0.66, "surprise"),
]  # fmt: skip


def _scores(labels: tuple[str, ...], top: str, p: float) -> dict[str, float]:
    """`top` at probability p; the rest shared unevenly (as real model outputs are)."""
    others = [label for label in labels if label != top]
    weights = [len(labels) - i for i in range(len(others))]
    rest = 1.0 - p
    return {
        top: p,
        **{label: rest * w / sum(weights) for label, w in zip(others, weights, strict=True)},
    }


def make_demo_clip(path: Path) -> tuple[Path, list[tuple[float, float]]]:
    """The clip and each sentence's (start, end) in it."""
    sentences = [line[0] for line in SCRIPT]
    with tempfile.TemporaryDirectory() as tmp:
        windows = testmedia.make_speech_track(sentences, Path(tmp) / "speech.wav")
    clip = testmedia.make_talking_clip(
        path, sentences, picture=testmedia.real_face_video(), size=(352, 288)
    )
    return clip, windows


def make_demo_job(owner, clip: Path, windows: list[tuple[float, float]]) -> AnalysisJob:
    """A succeeded job on `clip` with words, face, voice and combined results."""
    duration = windows[-1][1] + 0.6
    data = clip.read_bytes()
    video = Video(
        owner=owner,
        original_name="weekly review.mp4",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        duration=duration,
        width=352,
        height=288,
        has_audio=True,
    )
    with clip.open("rb") as handle:
        video.file.save("source", File(handle), save=False)
    video.save()
    job = AnalysisJob.objects.create(
        video=video,
        owner=owner,
        status=JobStatus.SUCCEEDED,
        stage="done",
        progress=100,
        model_version="meld-text-minilm-v2",
        language="en",
        language_probability=0.98,
    )
    utterances, track = [], []
    weighted_emotions = dict.fromkeys(EMOTIONS, 0.0)
    weighted_sentiments = dict.fromkeys(SENTIMENTS, 0.0)
    for index, ((text, emotion, p_e, sentiment, p_s, face), (start, end)) in enumerate(
        zip(SCRIPT, windows, strict=True)
    ):
        emotion_scores = _scores(EMOTIONS, emotion, p_e)
        sentiment_scores = _scores(SENTIMENTS, sentiment, p_s)
        face_scores = _scores(EMOTIONS, face, 0.62 if face != "neutral" else 0.7)
        face_block = {
            "frames": 4,
            "coverage": 1.0,
            "faces_seen": 1,
            "emotion": face,
            "scores": face_scores,
        }
        for k in range(4):
            track.append(
                {
                    "time": round(start + k * (end - start) / 4, 2),
                    "faces": 1,
                    "box": [0.3, 0.2, 0.7, 0.8],
                    "scores": _scores(EMOTIONS, face, 0.45 + 0.1 * k),
                }
            )
        voice_emotion = ("neutral", "anger", "neutral", "joy", "sadness", "neutral")[index % 6]
        voice_reading = reading(
            np.array([_scores(EMOTIONS, voice_emotion, 0.6)[e] for e in EMOTIONS]),
            [0.3, 0.85, 0.35, 0.8, 0.15, 0.4][index % 6],
        ) | {"emotion_note": ""}
        utterances.append(
            Utterance(
                job=job,
                index=index,
                start=round(start, 2),
                end=round(end, 2),
                text=text,
                language="en",
                emotion=emotion,
                emotion_scores=emotion_scores,
                sentiment=sentiment,
                sentiment_scores=sentiment_scores,
                face=face_block,
                voice={
                    "pitch_median_hz": 118.0 + 9 * index,
                    "pitch_range_st": 4.0 + index % 3,
                    "voiced_fraction": 0.7,
                    "loudness_dbfs": -21.0 + index,
                    "speaking_rate_wps": 2.4 + 0.2 * (index % 3),
                    "pause_count": index % 2,
                    "pause_s": 0.3 * (index % 2),
                    "relative_intensity": [-0.2, 0.45, -0.1, 0.8, -0.35, 0.05][index % 6],
                }
                | voice_reading,
                combined=combine(emotion_scores, sentiment_scores, face_block, voice=voice_reading),
            )
        )
        for label in EMOTIONS:
            weighted_emotions[label] += (end - start) * emotion_scores[label]
        for label in SENTIMENTS:
            weighted_sentiments[label] += (end - start) * sentiment_scores[label]
    Utterance.objects.bulk_create(utterances)
    speech = sum(end - start for start, end in windows)
    emotions = {k: v / speech for k, v in weighted_emotions.items()}
    sentiments = {k: v / speech for k, v in weighted_sentiments.items()}
    job.summary = {
        "speech_detected": True,
        "message": f"{len(utterances)} utterances analysed.",
        "utterance_count": len(utterances),
        "speech_duration": speech,
        "dominant_emotion": max(emotions, key=emotions.__getitem__),
        "dominant_sentiment": max(sentiments, key=sentiments.__getitem__),
        "emotion_distribution": emotions,
        "sentiment_distribution": sentiments,
        "combined": None,
        "face": {
            "frames": len(track),
            "frames_with_face": len(track),
            "coverage": 1.0,
            "max_faces": 1,
            "dominant_emotion": "neutral",
            "mean_emotion_scores": _scores(EMOTIONS, "neutral", 0.5),
        },
        "voice": None,
    }
    job.face_track = track
    job.channels = {
        "text": {"used": True, "model": "meld-text-minilm-v2", "note": ""},
        "face": {
            "used": True,
            "model": "mobilenetv2-rafdb-fer + blazeface",
            "frames": len(track),
            "frames_with_face": len(track),
            "note": "",
        },
        "voice": {
            "used": True,
            "method": "pyin + rms",
            "emotion_model": "voice-emotion-whisper-tiny.en-ravdess",
            "note": MODEL_NOTE,
        },
        "combined": {"used": True, "rule": "log-linear pooling, face weight 0.5", "note": ""},
    }
    job.stage_timings = {"total": round(0.07 * duration, 3)}
    job.save()
    return job
