"""The face channel: faces found in frames sampled across the video, and each face's expression.

Detector: MediaPipe's BlazeFace short- and full-range models (mediapipe 0.10.21, the last release
with the bundled `solutions.face_detection` graph), on CPU. Classifier: `mlcore.face_expression`
(a MobileNetV2 trained on RAF-DB + FER2013 by default), on CUDA when available. Faces are linked
into tracks by position, and each track's readings smoothed over SMOOTHING_WINDOW_S. Choice,
figures and timings: docs/FACE_CHANNEL.md and MODEL_CARD.md.
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

import numpy as np
import torch

from mlcore.face_expression import (
    DEFAULT_EXPRESSION_MODEL,
    Box,
    load_expression_classifier,
)
from mlcore.labels import EMOTIONS
from mlcore.media import MediaInfo, frame_size, iter_frames_at, sample_times

log = logging.getLogger(__name__)

# 2 frames/s costs ~0.01-0.04 s per second of video on 2 cores (docs/FACE_CHANNEL.md).
FACE_SAMPLE_FPS: float = 2.0
MIN_FRAMES_PER_UTTERANCE = 3
# Long side of decoded frames: BlazeFace looks at 192x192 anyway; 480 keeps a face that fills a
# tenth of the picture at ~48 px (the classifier reads 96 px crops of the box).
FRAME_MAX_SIDE = 480
# FFmpeg's output rate: a sample shows a frame at most 1/8 s from its time (distinct frames for
# the >= 3 samples of a 1 s utterance); 8 frames/s would cost ~15% more decoding for nothing.
DECODE_RATE = 2 * FACE_SAMPLE_FPS
MIN_DETECTION_CONFIDENCE = 0.5
# A face narrower than this in the decoded frame is found but not read: the classifier would
# see a blur of a few pixels upscaled (its crops are 96 px).
MIN_FACE_PX = 40
MAX_FACES_PER_FRAME = 6  # the most prominent ones are read; a crowd costs no more than this
# A reading is the mean of the same person's raw readings within this window (centred): people
# do not change expression several times a second, a classifier's frame-to-frame noise does.
SMOOTHING_WINDOW_S = 1.5
# A face continues a person's track when it overlaps that person's last box this much (IoU)
# within TRACK_GAP_S; otherwise it starts a new person.
TRACK_MIN_IOU = 0.3
TRACK_GAP_S = 2.0
NO_PICTURE = "no picture at this time"
NO_FACE = "no face in the sampled frames"
TOO_SMALL = f"faces too small to read (under {MIN_FACE_PX} px)"
CLASSIFY_BATCH = 64  # crops per classifier call: activations stay small on any video length


@dataclass(frozen=True)
class Sighting:
    """One face in one frame: whose (a person id, by position over time), where, its expression."""

    person: int
    box: Box  # normalised x0, y0, x1, y1 of the displayed picture
    scores: dict[str, float] | None  # EMOTIONS order, smoothed; None: too small to read

    def to_dict(self) -> dict:
        return {
            "person": self.person,
            "box": [round(v, 4) for v in self.box],
            "scores": {k: round(v, 4) for k, v in self.scores.items()} if self.scores else None,
        }


@dataclass(frozen=True)
class FaceFrame:
    time: float  # seconds from the start of the video
    faces: int  # faces detected in this frame
    box: Box | None  # the main face: the most prominent one that could be read
    scores: dict[str, float] | None  # its expression (EMOTIONS order); None: no face read
    person: int | None = None  # the main face's person id
    too_small: int = 0  # faces found but under MIN_FACE_PX: not read
    people: tuple[Sighting, ...] = ()  # every face found, when there is more than one

    def to_dict(self) -> dict:
        out = {
            "time": round(self.time, 3),
            "faces": self.faces,
            "box": [round(v, 4) for v in self.box] if self.box else None,
            "scores": {k: round(v, 4) for k, v in self.scores.items()} if self.scores else None,
            "person": self.person,
        }
        if self.too_small:
            out["too_small"] = self.too_small
        if self.people:
            out["people"] = [sighting.to_dict() for sighting in self.people]
        return out


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
    """The face channel over [start, end]: frames sampled, the fraction whose main face was
    read, the most faces in one frame, the mean expression probabilities over those frames, and
    a note where nothing was read (no picture at that time, no face, faces too small)."""
    frames = [f for f in track if start <= f.time <= end]
    seen = [f.scores for f in frames if f.scores]
    scores = {e: float(np.mean([s[e] for s in seen])) for e in EMOTIONS} if seen else None
    note = None
    if not frames:
        note = NO_PICTURE
    elif not seen:
        small = any(f.too_small for f in frames)
        note = TOO_SMALL if small else NO_FACE
    return {
        "frames": len(frames),
        "coverage": len(seen) / len(frames) if frames else 0.0,
        "faces_seen": max((f.faces for f in frames), default=0),
        "people": len(
            {f.person for f in frames if f.person is not None}
            | {s.person for f in frames for s in f.people}
        ),
        "emotion": max(scores, key=scores.__getitem__) if scores else None,
        "scores": scores,
        "note": note,
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


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def link_people(times: Sequence[float], boxes: Sequence[Sequence[Box]]) -> list[list[int]]:
    """A person id for every face of every frame: a face continues the track whose last box it
    overlaps most (IoU >= TRACK_MIN_IOU, last seen within TRACK_GAP_S; each track takes one
    face per frame, best overlaps first), else it starts a new track. Ids count from 1."""
    last: dict[int, tuple[float, Box]] = {}  # tracks still open: person -> (seen, box)
    count = 0
    out = []
    for time, frame_boxes in zip(times, boxes, strict=True):
        last = {p: seen for p, seen in last.items() if time - seen[0] <= TRACK_GAP_S}
        pairs = sorted(
            (
                (iou(box, seen), k, person)
                for k, box in enumerate(frame_boxes)
                for person, (_, seen) in last.items()
            ),
            reverse=True,
        )
        ids: dict[int, int] = {}
        for overlap, k, person in pairs:
            if overlap < TRACK_MIN_IOU:
                break
            if k not in ids and person not in ids.values():
                ids[k] = person
        for k, box in enumerate(frame_boxes):
            if k not in ids:
                count += 1
                ids[k] = count
            last[ids[k]] = (time, box)
        out.append([ids[k] for k in range(len(frame_boxes))])
    return out


def smooth(
    times: Sequence[float],
    people: Sequence[Sequence[int]],
    raw: dict[tuple[int, int], np.ndarray],
) -> dict[tuple[int, int], dict[str, float]]:
    """Each reading (frame i, face k) -> the mean of its person's raw readings within
    SMOOTHING_WINDOW_S centred on it, as {emotion: probability}. Linear in the readings (a
    running sum per person: an hour of video is ~7,000 readings)."""
    by_person: dict[int, list[tuple[int, int]]] = {}
    for key in sorted(raw):  # frame order = time order
        by_person.setdefault(people[key[0]][key[1]], []).append(key)
    half = SMOOTHING_WINDOW_S / 2 + 1e-9
    out = {}
    for keys in by_person.values():
        when = np.asarray([times[i] for i, _ in keys])
        rows = np.asarray([raw[key] for key in keys], dtype=np.float64)
        running = np.vstack([np.zeros(rows.shape[1]), np.cumsum(rows, axis=0)])
        lo = np.searchsorted(when, when - half, side="left")
        hi = np.searchsorted(when, when + half, side="right")
        means = (running[hi] - running[lo]) / (hi - lo)[:, None]
        for key, mean in zip(keys, means, strict=True):
            out[key] = dict(zip(EMOTIONS, mean.tolist(), strict=True))
    return out


def _prominence(face: tuple[Box, float]) -> float:
    (x0, y0, x1, y1), confidence = face
    return (x1 - x0) * (y1 - y0) * confidence


class FaceDetector:
    """MediaPipe's BlazeFace, loaded once per process (SHA-256 checked): the short-range model
    first (a speaker filling part of the picture: it finds 84% of RAF-DB test faces placed at
    80-160 px in 480x360 frames, the full-range model 69%), the full-range one (faces up to
    ~5 m away) on frames where it finds none."""

    def __init__(self) -> None:
        from mlcore.weights import BLAZEFACE_FULL_RANGE, BLAZEFACE_SHORT_RANGE, verified

        # The graphs below load these files: refuse another build of mediapipe.
        verified(BLAZEFACE_SHORT_RANGE)
        verified(BLAZEFACE_FULL_RANGE)
        solution = _load_face_detection()
        self._detectors = [
            solution.FaceDetection(
                model_selection=selection, min_detection_confidence=MIN_DETECTION_CONFIDENCE
            )
            for selection in (0, 1)  # 0: short range, 1: full range
        ]
        self._lock = threading.Lock()  # MediaPipe graphs: one frame at a time
        self.model_name = f"blazeface short+full-range (mediapipe {version('mediapipe')})"

    def detect(self, frame: np.ndarray) -> list[tuple[Box, float]]:
        """Faces in one uint8 RGB frame: (normalised box clipped to the picture, confidence)."""
        frame = np.ascontiguousarray(frame)
        faces: list[tuple[Box, float]] = []
        for detector in self._detectors:
            with self._lock:
                result = detector.process(frame)
            for detection in result.detections or []:
                rel = detection.location_data.relative_bounding_box
                box = np.clip(
                    [rel.xmin, rel.ymin, rel.xmin + rel.width, rel.ymin + rel.height], 0, 1
                )
                if box[2] > box[0] and box[3] > box[1]:
                    faces.append((tuple(float(v) for v in box), float(detection.score[0])))
            if faces:
                break
        return faces


class FaceReader:
    """Detector + expression classifier (`mlcore.face_expression`), loaded once per process
    from the repository and installed packages."""

    def __init__(
        self, device: str | None = None, expression_model: str = DEFAULT_EXPRESSION_MODEL
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.classifier = load_expression_classifier(expression_model, self.device)
        self.detector = FaceDetector()
        self.model_name = f"{self.classifier.name} + {self.detector.model_name}"

    def detect(self, frame: np.ndarray) -> list[tuple[Box, float]]:
        return self.detector.detect(frame)

    def classify(self, crops: np.ndarray) -> np.ndarray:
        """Crops from `self.classifier.crop` -> (N, 7) probabilities in EMOTIONS order."""
        return self.classifier.probabilities(crops)

    def _reading(self, frame: np.ndarray) -> list[tuple[Box, np.ndarray | None]]:
        """Every face in one RGB frame, most prominent first (up to MAX_FACES_PER_FRAME): its
        box and classifier crop (None: under MIN_FACE_PX, not read)."""
        height, width = frame.shape[:2]
        faces = sorted(self.detect(frame), key=_prominence, reverse=True)[:MAX_FACES_PER_FRAME]
        out = []
        for box, _ in faces:
            side = max((box[2] - box[0]) * width, (box[3] - box[1]) * height)
            out.append((box, self.classifier.crop(frame, box) if side >= MIN_FACE_PX else None))
        return out

    def _track(self, times: Sequence[float], readings: list) -> list[FaceFrame]:
        """FaceFrames from per-time readings: crops classified in batches (bounded memory),
        faces linked into people, each person's readings smoothed over time."""
        crops = [
            (i, k)
            for i, faces in enumerate(readings)
            for k, (_, c) in enumerate(faces)
            if c is not None
        ]
        raw: dict[tuple[int, int], np.ndarray] = {}
        for lo in range(0, len(crops), CLASSIFY_BATCH):
            batch = crops[lo : lo + CLASSIFY_BATCH]
            rows = self.classify(np.asarray([readings[i][k][1] for i, k in batch]))
            raw.update(zip(batch, rows, strict=True))
        people = link_people(times, [[box for box, _ in faces] for faces in readings])
        smoothed = smooth(times, people, raw)
        track = []
        for i, faces in enumerate(readings):
            sightings = tuple(
                Sighting(people[i][k], box, smoothed.get((i, k)))
                for k, (box, _) in enumerate(faces)
            )
            main = next((s for s in sightings if s.scores is not None), None)
            track.append(
                FaceFrame(
                    time=float(times[i]),
                    faces=len(faces),
                    box=main.box if main else None,
                    scores=main.scores if main else None,
                    person=main.person if main else (sightings[0].person if sightings else None),
                    too_small=sum(1 for _, c in faces if c is None),
                    people=sightings if len(sightings) > 1 else (),
                )
            )
        return track

    def read_frames(
        self,
        frames: np.ndarray,
        times: Sequence[float],
        *,
        progress: Callable[[float], None] | None = None,
    ) -> list[FaceFrame]:
        """One FaceFrame per uint8 RGB frame (N, H, W, 3) at `times` (seconds, increasing)."""
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
