"""What the pages show, computed once in Python: stage wording, the job's outcome, shares of
speaking time, key moments, chart data, usage meters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlcore.fusion import sentiment_from_emotions
from mlcore.labels import CHANNELS, EMOTIONS, SENTIMENTS, headline
from quotas.services import UsageSummary
from videos.models import AnalysisJob, JobStatus, Utterance

# Below this probability a label is shown faded: the model was less sure than a coin flip.
WEAK_CONFIDENCE = 0.5
# The label of speaking time the language model left unlabelled (e.g. speech it cannot read).
NO_LABEL = ""
NO_LABEL_TEXT = "no text label"

# Engine stages (mlcore.inference.STAGES) and job states, in plain words for people.
STAGE_LABELS: dict[str, str] = {
    "queued": "Waiting for a worker",
    "starting": "Starting",
    "probe": "Checking the video",
    "audio": "Extracting the audio",
    "language": "Identifying the spoken language",
    "transcribe": "Transcribing the speech",
    "speakers": "Telling the speakers apart",
    "translate": "Translating speech that is not English",
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


def _top(scores: dict | None, label: str | None) -> float:
    """The probability of `label` in `scores`; 0 when either is missing (no label given)."""
    if not scores or not label:
        return 0.0
    return float(scores.get(label) or 0.0)


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
    combined_confidence: float = 0.0
    combined_channels: str = ""
    voice_text: str = ""
    voice_emotion: str | None = None  # None: no voice reading (model off, or unreadable voice)
    voice_confidence: float = 0.0
    voice_arousal: float | None = None
    speaker_name: str = ""  # "": speakers not told apart, or only one
    combined_inputs: str = ""  # what was fused: "words: disgust 48% · face: fear 60%"

    @property
    def has_text_label(self) -> bool:
        """False when the language model gave this utterance no label (e.g. speech it cannot
        read with translation off): the page says so instead of showing an empty badge."""
        return bool(self.utterance.emotion)

    @property
    def emotion_weak(self) -> bool:
        return self.emotion_confidence < WEAK_CONFIDENCE

    @property
    def sentiment_weak(self) -> bool:
        return self.sentiment_confidence < WEAK_CONFIDENCE

    @property
    def face_weak(self) -> bool:
        return self.face_confidence < WEAK_CONFIDENCE

    @property
    def voice_weak(self) -> bool:
        return self.voice_confidence < WEAK_CONFIDENCE

    @property
    def combined_weak(self) -> bool:
        return self.combined_confidence < WEAK_CONFIDENCE

    @property
    def combined_adds(self) -> bool:
        """True when `combined` fused more than the words (worth showing beside them)."""
        return bool(self.combined_emotion) and self.combined_channels != "words"


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


def utterance_rows(
    utterances: Sequence[Utterance], speaker_names: dict[int, str] | None = None
) -> list[UtteranceRow]:
    """`speaker_names`: id -> name, given only where there are several speakers."""
    rows = []
    for u in utterances:
        face = u.face or {}
        combined = u.combined or {}
        face_emotion = face.get("emotion")
        voice = u.voice or {}
        rows.append(
            UtteranceRow(
                utterance=u,
                emotion_confidence=_top(u.emotion_scores, u.emotion),
                sentiment_confidence=_top(u.sentiment_scores, u.sentiment),
                face_emotion=face_emotion,
                face_confidence=_top(face.get("scores"), face_emotion),
                face_coverage=float(face.get("coverage") or 0.0),
                combined_emotion=combined.get("emotion") or None,
                combined_sentiment=combined.get("sentiment") or None,
                combined_confidence=_top(combined.get("emotion_scores"), combined.get("emotion")),
                combined_channels=" + ".join(
                    CHANNEL_NAMES.get(c, c).lower() for c in combined.get("channels") or []
                ),
                voice_text=_voice_text(u.voice),
                voice_emotion=voice.get("emotion"),
                voice_confidence=_top(voice.get("emotion_scores"), voice.get("emotion")),
                voice_arousal=voice.get("arousal"),
                speaker_name=(speaker_names or {}).get(u.speaker, "") if u.speaker else "",
                combined_inputs=_combined_inputs(u),
            )
        )
    return rows


def _combined_inputs(u: Utterance) -> str:
    """Each channel the fusion read, with its own label and confidence (the combined chip's
    hover text: a reader can follow how words and face gave a third answer)."""
    readings = {
        "text": (u.emotion, u.emotion_scores),
        "face": ((u.face or {}).get("emotion"), (u.face or {}).get("scores")),
        "voice": ((u.voice or {}).get("emotion"), (u.voice or {}).get("emotion_scores")),
    }
    parts = []
    for channel in (u.combined or {}).get("channels") or ():
        label, scores = readings.get(channel, (None, None))
        if label and scores:
            parts.append(f"{CHANNEL_NAMES[channel].lower()}: {label} {_top(scores, label):.0%}")
    return " · ".join(parts)


def speaker_cards(speakers: Sequence[dict]) -> list[dict]:
    """The page's speaker list: name, talk time, and what each channel read most, in words."""
    cards = []
    for s in speakers:
        readings = [
            (CHANNEL_NAMES[channel], s[channel]["emotion"])
            for channel in ("text", "voice", "face", "combined")
            if s.get(channel) and s[channel].get("emotion")
        ]
        cards.append(
            {
                "id": s["id"],
                "name": s["name"],
                "talk_s": s["talk_s"],
                "share": s["share"],
                "utterance_count": s["utterance_count"],
                "readings": readings,
                "arousal": (s.get("voice") or {}).get("mean_arousal"),
                "face_person": s.get("face_person"),
                "face_note": s.get("face_note", ""),
            }
        )
    return cards


