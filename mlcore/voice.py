"""The voice channel's measurements: prosody from the audio the pipeline already decoded.

Numbers only: the voice's emotion comes from a model trained on labelled emotional speech
(`mlcore.voice_emotion`), not from rules over these numbers. What is measured, per utterance:

- pitch: probabilistic YIN (librosa `pyin`) over 65-600 Hz; median of the voiced frames, and the
  range between their 10th and 90th percentiles in semitones (robust to octave slips).
- loudness: RMS level in dBFS over the voiced frames (all frames when none is voiced).
- speaking rate: Whisper's words per second of the utterance span.
- pauses: gaps of at least `PAUSE_MIN_S` between consecutive words (count and seconds).
- vocal intensity relative to the same speaker's own baseline in this video
  (`relative_intensity`):

      intensity = clip( 0.5 * (L - L_base) / 6 dB  +  0.5 * (P - P_base) / 3 st,  -1, 1 )

  where L is the utterance loudness (dBFS), P its median pitch in semitones, and the baselines
  are the medians over that speaker's utterances (`mlcore.speakers`; over the whole video when
  speakers are not told apart). 0 is the speaker's usual level in this video; +1 is 6 dB
  louder and 3 semitones higher than usual (raised, excited voice), -1 the
  opposite. Without pitch only the loudness term counts (at full weight).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from mlcore.transcribe import Segment

PITCH_FMIN_HZ = 65.0
PITCH_FMAX_HZ = 600.0
# 32 ms frames (two periods of 65 Hz) every 20 ms, coarser pitch bins and fewer thresholds than
# librosa's defaults: 0.67 s instead of 2.1 s for 60 s of speech on 2 cores, same medians within
# a few Hz on espeak-ng speech. Coarser still (0.4-semitone bins, 10 thresholds: 30% less CPU)
# doubled the spread of relative intensity between identical utterances (0.03 -> 0.08), and
# resampling to 8 kHz lost a low (80 Hz) voice altogether: measured, not taken.
FRAME_LENGTH = 512
HOP_S = 0.02
PYIN_RESOLUTION = 0.2
PYIN_THRESHOLDS = 20
# Utterances share one pyin call per track (its set-up costs ~10 ms, as much as 1.4 s of frames),
# a track ends at a pause longer than TRACK_GAP_S (silence is not worth tracking) or at
# TRACK_MAX_S (memory stays bounded on a long video).
TRACK_GAP_S = 1.5
TRACK_MAX_S = 60.0
PAUSE_MIN_S = 0.3
# The relative-intensity scales: the level and pitch changes that count as one full unit.
INTENSITY_LOUDNESS_DB = 6.0
INTENSITY_PITCH_ST = 3.0
VOICE_METHOD = "librosa pyin pitch (65-600 Hz), RMS loudness in dBFS, Whisper word timing"


@dataclass(frozen=True)
class Prosody:
    pitch_median_hz: float | None  # None when no frame was voiced
    pitch_range_st: float | None  # 10th-90th percentile span of the voiced pitch, semitones
    voiced_fraction: float  # share of the utterance's frames with a pitch
    loudness_dbfs: float | None  # None for digital silence
    speaking_rate_wps: float | None  # None without word timestamps
    pause_count: int
    pause_s: float
    relative_intensity: float | None = None  # against the speaker's own baseline (module doc)

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, voice: dict) -> Prosody:
        """The measurements of an utterance's `voice` dict (which also holds the emotion
        reading)."""
        return cls(**{f.name: voice[f.name] for f in fields(cls) if f.name in voice})


def _semitones(hz: float) -> float:
    return 12.0 * math.log2(hz / 440.0)


def _pitch(segment: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame (FRAME_LENGTH every HOP_S, no centring): f0 in Hz and whether it is voiced."""
    import librosa

    if segment.size < FRAME_LENGTH:
        return np.empty(0), np.empty(0, dtype=bool)
    f0, voiced, _ = librosa.pyin(
        segment,
        fmin=PITCH_FMIN_HZ,
        fmax=PITCH_FMAX_HZ,
        sr=sample_rate,
        frame_length=FRAME_LENGTH,
        hop_length=int(HOP_S * sample_rate),
        resolution=PYIN_RESOLUTION,
        n_thresholds=PYIN_THRESHOLDS,
        center=False,
    )
    return f0, voiced & np.isfinite(f0)


