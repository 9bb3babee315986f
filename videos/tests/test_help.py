"""The help page: each channel in plain words, units explained, the model card rendered."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_help_explains_the_channels_units_and_renders_the_model_card(client):
    page = client.get(reverse("help"))
    assert page.status_code == 200
    html = page.content.decode()
    for anchor in ("words", "face", "voice", "combined", "speakers", "percentages", "model-card"):
        assert f'id="{anchor}"' in html
    assert "% of the speaking time" in html and "% sure" in html and "Hz" in html
    # MODEL_CARD.md as HTML: its table, and headings with the ids its own links use.
    assert "<table>" in html and 'id="speakers-who-speaks-when"' in html
    assert 'href="#speakers-who-speaks-when"' in html


def test_help_is_linked_from_every_page_and_from_a_result(client, user):
    assert 'href="/help/"' in client.get(reverse("home")).content.decode()
    client.force_login(user)
    assert 'href="/help/"' in client.get(reverse("dashboard")).content.decode()
