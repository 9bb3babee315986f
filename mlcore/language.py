"""Which language is spoken where, and English translations of what is not English.

The language model reads English only (it was trained on MELD's English subtitles). A multilingual
Whisper (base by default, `mlcore.weights.WHISPER_BASE`) identifies the spoken language of each
stretch of speech: Silero VAD (shipped with faster-whisper) finds the speech, consecutive speech
is packed into windows of up to 30 s (what Whisper's encoder reads at once), and a window gets
Whisper's language probabilities. An utterance takes the language of the narrowest identified
stretch that covers most of it (`language_at`); one that stretches of different languages
overlap is identified on its own (`disputed_utterances`).
The first window of speech is always identified. Unless it is another language (with
certainty), the English model transcribes everything, and later speech is identified only where
its transcript reads unlike English (`doubtful_stretches`: unsure words, or speech it wrote no
words for); a stretch identified as another language is transcribed again by the multilingual
model, that stretch only.
Non-English utterances are translated to English by the same model (`task="translate"`), in
stretches: consecutive utterances in one language, up to 30 s, in one decode (one encoder pass
instead of one per utterance). The translation's timed segments are handed back to the
utterances they overlap (`assign_text`); a segment that spans several is shared out by clause,
then by word times. Each decode is greedy and capped (`mlcore.transcribe.capped_decoding`); a
stretch whose translation loops is translated again an utterance at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from mlcore.transcribe import Segment, capped_decoding

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
# A translated segment that overlaps more than one utterance by more than this is shared out
# among them; less is the jitter of Whisper's timestamps at a segment's edges.
SHARED_S = 0.25

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


Piece = tuple[float, float, str]  # start s, end s, text
CLAUSE_ENDS = (",", ";", ":", ".", "!", "?", "…")
# faster-whisper's test for a repetition loop: the text's gzip compression ratio above this.
REPETITIVE = 2.4
# An English translation is shorter in tokens than many languages' own words: 3-5 tokens a
# second for espeak-ng speech (timestamps included), so 8 leaves room for fast speech and caps a
# repetition loop sooner than `mlcore.transcribe.TOKENS_PER_S`.
TRANSLATION_TOKENS_PER_S = 8.0


def _overlap(start: float, end: float, utterance: Segment) -> float:
    return min(end, utterance.end) - max(start, utterance.start)


def _shared(piece: Piece, utterances: Sequence[Segment]) -> bool:
    return sum(1 for u in utterances if _overlap(piece[0], piece[1], u) > SHARED_S) > 1


def _pieces(segment, offset: float, utterances: Sequence[Segment]) -> list[Piece]:
    """A translated faster-whisper segment as text to hand out: whole where it lies within one
    utterance; else its clauses (a clause to the utterance it overlaps most: the translation's
    word times are rough, its punctuation ends where sentences did), or its words if it is one
    clause."""

    def piece(words) -> Piece:
        return offset + words[0].start, offset + words[-1].end, "".join(w.word for w in words)

    whole = (offset + segment.start, offset + segment.end, segment.text)
    if not segment.words or not _shared(whole, utterances):
        return [whole]
    clauses: list[list] = [[]]
    for word in segment.words:
        clauses[-1].append(word)
        if word.word.strip().endswith(CLAUSE_ENDS):
            clauses.append([])
    clauses = [c for c in clauses if c]
    return [piece(c) for c in clauses] if len(clauses) > 1 else [piece([w]) for w in clauses[0]]


def assign_text(pieces: Sequence[Piece], utterances: Sequence[Segment]) -> list[str]:
    """Each piece of text to the utterance it overlaps most (or the nearest), joined in order."""
    texts: list[list[str]] = [[] for _ in utterances]
    for start, end, text in pieces:
        best = max(range(len(utterances)), key=lambda i: _overlap(start, end, utterances[i]))
        texts[best].append(text.strip())
    return [" ".join(t for t in parts if t) for parts in texts]


def translate_stretch(
    audio: np.ndarray, utterances: Sequence[Segment], language: str, model
) -> list[str]:
    """English text for each of `utterances` (consecutive, spoken in `language`, within one 30 s
    window of `audio`) from one translation of their whole stretch: Whisper writes timed
    segments, handed to the utterances they overlap (`_pieces`, `assign_text`). An utterance that
    no text lines up with gets ""."""
    first = utterances[0].start
    lo = max(0, int(first * SAMPLE_RATE))
    hi = int(utterances[-1].end * SAMPLE_RATE)
    segments, _info = model.transcribe(
        audio[lo:hi].astype(np.float32, copy=False),
        task="translate",
        language=language,
        beam_size=1,
        vad_filter=False,  # the stretch is speech already
        word_timestamps=True,  # to share out a segment that spans two utterances
        condition_on_previous_text=False,
        **capped_decoding((hi - lo) / SAMPLE_RATE, TRANSLATION_TOKENS_PER_S),
    )
    segments = list(segments)
    if len(utterances) > 1 and any(s.compression_ratio > REPETITIVE for s in segments):
        # A repetition loop fills the whole stretch with one phrase (seen on 16 s of German and
        # Spanish identified as Latin); short decodes rarely loop: one utterance at a time.
        return [text for u in utterances for text in translate_stretch(audio, [u], language, model)]
    return assign_text([p for s in segments for p in _pieces(s, first, utterances)], utterances)


def translation_stretches(
    utterances: Sequence[Segment], languages: Sequence[str | None]
) -> list[list[int]]:
    """Indexes of consecutive utterances to translate from one language (`languages[i]`; None: not
    translated), each run within one `WINDOW_S` window: what one translation decode reads."""
    stretches: list[list[int]] = []
    for i, language in enumerate(languages):
        if language is None:
            continue
        run = stretches[-1] if stretches else []
        if (
            run
            and run[-1] == i - 1
            and languages[run[0]] == language
            and utterances[i].end - utterances[run[0]].start <= WINDOW_S
        ):
            run.append(i)
        else:
            stretches.append([i])
    return stretches


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
    progress: Callable[[float], None] | None = None,
) -> list[Reading]:
    """One `Reading` per utterance: English is read as transcribed; other languages through
    `model`'s English translation (when `translate_speech`), a stretch at a time
    (`translation_stretches`); speech whose language is uncertain is not read at all (its
    transcript may be gibberish). No `spans` (identification off): every utterance is read as
    English."""
    at = [language_at(spans, u.start, u.end) for u in utterances]
    to_translate = [
        span.language
        if translate_speech and span and span.certain and span.language != ENGLISH
        else None
        for span in at
    ]
    stretches = {run[0]: run for run in translation_stretches(utterances, to_translate)}
    english: dict[int, str] = {}
    out = []
    for i, (utterance, span) in enumerate(zip(utterances, at, strict=True)):
        if i in stretches:  # the first of a stretch: translate all of it at once
            run = stretches[i]
            texts = translate_stretch(audio, [utterances[k] for k in run], span.language, model)
            english.update(zip(run, texts, strict=True))
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
            text = english[i]
            out.append(
                replace(
                    heard,
                    text=text,
                    original_text=utterance.text,
                    translated=True,
                    readable=bool(text),
                    unread_reason="" if text else "uncertain",
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