# --- Reading of one utterance: the words when they have a label, else what else was seen ---


@dataclass(frozen=True)
class Reading:
    """The best available emotion and sentiment of one utterance, and which channel gave it:
    the words (the validated labels), else the words+face fusion, else the face alone."""

    source: str  # "words" | "combined" | "face"
    emotion: str
    emotion_scores: dict[str, float]
    sentiment: str
    sentiment_scores: dict[str, float]

    @property
    def polarity(self) -> float:
        """-1 (surely negative) .. +1 (surely positive)."""
        s = self.sentiment_scores
        return float(s.get("positive", 0.0)) - float(s.get("negative", 0.0))

    @property
    def emotion_confidence(self) -> float:
        return float(self.emotion_scores.get(self.emotion, 0.0))

    @property
    def sentiment_confidence(self) -> float:
        return float(self.sentiment_scores.get(self.sentiment, 0.0))


def _argmax(scores: dict[str, float]) -> str:
    return max(scores, key=scores.__getitem__)


def reading(u: Utterance) -> Reading | None:
    """None when no channel read anything during the utterance."""
    if u.emotion and u.emotion_scores and u.sentiment and u.sentiment_scores:
        return Reading("words", u.emotion, u.emotion_scores, u.sentiment, u.sentiment_scores)
    combined = u.combined or {}
    if combined.get("emotion_scores") and combined.get("sentiment_scores"):
        emotion, sentiment = combined["emotion_scores"], combined["sentiment_scores"]
        return Reading("combined", _argmax(emotion), emotion, _argmax(sentiment), sentiment)
    face_scores = (u.face or {}).get("scores")
    if face_scores:
        sentiment = sentiment_from_emotions(face_scores)
        return Reading("face", _argmax(face_scores), face_scores, _argmax(sentiment), sentiment)
    return None


# --- Shares of speaking time ---


@dataclass(frozen=True)
class Share:
    """How much of the speaking time carried one label (the label of each utterance, weighted
    by its duration): what a reader expects "emotions across the speech" to mean."""

    label: str  # NO_LABEL: utterances the language model did not label
    seconds: float
    fraction: float

    @property
    def percent(self) -> int:
        return round(100 * self.fraction)

    @property
    def text(self) -> str:
        return self.label or NO_LABEL_TEXT


