"""Labelled emotional speech corpora read from folders a user fetched (never from the repository).

- RAVDESS speech (`Actor_??/03-01-EE-II-SS-RR-AA.wav`, 24 actors, 48 kHz; CC BY-NC-SA 4.0):
  EE emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust,
  08 surprised), II intensity (01 normal, 02 strong), AA actor (odd male, even female).
- TESS (`*_<emotion>.wav` in any folder layout, 2 speakers; CC BY-NC-ND 4.0: validation only,
  the shipped weights are never trained on it).

Both map onto the product's 7 emotions (`mlcore.labels.EMOTIONS`); calm counts as neutral.
The speaker-independent protocol: `ravdess_fold` puts both actors of a pair (one male, one
female) in the same of `FOLDS` folds, so no actor is ever in training and test at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlcore.labels import EMOTIONS

RAVDESS_EMOTIONS: dict[str, str] = {
    "01": "neutral",
    "02": "neutral",  # calm: the product has no calm label
    "03": "joy",
    "04": "sadness",
    "05": "anger",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
TESS_EMOTIONS: dict[str, str] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "neutral": "neutral",
    "ps": "surprise",  # "pleasant surprise"
    "sad": "sadness",
}
# Arousal, the usual circumplex grouping: activated emotions against neutral, calm and sad.
# Disgust sits between the two and is left out of the arousal score (None).
HIGH_AROUSAL: frozenset[str] = frozenset({"anger", "fear", "joy", "surprise"})
LOW_AROUSAL: frozenset[str] = frozenset({"neutral", "sadness"})
FOLDS = 4

_RAVDESS_NAME = re.compile(r"^03-01-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$")
_TESS_NAME = re.compile(r"_(angry|disgust|fear|happy|neutral|ps|sad)\d*\.wav$", re.IGNORECASE)
_TESS_SPEAKER = re.compile(r"(OAF|YAF)", re.IGNORECASE)


@dataclass(frozen=True)
class Clip:
    path: Path
    emotion: str  # one of EMOTIONS
    speaker: str  # "ravdess-07", "tess-OAF"
    corpus: str  # "ravdess" or "tess"
    strong: bool | None = None  # RAVDESS intensity; None where the corpus has none
    calm: bool = False  # RAVDESS "calm" (labelled neutral)

    @property
    def label(self) -> int:
        return EMOTIONS.index(self.emotion)

    @property
    def high_arousal(self) -> bool | None:
        if self.calm or self.emotion in LOW_AROUSAL:
            return False
        return True if self.emotion in HIGH_AROUSAL else None


def ravdess_clips(folder: str | Path) -> list[Clip]:
    """Every RAVDESS speech clip under `folder` (audio-only speech files, modality 03-01)."""
    clips = []
    for path in sorted(Path(folder).rglob("*.wav")):
        match = _RAVDESS_NAME.match(path.name)
        if not match:
            continue
        emotion_code, intensity, _statement, _repetition, actor = match.groups()
        clips.append(
            Clip(
                path=path,
                emotion=RAVDESS_EMOTIONS[emotion_code],
                speaker=f"ravdess-{actor}",
                corpus="ravdess",
                strong=intensity == "02",
                calm=emotion_code == "02",
            )
        )
    if not clips:
        raise FileNotFoundError(f"no RAVDESS speech clips (03-01-*.wav) under {folder}")
    return clips


def tess_clips(folder: str | Path) -> list[Clip]:
    """Every TESS clip under `folder`; the speaker (OAF older, YAF younger) from the file name."""
    clips = []
    for path in sorted(Path(folder).rglob("*.wav")):
        match = _TESS_NAME.search(path.name)
        if not match:
            continue
        speaker = _TESS_SPEAKER.search(path.name)
        clips.append(
            Clip(
                path=path,
                emotion=TESS_EMOTIONS[match.group(1).lower()],
                speaker=f"tess-{speaker.group(1).upper() if speaker else 'unknown'}",
                corpus="tess",
            )
        )
    if not clips:
        raise FileNotFoundError(f"no TESS clips (*_<emotion>.wav) under {folder}")
    return clips


def actor(clip: Clip) -> int:
    return int(clip.speaker.rsplit("-", 1)[1])


def ravdess_fold(clip: Clip) -> int:
    """Actors 1+2 -> fold 0, 3+4 -> 1, ..., 9+10 -> 0: each fold 3 men and 3 women."""
    return ((actor(clip) - 1) // 2) % FOLDS
