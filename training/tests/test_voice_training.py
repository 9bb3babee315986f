"""Voice-emotion training pieces: the corpora's file names, the speaker-independent folds, the
arousal targets, and a head fitted on separable features (training.voice)."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.labels import EMOTIONS
from mlcore.voice_emotion import PROSODY_FEATURES, SYNTHETIC_THRESHOLD
from training.emotional_speech import Clip, ravdess_clips, ravdess_fold, tess_clips
from training.voice import arousal_level, cross_validate, fit, uar


def _touch(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_ravdess_names_give_emotion_intensity_actor_and_folds_without_shared_actors(tmp_path):
    names = [
        f"03-01-{e:02d}-{i:02d}-01-01-{a:02d}.wav"
        for a in range(1, 25)
        for e in range(1, 9)
        for i in ((1,) if e == 1 else (1, 2))
    ]
    _touch(tmp_path / "Actor_x", [*names, "02-01-05-01-01-01-01.wav", "notes.txt"])
    clips = ravdess_clips(tmp_path)
    assert len(clips) == len(names)  # video-only (02-) and other files are not speech clips
    calm = next(c for c in clips if c.path.name.startswith("03-01-02-02"))
    assert calm.emotion == "neutral" and calm.calm and calm.strong
    assert {c.emotion for c in clips} == set(EMOTIONS)
    folds = {}
    for clip in clips:
        folds.setdefault(ravdess_fold(clip), set()).add(clip.speaker)
    assert len(folds) == 4 and all(len(actors) == 6 for actors in folds.values())
    assert sum(len(a) for a in folds.values()) == len(set().union(*folds.values())) == 24
    for actors in folds.values():  # odd actors are men, even women: 3 of each
        assert sum(int(a[-2:]) % 2 for a in actors) == 3


def test_tess_names_give_emotion_and_speaker(tmp_path):
    _touch(tmp_path / "OAF_angry", ["OAF_back_angry.wav"])
    _touch(tmp_path / "testnew", ["507testYAF_germ_ps29.wav", "readme.md"])
    old, young = tess_clips(tmp_path)
    assert (old.emotion, old.speaker) == ("anger", "tess-OAF")
    assert (young.emotion, young.speaker) == ("surprise", "tess-YAF")


def test_arousal_targets_order_the_emotions_and_intensities(tmp_path):
    def clip(emotion: str, strong: bool, calm: bool = False) -> Clip:
        return Clip(tmp_path, emotion, "ravdess-01", "ravdess", strong=strong, calm=calm)

    assert arousal_level(clip("neutral", False)) == 0.0
    assert arousal_level(clip("sadness", False)) < arousal_level(clip("sadness", True)) < 1
    assert arousal_level(clip("disgust", False)) < arousal_level(clip("disgust", True))
    assert arousal_level(clip("anger", False)) < arousal_level(clip("anger", True)) == 1.0
    assert arousal_level(clip("sadness", True)) < arousal_level(clip("anger", False))


@pytest.fixture
def separable(tmp_path):
    """24 actors x 7 emotions, each emotion its own direction in feature space, plus synthetic
    voices off to one side."""
    rng = np.random.default_rng(0)
    width = 40 + PROSODY_FEATURES
    centres = rng.normal(0, 3, (len(EMOTIONS), width))
    clips, rows = [], []
    for actor in range(1, 25):
        for k, emotion in enumerate(EMOTIONS):
            for strong in (False, True):
                clips.append(Clip(tmp_path, emotion, f"ravdess-{actor:02d}", "ravdess", strong))
                rows.append(centres[k] + rng.normal(0, 1, width))
    synthetic = [Clip(tmp_path, "neutral", "espeak-x", "synthetic") for _ in range(60)]
    rows += list(rng.normal(0, 1, (60, width)) + 8.0)
    return np.array(rows), clips, synthetic


def test_the_head_learns_separable_emotions_in_speaker_independent_folds(separable):
    x, clips, synthetic = separable
    people = x[: len(clips)]
    report = cross_validate(people, clips, c=0.05, extra=(x[len(clips) :], synthetic))
    assert report["uar"] > 0.95 and report["read_as_synthetic"] == 0
    model = fit(x, clips + synthetic, c=0.05)
    emotion, arousal = model.predict(people)
    assert uar(np.array([c.label for c in clips]), emotion.argmax(axis=1)) > 0.95
    assert ((arousal >= 0) & (arousal <= 1)).all()
    assert (model.synthetic(x[len(clips) :]) >= SYNTHETIC_THRESHOLD).all()
    assert (model.synthetic(people) < SYNTHETIC_THRESHOLD).all()