def _frame_rms(segment: np.ndarray, sample_rate: int) -> np.ndarray:
    hop = int(HOP_S * sample_rate)
    if segment.size < FRAME_LENGTH:
        return np.empty(0)
    frames = np.lib.stride_tricks.sliding_window_view(segment, FRAME_LENGTH)[::hop]
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def _pauses(words: Sequence) -> tuple[int, float]:
    gaps = [b.start - a.end for a, b in zip(words, words[1:], strict=False)]
    long_gaps = [g for g in gaps if g >= PAUSE_MIN_S]
    return len(long_gaps), float(sum(long_gaps))


@dataclass(frozen=True)
class _Track:
    """Pitch and level frames of a stretch of audio starting at `offset_s`."""

    offset_s: float
    f0: np.ndarray
    voiced: np.ndarray
    rms: np.ndarray

    def between(self, start_s: float, end_s: float, sample_rate: int) -> _Track:
        """The frames of [start_s, end_s) as a track of their own (offset start_s)."""
        frames = self.frames(start_s, end_s, sample_rate)
        return _Track(start_s, self.f0[frames], self.voiced[frames], self.rms[frames])

    def frames(self, start_s: float, end_s: float, sample_rate: int) -> slice:
        """Frames whose whole window lies inside [start_s, end_s)."""
        hop = int(HOP_S * sample_rate)
        first = math.ceil(round((start_s - self.offset_s) * sample_rate) / hop)
        last = (round((end_s - self.offset_s) * sample_rate) - FRAME_LENGTH) // hop + 1
        return slice(max(0, first), max(0, min(last, self.rms.size)))


def _track(audio: np.ndarray, sample_rate: int, start_s: float, end_s: float) -> _Track:
    first = max(0, int(round(start_s * sample_rate)))
    last = min(audio.size, int(round(end_s * sample_rate)))
    segment = audio[first:last].astype(np.float32, copy=False)
    f0, voiced = _pitch(segment, sample_rate)
    return _Track(first / sample_rate, f0, voiced, _frame_rms(segment, sample_rate))


def _measure(track: _Track, sample_rate: int, utterance: Segment) -> Prosody:
    frames = track.frames(utterance.start, utterance.end, sample_rate)
    voiced, rms = track.voiced[frames], track.rms[frames]
    f0 = track.f0[frames][voiced]
    # Loudness of the voiced frames: pauses between words would drag a slow talker down.
    loud = rms[voiced] if f0.size else rms
    level = float(np.sqrt(np.mean(loud**2))) if loud.size else 0.0
    words = utterance.words
    count, pause_s = _pauses(words)
    return Prosody(
        pitch_median_hz=float(np.median(f0)) if f0.size else None,
        pitch_range_st=(
            float(12.0 * np.log2(np.percentile(f0, 90) / np.percentile(f0, 10)))
            if f0.size >= 2
            else None
        ),
        voiced_fraction=float(voiced.mean()) if voiced.size else 0.0,
        loudness_dbfs=20.0 * math.log10(level) if level > 1e-6 else None,
        speaking_rate_wps=(
            len(words) / utterance.duration if words and utterance.duration > 0 else None
        ),
        pause_count=count,
        pause_s=pause_s,
    )


def measure(audio: np.ndarray, sample_rate: int, utterance: Segment) -> Prosody:
    """Prosody of one utterance of 16 kHz mono float32 `audio` (the whole video's track)."""
    track = _track(audio, sample_rate, utterance.start, utterance.end)
    return _measure(track, sample_rate, utterance)


