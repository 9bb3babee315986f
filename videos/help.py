"""The help page's model card: MODEL_CARD.md from the repository, rendered once per process."""

from __future__ import annotations

import functools

from django.conf import settings


@functools.cache
def model_card_html() -> str:
    """MODEL_CARD.md as HTML, headings with GitHub-style ids so its own links (and the job
    page's "#speakers-who-speaks-when") land. Our own file: trusted markup."""
    import markdown

    text = (settings.BASE_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    return markdown.markdown(text, extensions=["tables", "toc", "fenced_code"])
