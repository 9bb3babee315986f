"""`manage.py analyze`."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from mlcore import testmedia
from mlcore.labels import EMOTIONS


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("analyze", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_output(analyzer, untrained_checkpoint, talking_clip):
    data = json.loads(
        _run(str(talking_clip), "--json", "--checkpoint", str(untrained_checkpoint),
             "--allow-untrained")
    )  # fmt: skip
    assert data["model_version"] == "untrained-test"
    assert data["has_audio"] is True
    assert data["utterances"]
    first = data["utterances"][0]
    assert set(first) == {
        "index", "start", "end", "text", "emotion", "emotion_scores", "sentiment",
        "sentiment_scores", "face", "voice", "combined", "language", "language_probability",
        "original_text", "translated", "speaker",
    }  # fmt: skip
    assert first["speaker"] == 1 and data["speakers"][0]["name"] == "Speaker 1"
    assert first["emotion"] in EMOTIONS
    assert (first["language"], first["translated"], data["language"]) == ("en", False, "en")
    assert data["summary"]["speech_detected"] is True
    assert "total" in data["timings"]
    # Which channels ran, said in the output: the test pattern has no face to read.
    assert data["channels_used"] == ["text", "voice", "combined"]
    assert data["channels"]["face"]["used"] is False and data["face_track"]


def test_text_output(analyzer, untrained_checkpoint, talking_clip):
    text = _run(str(talking_clip), "--checkpoint", str(untrained_checkpoint), "--allow-untrained")
    assert "overall (words):" in text
    assert "untrained" in text
    assert "face: not used" in text and "voice: used" in text
    assert "speakers: used" in text and "Speaker 1: " in text  # per utterance and per speaker


def test_an_untrained_checkpoint_is_a_command_error(text_checkpoint, talking_clip):
    with pytest.raises(CommandError, match="untrained"):
        _run(str(talking_clip), "--checkpoint", str(text_checkpoint))


def test_bad_media_is_a_command_error_with_its_code(analyzer, untrained_checkpoint, tmp_path):
    junk = testmedia.make_text_file(tmp_path / "junk.mp4")
    with pytest.raises(CommandError, match="not_media"):
        _run(str(junk), "--checkpoint", str(untrained_checkpoint), "--allow-untrained")


def test_a_missing_whisper_model_is_a_command_error(untrained_checkpoint, talking_clip, tmp_path):
    with pytest.raises(CommandError, match="no Whisper model"):
        _run(
            str(talking_clip),
            "--checkpoint",
            str(untrained_checkpoint),
            "--whisper-model",
            str(tmp_path / "none"),
            "--allow-untrained",
        )
