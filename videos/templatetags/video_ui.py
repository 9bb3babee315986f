"""Small display filters for the video pages."""

from __future__ import annotations

from django import template

from videos.presentation import stage_label as _stage_label

register = template.Library()


@register.filter
def clock(seconds: float | None) -> str:
    """75.4 -> "1:15"; 3725 -> "1:02:05". Video times read like a player's."""
    if seconds is None or seconds == "":  # "": a missing key in a template lookup
        return "—"
    total = int(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def percent(fraction: float | None) -> str:
    """0.873 -> "87%"."""
    if fraction is None:
        return "—"
    return f"{round(100 * float(fraction))}%"


@register.filter
def stage_label(stage: str) -> str:
    return _stage_label(stage or "")


@register.filter
def minutes(seconds: float | None) -> str:
    """1470 -> "24.5": minutes of video, as the quota counts them."""
    if seconds is None:
        return "—"
    return f"{float(seconds) / 60:.1f}"


@register.filter
def language_name(code: str | None) -> str:
    """'de' -> 'German' (Whisper's language table); '' stays ''."""
    from mlcore.language import language_name as name  # noqa: PLC0415 - transformers is heavy

    return name(code) if code else ""
