"""Which language is spoken where, and English translations of what is not English.

The language model reads English only (it was trained on MELD's English subtitles). A multilingual
Whisper (base by default, `mlcore.weights.WHISPER_BASE`) identifies the spoken language of each
stretch of speech: Silero VAD (shipped with faster-whisper) finds the speech, consecutive speech
is packed into windows of up to 30 s (what Whisper's encoder reads at once), and a window gets
Whisper's language probabilities. An utterance takes the language of the narrowest identified
stretch that covers most of it (`language_at`); one that stretches of different languages
overlap is identified on its own (`disputed_utterances`).
English videos pay for one window only: the first is always identified, later speech only where
the English model's transcript of it reads unlike English (`doubtful_stretches`), so a change of
language is still found.
Non-English utterances are translated to English by the same model (`task="translate"`), one
utterance at a time, so each translation lines up exactly with its original words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mlcore.transcribe import Segment

ENGLISH = "en"
SAMPLE_RATE = 16_000
WINDOW_S = 30.0  # Whisper's encoder reads 30 s at a time: one language decision per window
# Long videos: at most this many windows, spread evenly over the speech (bounds the cost).
MAX_WINDOWS = 40
# Below this, the language is reported as uncertain and the language model gives no label:
# music, noise and very short speech give low, spread-out language probabilities.
MIN_LANGUAGE_PROBABILITY = 0.5
# Whisper tiny.en's mean word probability over a segment: English speech measured 0.79-0.97
# (LibriVox, espeak-ng), six other languages forced through it 0.12-0.48 (espeak-ng,
# mlcore.bench_language). A segment below this may not be English: its stretch is identified.
ENGLISH_WORD_PROBABILITY_FLOOR = 0.6
STRETCH_GAP_S = 2.0  # doubtful segments closer than this form one stretch

Window = tuple[float, float, np.ndarray]  # start s, end s, the speech samples


@dataclass(frozen=True)
class LanguageSpan:
    """A stretch of speech (seconds from the start of the audio) and its detected language."""

    start: float
    end: float
    language: str
    probability: float
    # English below the probability threshold, but the English model wrote the stretch with
    # confident words (`confirm_english`): short English speech often identifies at 0.3-0.5.
    confirmed_by_transcript: bool = False

    @property
    def certain(self) -> bool:
        return self.probability >= MIN_LANGUAGE_PROBABILITY or self.confirmed_by_transcript

    def to_dict(self) -> dict:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "language": self.language,
            "probability": round(self.probability, 4),
            "confirmed_by_transcript": self.confirmed_by_transcript,
        }


def speech_windows(audio: np.ndarray) -> list[Window]:
    """(start s, end s, speech samples) per window of up to `WINDOW_S` of detected speech."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    limit = int(WINDOW_S * SAMPLE_RATE)
    # VAD joins speech across pauses under 2 s: cut its long chunks to window size first.
    chunks = [
        {"start": lo, "end": min(lo + limit, chunk["end"])}
        for chunk in get_speech_timestamps(audio, VadOptions())
        for lo in range(chunk["start"], chunk["end"], limit)
    ]
    windows: list[list[dict]] = []
    length = 0
    for chunk in chunks:
        size = chunk["end"] - chunk["start"]
        if not windows or length + size > limit:
            windows.append([])
            length = 0
        windows[-1].append(chunk)
        length += size
    if len(windows) > MAX_WINDOWS:
        keep = np.linspace(0, len(windows) - 1, MAX_WINDOWS).round().astype(int)
        windows = [windows[i] for i in sorted(set(keep.tolist()))]
    return [
        (
            window[0]["start"] / SAMPLE_RATE,
            window[-1]["end"] / SAMPLE_RATE,
            np.concatenate([audio[c["start"] : c["end"]] for c in window])[:limit],
        )
        for window in windows
    ]


def identify_windows(windows: list[Window], model) -> list[LanguageSpan]:
    """The language of each window; `model` is a multilingual faster-whisper model."""
    spans = []
    for start, end, speech in windows:
        language, probability, _ = model.detect_language(speech)
        spans.append(LanguageSpan(start, end, language, float(probability)))
    return spans


def identify_languages(audio: np.ndarray, model) -> list[LanguageSpan]:
    """The language of every window of speech in 16 kHz mono `audio`; [] when there is none."""
    return identify_windows(speech_windows(audio.astype(np.float32, copy=False)), model)


def _word_probability(segment: Segment) -> float | None:
    scores = [w.probability for w in segment.words if w.probability is not None]
    return sum(scores) / len(scores) if scores else None


def _window(audio: np.ndarray, start: float, end: float) -> Window:
    return float(start), float(end), audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]


def doubtful_stretches(
    audio: np.ndarray, windows: list[Window], segments: list[Segment]
) -> list[Window]:
    """Where an English-only Whisper's transcript (`segments`) reads unlike English, as windows
    to identify: stretches of segments whose mean word probability is below
    `ENGLISH_WORD_PROBABILITY_FLOOR`, and whole `windows` of speech it wrote no words for."""
    doubtful = [
        s
        for s in segments
        if (p := _word_probability(s)) is not None and p < ENGLISH_WORD_PROBABILITY_FLOOR
    ]
    stretches: list[list[float]] = []
    for segment in sorted(doubtful, key=lambda s: s.start):
        if stretches and segment.start - stretches[-1][1] <= STRETCH_GAP_S:
            stretches[-1][1] = max(stretches[-1][1], segment.end)
        else:
            stretches.append([segment.start, segment.end])
    out: list[Window] = []
    for start, end in stretches:
        for lo in np.arange(start, end, WINDOW_S):
            hi = min(lo + WINDOW_S, end)
            out.append(_window(audio, lo, hi))
    silent = [w for w in windows if not any(s.end > w[0] and s.start < w[1] for s in segments)]
    return sorted(out + silent, key=lambda w: w[0])