def with_relative_intensity(
    prosody: Sequence[Prosody], speakers: Sequence[int | None] | None = None
) -> list[Prosody]:
    """Each utterance's `relative_intensity` against its speaker's own medians (module doc);
    without speakers, against the video's. One baseline for several voices would mostly
    measure who talks (a higher voice reads as "more intense")."""
    groups: dict[int | None, list[int]] = {}
    for i, speaker in enumerate(speakers if speakers is not None else [None] * len(prosody)):
        groups.setdefault(speaker, []).append(i)
    out = list(prosody)
    for members in groups.values():
        for i, p in zip(members, _relative([prosody[i] for i in members]), strict=True):
            out[i] = p
    return out


def _relative(prosody: Sequence[Prosody]) -> list[Prosody]:
    levels = [p.loudness_dbfs for p in prosody if p.loudness_dbfs is not None]
    pitches = [_semitones(p.pitch_median_hz) for p in prosody if p.pitch_median_hz]
    level_base = float(np.median(levels)) if levels else None
    pitch_base = float(np.median(pitches)) if pitches else None
    out = []
    for p in prosody:
        if p.loudness_dbfs is None or level_base is None:
            out.append(p)
            continue
        loud_term = (p.loudness_dbfs - level_base) / INTENSITY_LOUDNESS_DB
        if p.pitch_median_hz and pitch_base is not None:
            pitch_term = (_semitones(p.pitch_median_hz) - pitch_base) / INTENSITY_PITCH_ST
            value = 0.5 * loud_term + 0.5 * pitch_term
        else:
            value = loud_term
        out.append(replace(p, relative_intensity=float(np.clip(value, -1.0, 1.0))))
    return out


def _track_groups(utterances: Sequence[Segment]) -> list[list[int]]:
    """Indices of utterances (in time order) grouped into tracks: a new one after a pause longer
    than TRACK_GAP_S, or where the track would span more than TRACK_MAX_S."""
    order = sorted(range(len(utterances)), key=lambda i: utterances[i].start)
    groups: list[list[int]] = []
    for i in order:
        u = utterances[i]
        if (
            groups
            and u.start - max(utterances[j].end for j in groups[-1]) <= TRACK_GAP_S
            and u.end - utterances[groups[-1][0]].start <= TRACK_MAX_S
        ):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def utterance_tracks(
    audio: np.ndarray, sample_rate: int, utterances: Sequence[Segment]
) -> list[_Track]:
    """Each utterance's pitch track: one pyin call per group of nearby utterances
    (`_track_groups`), shared by its members (and by the voice-emotion features)."""
    tracks: list[_Track | None] = [None] * len(utterances)
    for group in _track_groups(utterances):
        members = [utterances[i] for i in group]
        start, end = min(u.start for u in members), max(u.end for u in members)
        track = _track(audio, sample_rate, start, end)
        for i in group:
            tracks[i] = track
    return [t for t in tracks if t is not None]


def measure_all(
    audio: np.ndarray,
    sample_rate: int,
    utterances: Sequence[Segment],
    tracks: Sequence[_Track] | None = None,
    speakers: Sequence[int | None] | None = None,
) -> list[Prosody]:
    """Every utterance's prosody, with relative intensity (per speaker when `speakers` are
    given), from `utterance_tracks` (computed here unless given)."""
    tracks = tracks if tracks is not None else utterance_tracks(audio, sample_rate, utterances)
    return with_relative_intensity(
        [_measure(t, sample_rate, u) for t, u in zip(tracks, utterances, strict=True)], speakers
    )


def baseline(prosody: Sequence[Prosody]) -> dict | None:
    """The video's typical voice (medians over utterances), for the summary."""
    if not prosody:
        return None

    def median(values: list[float]) -> float | None:
        return round(float(np.median(values)), 3) if values else None

    return {
        "pitch_median_hz": median([p.pitch_median_hz for p in prosody if p.pitch_median_hz]),
        "loudness_dbfs": median([p.loudness_dbfs for p in prosody if p.loudness_dbfs is not None]),
        "speaking_rate_wps": median(
            [p.speaking_rate_wps for p in prosody if p.speaking_rate_wps is not None]
        ),
        "pause_s": round(float(sum(p.pause_s for p in prosody)), 3),
    }
