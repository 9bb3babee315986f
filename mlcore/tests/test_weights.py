"""Every shipped model file is pinned to its SHA-256: the installed ones pass, and a different
build is refused where the product loads it, with the package to reinstall."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from mlcore import weights
from mlcore.weights import PINNED_FILES, WeightsError, file_sha256, part_path, verified


@pytest.mark.parametrize("pinned", PINNED_FILES, ids=lambda p: p.name)
def test_the_installed_files_are_the_recorded_ones(pinned):
    path = verified(pinned)
    assert path.is_file() and file_sha256(path) == pinned.sha256


def test_a_changed_file_is_refused_naming_the_package(tmp_path, monkeypatch):
    """A copy of the real file with one byte changed, where the package would be."""
    real = part_path("fer", weights.FER_MINI_XCEPTION.relative)
    fake_package = tmp_path / "fer" / "data"
    fake_package.mkdir(parents=True)
    changed = fake_package / real.name
    shutil.copyfile(real, changed)
    with changed.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(weights, "part_path", lambda package, relative: changed)
    with pytest.raises(WeightsError, match="not the recorded .* reinstall it"):
        verified(weights.FER_MINI_XCEPTION)


def _minilm() -> object:
    from mlcore.config import default_text_encoder_path

    return default_text_encoder_path()


def _fer() -> object:
    from mlcore.fer_model import fer_model_path

    return fer_model_path()


def _tiny_en() -> object:
    from mlcore.transcribe import packaged_model_path

    return packaged_model_path()


@pytest.mark.parametrize(
    ("name", "load"),
    [("MINILM", _minilm), ("FER_MINI_XCEPTION", _fer), ("WHISPER_TINY_EN", _tiny_en)],
)
def test_the_loaders_refuse_an_unrecorded_build(monkeypatch, name, load):
    wrong = dataclasses.replace(getattr(weights, name), sha256="0" * 64)
    monkeypatch.setattr(weights, name, wrong)
    with pytest.raises(Exception, match="not the recorded"):
        load()
