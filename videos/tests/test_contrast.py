"""Faded (weak) labels stay readable: their text keeps WCAG AA contrast (4.5:1) on the faded
background, and no rule fades them with opacity (which blends the text into the page)."""

from __future__ import annotations

import re
from pathlib import Path

CSS = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()


def _variables() -> dict[str, str]:
    root = re.search(r":root\s*\{([^}]*)\}", CSS).group(1)
    return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", root))


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _rule(selector: str) -> str:
    return re.search(re.escape(selector) + r"\s*\{([^}]*)\}", CSS).group(1)


def test_the_contrast_formula_matches_wcag():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54  # the usual AA threshold grey


def test_faded_labels_keep_aa_contrast_and_are_not_faded_with_opacity():
    colours = _variables()
    for text in ("fg", "muted"):  # label text, and its "% sure" / "kind" parts
        assert contrast(colours[text], colours["weak-bg"]) >= 4.5, text
    for selector in (".badge.weak", ".faded-key", ".moment.weak .moment-quote"):
        assert "opacity" not in _rule(selector), selector
