"""Subtitles of a finished analysis: one cue per utterance, its words and its labels.

WebVTT (the job page's `<track>`, and downloads) and SRT (downloads). Each cue is the transcript
(the words as spoken, and the English the model read when it was translated) and a label line:
"[joy · positive]" from the language model, or "[no text label · face: joy]" when the language
model gave none (speech it cannot read) and the face channel saw an expression; the voice-emotion
model's reading follows where it gave one ("[neutral · neutral · voice: anger]"). Where speakers
were told apart, each cue says who speaks: a WebVTT voice span (`<v Ann>`, which players show
and style) and "Ann: " before the words in SRT, which has no voice markup."""

from __future__ import annotations

import re
from collections.abc import Iterable

from videos.exports import require_results, speaker_names
from videos.models import AnalysisJob, Utterance

VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
SRT_CONTENT_TYPE = "application/x-subrip; charset=utf-8"
NO_TEXT_LABEL = "no text label"
MIN_CUE_S = 0.001  # a cue must end after it starts

_SPACE = re.compile(r"\s+")


def cue_label(u: Utterance) -> str:
    """The bracketed label line of one utterance."""
    if u.emotion:
        parts = [u.emotion] + ([u.sentiment] if u.sentiment else [])
    else:
        face = (u.face or {}).get("emotion")
        parts = [NO_TEXT_LABEL] + ([f"face: {face}"] if face else [])
    voice = (u.voice or {}).get("emotion")
    if voice:
        parts.append(f"voice: {voice}")
    return f"[{' · '.join(parts)}]"


def _one_line(text: str) -> str:
    """Whitespace (newlines too) as single spaces: a blank line would end the cue, and "-->"
    would read as a timing line."""
    return _SPACE.sub(" ", text).strip().replace("-->", "->")


def cue_lines(u: Utterance) -> list[str]:
    spoken = _one_line(u.original_text if u.translated and u.original_text else u.text)
    lines = [spoken] if spoken else []
    if u.translated and u.original_text and u.text.strip():
        lines.append(f"({_one_line(u.text)})")
    lines.append(cue_label(u))
    return lines


def _vtt_escape(text: str) -> str:
    # Cue text is markup in WebVTT: "<" starts a tag and "&" an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clock(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _times(u: Utterance) -> tuple[float, float]:
    start = max(0.0, u.start)
    return start, max(u.end, start + MIN_CUE_S)


def _vtt_voice(name: str) -> str:
    # A voice annotation ends at ">" and may not hold "&" or "<" unescaped, nor a line break.
    return _one_line(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(utterances: Iterable[Utterance], names: dict[int, str] | None = None) -> str:
    blocks = ["WEBVTT"]
    for u in utterances:
        start, end = _times(u)
        timing = f"{_clock(start, '.')} --> {_clock(end, '.')}"
        lines = [_vtt_escape(line) for line in cue_lines(u)]
        name = (names or {}).get(u.speaker) if u.speaker else None
        if name:  # the voice span covers the whole cue (each line of it)
            lines = [f"<v {_vtt_voice(name)}>{line}</v>" for line in lines]
        blocks.append(f"{u.index + 1}\n{timing}\n" + "\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def srt(utterances: Iterable[Utterance], names: dict[int, str] | None = None) -> str:
    blocks = []
    for number, u in enumerate(utterances, start=1):  # SRT counts from 1, without gaps
        start, end = _times(u)
        timing = f"{_clock(start, ',')} --> {_clock(end, ',')}"
        lines = cue_lines(u)
        name = (names or {}).get(u.speaker) if u.speaker else None
        if name:
            lines[0] = f"{_one_line(name)}: {lines[0]}"
        blocks.append(f"{number}\n{timing}\n" + "\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


FORMATS = {"vtt": (webvtt, VTT_CONTENT_TYPE), "srt": (srt, SRT_CONTENT_TYPE)}


def job_subtitles(job: AnalysisJob, fmt: str) -> tuple[str, str]:
    """(body, content type) of a succeeded job's subtitles in `fmt` ("vtt" or "srt");
    Http404 for a job without results."""
    require_results(job)
    build, content_type = FORMATS[fmt]
    return build(job.utterances.order_by("index"), speaker_names(job)), content_type