def confirm_english(spans: list[LanguageSpan], segments: list[Segment]) -> list[LanguageSpan]:
    """Uncertain English spans whose English transcript (`segments`, from an English-only
    Whisper) has words, none of them in a doubtful stretch, marked as confirmed. Other languages
    forced through that model come out with low word probabilities, so they stay uncertain."""
    doubtful = [
        s
        for s in segments
        if (p := _word_probability(s)) is None or p < ENGLISH_WORD_PROBABILITY_FLOOR
    ]

    def confirmed(span: LanguageSpan) -> bool:
        inside = [s for s in segments if s.end > span.start and s.start < span.end]
        unsure = [s for s in doubtful if s.end > span.start and s.start < span.end]
        return span.language == ENGLISH and not span.certain and bool(inside) and not unsure

    return [replace(s, confirmed_by_transcript=True) if confirmed(s) else s for s in spans]


def language_at(spans: list[LanguageSpan], start: float, end: float) -> LanguageSpan | None:
    """The language of [start, end]: of the spans covering at least half of it, the narrowest (a
    stretch identified on its own is surer than the 30 s window around it); else the span
    overlapping it most, or the nearest."""
    if not spans:
        return None
    length = max(end - start, 1e-3)

    def shared(span: LanguageSpan) -> float:
        return min(end, span.end) - max(start, span.start)

    covering = [span for span in spans if shared(span) >= 0.5 * length]
    if covering:
        return min(covering, key=lambda span: span.end - span.start)

    def overlap(span: LanguageSpan) -> tuple[float, float]:
        return (shared(span), -max(span.start - end, start - span.end, 0.0))

    return max(spans, key=overlap)


def disputed_utterances(
    audio: np.ndarray, utterances: list[Segment], spans: list[LanguageSpan]
) -> list[Window]:
    """The utterances that spans of different languages overlap, as windows to identify on their
    own. A doubtful stretch is where the English model's words were unsure, which may be a
    second of an utterance whose other seconds it wrote with confident (wrong) words; the
    utterance would then take its 30 s window's language (`language_at`) and be read untranslated.
    Identified alone, it becomes the narrowest span covering itself, so its own language wins."""
    out: list[Window] = []
    for utterance in utterances:
        heard = {s.language for s in spans if s.end > utterance.start and s.start < utterance.end}
        if len(heard) > 1:
            out.append(
                _window(audio, utterance.start, min(utterance.end, utterance.start + WINDOW_S))
            )
    return out


def main_language(spans: list[LanguageSpan]) -> tuple[str, float] | None:
    """The language spoken longest, with its duration-weighted mean probability."""
    if not spans:
        return None
    seconds: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for span in spans:
        length = max(span.end - span.start, 1e-3)
        seconds[span.language] = seconds.get(span.language, 0.0) + length
        weighted[span.language] = weighted.get(span.language, 0.0) + length * span.probability
    language = max(seconds, key=seconds.__getitem__)
    return language, weighted[language] / seconds[language]


def translate(audio: np.ndarray, utterance: Segment, language: str, model) -> str:
    """English text for `utterance`'s stretch of `audio`, spoken in `language`."""
    lo = max(0, int(utterance.start * SAMPLE_RATE))
    hi = int(utterance.end * SAMPLE_RATE)
    segments, _info = model.transcribe(
        audio[lo:hi].astype(np.float32, copy=False),
        task="translate",
        language=language,
        beam_size=1,
        vad_filter=False,  # the utterance is speech already
        without_timestamps=True,
        condition_on_previous_text=False,
    )
    return " ".join(s.text.strip() for s in segments).strip()


@dataclass(frozen=True)
class Reading:
    """What the language model reads of one utterance, and in which language it was spoken."""

    text: str  # the transcript, or its English translation (`translated`)
    language: str = ""  # "" when language identification is off
    probability: float | None = None
    original_text: str = ""  # the words as spoken, when `text` is a translation
    translated: bool = False
    readable: bool = True  # False: the language model gives no label (see `unread_reason`)
    unread_reason: str = ""  # "uncertain" or "translation_off"


def read_utterances(
    audio: np.ndarray,
    utterances: list[Segment],
    spans: list[LanguageSpan],
    model,
    *,
    translate_speech: bool = True,
    progress=None,
) -> list[Reading]:
    """One `Reading` per utterance: English is read as transcribed; other languages through
    `model`'s English translation (when `translate_speech`); speech whose language is uncertain
    is not read at all (its transcript may be gibberish). No `spans` (identification off): every
    utterance is read as English."""
    out = []
    for i, utterance in enumerate(utterances):
        span = language_at(spans, utterance.start, utterance.end)
        if span is None:
            out.append(Reading(utterance.text))
            continue
        heard = Reading(utterance.text, span.language, span.probability)
        if not span.certain:
            out.append(replace(heard, readable=False, unread_reason="uncertain"))
        elif span.language == ENGLISH:
            out.append(heard)
        elif not translate_speech:
            out.append(replace(heard, readable=False, unread_reason="translation_off"))
        else:
            english = translate(audio, utterance, span.language, model)
            out.append(
                replace(
                    heard,
                    text=english,
                    original_text=utterance.text,
                    translated=True,
                    readable=bool(english),
                    unread_reason="" if english else "uncertain",
                )
            )
        if progress is not None:
            progress((i + 1) / len(utterances))
    return out


def language_name(code: str) -> str:
    """'de' -> 'German', from Whisper's own language table (as transformers ships it)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    name = LANGUAGES.get(code)
    return name.title() if name else code