def speaking_time_shares(
    utterances: Iterable[Utterance], field: str, labels: Sequence[str]
) -> list[Share]:
    """Shares of speaking time per label of `field` ("emotion" or "sentiment" from the words,
    or "combined.emotion" / "combined.sentiment"), in `labels` order, labels with no time left
    out; unlabelled time is a last, separate share. [] without speech."""
    seconds: dict[str, float] = {}
    for u in utterances:
        if "." in field:
            block, key = field.split(".")
            label = (getattr(u, block) or {}).get(key) or NO_LABEL
        else:
            label = getattr(u, field) or NO_LABEL
        label = label if label in labels else NO_LABEL
        # A 0-length utterance still counts a little, as in the engine's own summary.
        seconds[label] = seconds.get(label, 0.0) + max(u.end - u.start, 1e-3)
    total = sum(seconds.values())
    order = [*labels, NO_LABEL]
    return [
        Share(label, seconds[label], seconds[label] / total) for label in order if label in seconds
    ]


def headline_fact(utterances: Sequence[Utterance], field: str) -> dict | None:
    """The summary's headline for `field` ("emotion", "sentiment", "combined.emotion"), judged as
    the engine's summary judges it (`mlcore.labels.headline`): a label only where it holds most
    of the labelled speaking time on confident guesses, else "mixed" or "unclear". Percentages
    named for what they are: share of the speaking time, and how sure the model was."""
    block, _, key = field.rpartition(".")
    seconds: dict[str, float] = {}
    sure: dict[str, float] = {}
    for u in utterances:
        holder = (getattr(u, block) or {}) if block else None
        label = holder.get(key) if holder is not None else getattr(u, key)
        scores = holder.get(f"{key}_scores") if holder is not None else getattr(u, f"{key}_scores")
        if not label or not scores:
            continue
        weight = max(u.end - u.start, 1e-3)
        seconds[label] = seconds.get(label, 0.0) + weight
        sure[label] = sure.get(label, 0.0) + weight * float(scores.get(label, 0.0))
    if not seconds:
        return None
    total = sum(seconds.values())
    shares = {label: t / total for label, t in seconds.items()}
    verdict = headline(shares, {label: sure[label] / seconds[label] for label in seconds})
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    return verdict | {
        "percent_time": round(100 * verdict["share"]),
        "percent_sure": round(100 * verdict["mean_confidence"]),
        "top": [{"label": label, "percent": round(100 * share)} for label, share in ranked[:3]],
    }


def dominant_share(shares: Sequence[Share]) -> Share | None:
    """The labelled share with the most time (ties: label order); None if nothing is labelled."""
    labelled = [s for s in shares if s.label]
    return max(labelled, key=lambda s: s.seconds) if labelled else None


# --- Key moments ---

# Two consecutive readings whose emotion distributions differ by less than this (total variation
# distance, 0..1) are not a shift worth showing, even if their top labels differ.
MIN_SHIFT = 0.25


@dataclass(frozen=True)
class KeyMoment:
    kind: str  # "positive" | "negative" | "shift"
    title: str
    index: int  # the utterance's index (the transcript line to play)
    start: float
    end: float
    quote: str
    emotion: str
    sentiment: str
    confidence: float  # of the label the moment is about (sentiment; emotion for a shift)
    source: str  # which channel the reading came from: words | combined | face
    before: str = ""  # the emotion of the utterance before, when this one changes it
    shift: float = 0.0  # how much the emotion changed from the utterance before (0..1)
    strength: float = 0.0  # how positive/negative (|polarity|), or the shift for a shift

    @property
    def weak(self) -> bool:
        return self.confidence < WEAK_CONFIDENCE


def _distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Total variation distance between two distributions over the same labels."""
    return 0.5 * sum(abs(float(a.get(k, 0.0)) - float(b.get(k, 0.0))) for k in set(a) | set(b))


def key_moments(utterances: Sequence[Utterance], max_shifts: int = 2) -> list[KeyMoment]:
    """The moments a reader wants first: the most positive and the most negative utterance
    (only if some utterance is labelled so: a neutral talk has none) and the biggest changes of
    emotion from one utterance to the next (a change onto the most positive or negative
    utterance is told on that moment, not twice). Readings come from the words when they gave
    a label, else from the fusion or the face; utterances nothing read are skipped."""
    read = [(u, r) for u in utterances if (r := reading(u)) is not None]
    moments: list[KeyMoment] = []

    def moment(kind: str, title: str, u: Utterance, r: Reading, **extra) -> KeyMoment:
        return KeyMoment(
            kind=kind,
            title=title,
            index=u.index,
            start=u.start,
            end=u.end,
            quote=u.text,
            emotion=r.emotion,
            sentiment=r.sentiment,
            source=r.source,
            **extra,
        )

    # Emotion changes from one read utterance to the next, biggest first.
    shifts: dict[int, tuple[float, str]] = {}  # utterance index -> (size, emotion before)
    for (_, before), (u, after) in zip(read, read[1:], strict=False):
        size = _distance(before.emotion_scores, after.emotion_scores)
        # A weak guess on either side is no shift (the page fades such labels).
        sure = min(before.emotion_confidence, after.emotion_confidence) >= WEAK_CONFIDENCE
        if before.emotion != after.emotion and size >= MIN_SHIFT and sure:
            shifts[u.index] = (size, before.emotion)

    def shift_of(u: Utterance) -> dict:
        size, before = shifts.pop(u.index, (0.0, ""))  # shown on this card, not on its own
        return {"before": before, "shift": size}

    for kind, title, most in (
        ("positive", "Most positive moment", max),
        ("negative", "Most negative moment", min),
    ):
        candidates = [
            (u, r)
            for u, r in read
            if r.sentiment == kind and r.sentiment_confidence >= WEAK_CONFIDENCE
        ]
        if candidates:
            u, r = most(candidates, key=lambda pair: pair[1].polarity)
            moments.append(
                moment(
                    kind,
                    title,
                    u,
                    r,
                    confidence=r.sentiment_confidence,
                    strength=abs(r.polarity),
                    **shift_of(u),
                )
            )
    by_index = {u.index: (u, r) for u, r in read}
    # The same words read the same way (a repeated line) are one moment: the biggest change.
    seen = {(m.quote.strip().lower(), m.emotion) for m in moments}
    ranked = []
    for index, change in sorted(shifts.items(), key=lambda item: -item[1][0]):
        u, r = by_index[index]
        if (u.text.strip().lower(), r.emotion) not in seen:
            seen.add((u.text.strip().lower(), r.emotion))
            ranked.append((index, change))
    biggest = ranked[:max_shifts]
    for index, (size, before) in sorted(biggest):  # in time order
        u, r = by_index[index]
        moments.append(
            moment(
                "shift",
                "Emotion shift",
                u,
                r,
                confidence=r.emotion_confidence,
                before=before,
                shift=size,
                strength=size,
            )
        )
    return moments


# --- The job's outcome, for the status badge and the top of the page ---


@dataclass(frozen=True)
class Outcome:
    """What the job's result is, in words: a success that found no speech or a damaged file must
    not look like a plain green success."""

    kind: str  # running | analysed | unlabelled | no_speech | damaged | failed | canceled
    badge: str  # the status badge's text
    badge_class: str  # its CSS class (status-...)
    downloads: bool  # whether the per-utterance downloads hold anything


# Failures that mean the file itself is broken (mlcore.media error codes), told apart from ours.
DAMAGED_CODES = frozenset(
    {"truncated", "decode_failed", "no_media_data", "duration_mismatch", "not_media"}
)


def job_outcome(job: AnalysisJob, utterances: Sequence[Utterance]) -> Outcome:
    if not job.is_finished:
        return Outcome("running", job.get_status_display(), f"status-{job.status}", False)
    if job.status == JobStatus.CANCELED:
        return Outcome("canceled", "Canceled", "status-canceled", False)
    if job.status == JobStatus.FAILED:
        if job.error_code in DAMAGED_CODES:
            return Outcome("damaged", "Damaged file", "status-failed", False)
        return Outcome("failed", "Failed", "status-failed", False)
    if not utterances:
        return Outcome("no_speech", "No speech found", "status-empty", False)
    if not any(u.emotion for u in utterances):
        return Outcome("unlabelled", "No text labels", "status-empty", True)
    return Outcome("analysed", "Succeeded", "status-succeeded", True)


CHANNEL_NAMES = {
    "text": "Words",
    "face": "Face",
    "voice": "Voice",
    "combined": "Combined",
    "speakers": "Speakers",
}


def _language_span(span: dict) -> str:
    """ "German 0:40-0:47 (98%)": one identified stretch of speech."""
    from mlcore.language import language_name  # noqa: PLC0415 - transformers is heavy
    from videos.templatetags.video_ui import clock  # noqa: PLC0415

    return (
        f"{language_name(span['language'])} {clock(span['start'])}–{clock(span['end'])} "
        f"({span['probability']:.0%})"
    )


def _context_words(context: dict) -> str:
    """ "each utterance read with 1 before and 1 after it": what the text model saw."""
    before, after = context.get("previous", 0), context.get("following", 0)
    if not before and not after:
        return "each utterance read alone"
    around = [f"{n} {side}" for n, side in ((before, "before"), (after, "after")) if n]
    return f"each utterance read with {' and '.join(around)} it"


def channel_rows(channels: dict) -> list[dict]:
    """Which channels produced this result, with their model and any note, for the page."""
    rows = []
    for name in (*CHANNELS, "speakers"):
        if name not in (channels or {}):
            continue
        info = channels[name]
        detail = info.get("model") or info.get("method") or info.get("rule") or ""
        if name == "voice" and info.get("emotion_model"):
            detail = f"{info['emotion_model']} (emotion) · {info.get('method', '')} (measures)"
        if name == "face" and info.get("frames"):
            detail += f" · a face in {info['frames_with_face']} of {info['frames']} sampled frames"
            if (info.get("people") or 0) > 1:
                detail += f" · {info['people']} face tracks"
        if name == "speakers" and info.get("used"):
            detail += f" · {info['count']} speaker{'s' if info['count'] != 1 else ''}"
        if name == "text" and info.get("context"):
            detail += " · " + _context_words(info["context"])
        if name == "text" and info.get("transcription"):
            detail += f" · transcript: {info['transcription']}"
        if name == "text" and info.get("languages"):
            detail += " · spoken: " + ", ".join(_language_span(s) for s in info["languages"])
        rows.append(
            {
                "name": CHANNEL_NAMES.get(name, name),
                "used": bool(info.get("used")),
                "detail": detail,
                "note": info.get("note", ""),
            }
        )
    return rows


def face_points(face_track: Sequence[dict]) -> list[dict]:
    """One point per face read in each sampled frame (every face where a frame has several,
    else the main one), with its face track ("person") so the page draws a row per face."""
    points = []
    for frame in face_track:
        for sighting in frame.get("people") or [frame]:
            scores = sighting.get("scores")
            if scores:
                points.append(
                    {
                        "time": frame["time"],
                        "person": sighting.get("person") or 1,
                        "emotion": max(scores, key=scores.__getitem__),
                        "confidence": max(scores.values()),
                    }
                )
    return points


def chart_data(job: AnalysisJob, utterances: Sequence[Utterance]) -> dict:
    """Everything the result charts draw (rendered into the page with json_script)."""
    names = {s["id"]: s["name"] for s in job.named_speakers()}
    return {
        "duration": job.video.duration,
        "emotions": list(EMOTIONS),
        "sentiments": list(SENTIMENTS),
        "weak_below": WEAK_CONFIDENCE,
        "no_label": NO_LABEL_TEXT,
        # Shares of speaking time per emotion from the words (the summary chart).
        "emotion_shares": [
            {"label": s.text, "color": s.label or "none", "percent": round(100 * s.fraction, 1)}
            for s in speaking_time_shares(utterances, "emotion", EMOTIONS)
        ],
        # Every face read in a sampled frame: time, face track, top expression, its probability.
        "face_track": face_points(job.face_track or []),
        "utterances": [_chart_utterance(u, names) for u in utterances],
        # Rows of the "who speaks when" chart, in speaker order (only with several speakers).
        "speakers": list(names.values()) if len(names) > 1 else [],
    }


def _chart_utterance(u: Utterance, names: dict[int, str] | None = None) -> dict:
    names = names or {}
    combined = u.combined or {}
    sentiment_scores = u.sentiment_scores or {}
    face = u.face or {}
    voice = u.voice or {}
    return {
        "index": u.index,
        "start": u.start,
        "end": u.end,
        "text": u.text,
        "emotion": u.emotion,  # "": the language model gave no label
        "emotion_confidence": _top(u.emotion_scores, u.emotion),
        "sentiment": u.sentiment,
        "sentiment_confidence": _top(sentiment_scores, u.sentiment),
        # One number per utterance for the sentiment line: -1 (negative) .. +1 (positive);
        # None without a label from the words (a gap in the line).
        "polarity": (
            float(sentiment_scores.get("positive", 0.0))
            - float(sentiment_scores.get("negative", 0.0))
            if u.sentiment and sentiment_scores
            else None
        ),
        "face_emotion": face.get("emotion"),
        "face_confidence": _top(face.get("scores"), face.get("emotion")),
        "voice_emotion": voice.get("emotion"),
        "voice_confidence": _top(voice.get("emotion_scores"), voice.get("emotion")),
        "arousal": voice.get("arousal"),
        "intensity": voice.get("relative_intensity"),
        "pitch_hz": voice.get("pitch_median_hz"),
        "rate_wps": voice.get("speaking_rate_wps"),
        "speaker": names.get(u.speaker, "") if u.speaker else "",
        "combined_emotion": combined.get("emotion"),
        "combined_confidence": _top(combined.get("emotion_scores"), combined.get("emotion")),
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


# Seconds of analysis per second of video when no finished job tells better (docs/PERFORMANCE.md:
# a real-time factor of about 0.07 on 2 CPU cores, rounded up for slower machines).
DEFAULT_ANALYSIS_RATE = 0.15


def analysis_rate(recent: int = 20) -> float:
    """Seconds of analysis per second of video, the median over the last finished jobs (every
    user's: it measures this deployment's workers), for the upload page's estimate."""
    rates = sorted(
        float(timings["total"]) / duration
        for timings, duration in AnalysisJob.objects.filter(
            status=JobStatus.SUCCEEDED, video__duration__gt=1
        )
        .order_by("-finished_at")
        .values_list("stage_timings", "video__duration")[:recent]
        if (timings or {}).get("total")
    )
    return rates[len(rates) // 2] if rates else DEFAULT_ANALYSIS_RATE


def queue_status(job: AnalysisJob) -> dict | None:
    """Where a queued job stands: analyses queued before it (every user's: they share the
    workers), analyses running now, and about how long until it is done, from the measured
    recent analysis rate (`analysis_rate`) over the video time ahead of it and its own, shared
    by as many workers as are busy now. None once it runs."""
    if job.status != JobStatus.QUEUED:
        return None
    ahead = list(
        AnalysisJob.objects.filter(status=JobStatus.QUEUED, queued_at__lt=job.queued_at)
        .exclude(pk=job.pk)
        .values_list("video__duration", flat=True)
    )
    running = list(
        AnalysisJob.objects.filter(status=JobStatus.RUNNING).values_list(
            "video__duration", "progress"
        )
    )
    seconds = sum(ahead) + sum(d * (1 - p / 100) for d, p in running) + job.video.duration
    return {
        "position": len(ahead) + 1,
        "running": len(running),
        "estimate_s": round(seconds * analysis_rate() / max(1, len(running))),
    }
