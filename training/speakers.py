"""Measure the speaker channel (mlcore.speakers) on dialogues built from real voices.

    python -m training.speakers evaluate --ravdess DIR [--tess DIR] [--out runs/speakers]

Recordings are stitched from real speech: RAVDESS actors (24 people, two sentences each in eight
emotions), TESS's two speakers and, always, Debian's pocketsphinx-testdata voices (a LibriVox
reader and two other readers). A dialogue has 2-5 speakers taking turns of 1-4 clips with natural
gaps and some overlap (-0.4 to +1.2 s between turns), 1-10 minutes long; a monologue is one
speaker's clips. Actors 1-12 are the tuning set the threshold was chosen on; actors 13-24, TESS
and the pocketsphinx voices are held out. Each recording is transcribed and cut into utterances
exactly as the product does (`mlcore.transcribe`), then diarized; `--through-product` runs the
whole Analyzer on a video of each held-out recording instead. Scored by diarization error rate
(`der`: missed speech + false alarm + speaker confusion over the reference speech, 10 ms frames,
best one-to-one speaker mapping, no collar) and by whether the speaker count is right.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from mlcore import speakers as sp

FRAME_S = 0.01
COLLAR_S = 0.25
SAMPLE_RATE = sp.SAMPLE_RATE
THRESHOLDS = (0.78, 0.8, 0.82, 0.84, 0.86)  # merge similarity (mlcore.speakers)
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")

Turn = tuple[float, float, str]  # start, end, speaker


def der(
    reference: Sequence[Turn], hypothesis: Sequence[Turn], duration: float, collar: float = 0.0
) -> dict:
    """Diarization error rate and its parts (fractions of the reference speech time). `collar`:
    seconds either side of each reference turn's start and end left out of the scoring (NIST's
    convention is 0.25 s: reference boundaries are not exact to the frame)."""
    frames = int(np.ceil(duration / FRAME_S)) + 1

    def grid(turns: Sequence[Turn]) -> tuple[list[str], np.ndarray]:
        names = sorted({s for _, _, s in turns})
        active = np.zeros((len(names), frames), bool)
        for start, end, s in turns:
            active[names.index(s), int(round(start / FRAME_S)) : int(round(end / FRAME_S))] = True
        return names, active

    _, ref = grid(reference)
    _, hyp = grid(hypothesis)
    if collar > 0:
        scored = np.ones(frames, bool)
        for start, end, _ in reference:
            for edge in (start, end):
                lo, hi = (
                    int(round((edge - collar) / FRAME_S)),
                    int(round((edge + collar) / FRAME_S)),
                )
                scored[max(lo, 0) : max(hi, 0)] = False
        ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(0), hyp.sum(0)
    total = float(n_ref.sum())
    if total == 0:
        raise ValueError("the reference has no speech")
    overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64) if len(hyp) else np.zeros((len(ref), 0))
    rows, cols = linear_sum_assignment(-overlap) if overlap.size else ([], [])
    correct = float(overlap[rows, cols].sum()) if overlap.size else 0.0
    miss = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float(np.minimum(n_ref, n_hyp).sum()) - correct
    return {
        "der": (miss + false_alarm + confusion) / total,
        "miss": miss / total,
        "false_alarm": false_alarm / total,
        "confusion": confusion / total,
    }


@dataclass
class Recording:
    name: str
    split: str  # "tune" or "test"
    audio: np.ndarray
    turns: list[Turn] = field(default_factory=list)

    @property
    def speakers(self) -> int:
        return len({s for _, _, s in self.turns})

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _load(path: Path) -> np.ndarray:
    import librosa

    if path.suffix == ".raw":
        return np.fromfile(path, dtype="<i2").astype(np.float32) / 32768
    audio, _ = librosa.load(path, sr=SAMPLE_RATE)
    return audio


def _trimmed(path: Path) -> Clip:
    """The clip as the voice channel trims it (0.1 s margins), and where in it the voice is
    (35 dB below its peak, no margin): the reference counts only that as speech."""
    import librosa

    from mlcore.voice_emotion import trim

    audio = trim(_load(path))
    _, (lo, hi) = librosa.effects.trim(audio, top_db=35, frame_length=512, hop_length=128)
    return Clip(audio, lo / SAMPLE_RATE, hi / SAMPLE_RATE)


@dataclass(frozen=True)
class Clip:
    audio: np.ndarray
    voice_start: float
    voice_end: float


def voices(ravdess: Path | None, tess: Path | None) -> dict[str, list[Path]]:
    """Speaker -> clip files (RAVDESS de-duplicated by file name)."""
    out: dict[str, list[Path]] = {}
    if ravdess:
        seen = set()
        for path in sorted(ravdess.rglob("03-01-*.wav")):
            if path.name not in seen:
                seen.add(path.name)
                out.setdefault(f"ravdess-{path.stem[-2:]}", []).append(path)
    if tess:
        for path in sorted(tess.rglob("*.wav")):
            speaker = "OAF" if "OAF" in path.name.upper() else "YAF"
            out.setdefault(f"tess-{speaker}", []).append(path)
    out["librivox"] = sorted((POCKETSPHINX / "librivox").glob("*.wav"))
    out["cards"] = sorted((POCKETSPHINX / "cards").glob("*.wav"))
    out["goforward"] = sorted(POCKETSPHINX.glob("*.raw"))
    return out


def stitch(
    rng: random.Random, name: str, split: str, clips: dict[str, list[Clip]], target_s: float
) -> Recording:
    """Speakers take turns (1-4 clips each, never the same speaker twice in a row) until
    `target_s`; gaps between turns -0.4 to 1.2 s (negative: the next speaker starts early,
    the voices overlap), 0.1-0.5 s between one speaker's clips."""
    people = list(clips)
    pieces: list[tuple[float, Clip, str]] = []
    cursor, previous = 0.0, None
    order = {p: rng.sample(range(len(clips[p])), len(clips[p])) for p in people}
    used = dict.fromkeys(people, 0)
    while cursor < target_s:
        speaker = rng.choice([p for p in people if p != previous] or people)
        previous = speaker
        cursor += rng.uniform(-0.4, 1.2) if pieces else 0.5
        for k in range(rng.randint(1, 4)):
            clip = clips[speaker][order[speaker][used[speaker] % len(clips[speaker])]]
            used[speaker] += 1
            if k:
                cursor += rng.uniform(0.1, 0.5)
            pieces.append((max(cursor, 0.0), clip, speaker))
            cursor = max(cursor, 0.0) + len(clip.audio) / SAMPLE_RATE
    audio = np.zeros(int((cursor + 0.5) * SAMPLE_RATE), np.float32)
    turns = []
    for start, clip, speaker in pieces:
        lo = int(start * SAMPLE_RATE)
        audio[lo : lo + len(clip.audio)] += clip.audio
        turns.append((start + clip.voice_start, start + clip.voice_end, speaker))
    return Recording(name, split, audio, turns)


def recordings(ravdess: Path | None, tess: Path | None, seed: int = 0) -> Iterator[Recording]:
    """The tuning and held-out recordings (module doc); the same every run."""
    rng = random.Random(seed)
    files = voices(ravdess, tess)
    cache: dict[str, list[Clip]] = {}

    def clips(speaker: str) -> list[Clip]:
        if speaker not in cache:
            cache[speaker] = [c for c in (_trimmed(p) for p in files[speaker]) if c.audio.size]
        return cache[speaker]

    actors = sorted(s for s in files if s.startswith("ravdess-"))
    for split, pool in (("tune", actors[:12]), ("test", actors[12:])):
        if not pool:
            continue
        # Every speaker count (2-5) at every length (1-5 min), and one 10-minute dialogue.
        plan = [(2 + k % 4, (1, 2, 3, 5)[k // 4]) for k in range(16)] + [(3, 10)]
        for k, (count, minutes) in enumerate(plan):
            people = rng.sample(pool, count)
            voices_k = {p: clips(p) for p in people}
            speech = sum(len(c.audio) for p in people for c in voices_k[p]) / SAMPLE_RATE
            name = f"{split}-dialogue-{k:02d}"
            yield stitch(rng, name, split, voices_k, min(minutes * 60, 0.9 * speech))
        for person in pool[::2] if split == "tune" else pool[1::2]:
            name = f"{split}-single-{person}"
            yield stitch(rng, name, split, {person: clips(person)}, 60.0)
    tess_people = [s for s in files if s.startswith("tess-")]
    if len(tess_people) == 2:
        for k in range(4):
            both = {p: clips(p) for p in tess_people}
            yield stitch(rng, f"test-tess-dialogue-{k}", "test", both, 60.0 * (1 + k))
        for p in tess_people:
            yield stitch(rng, f"test-single-{p}", "test", {p: clips(p)}, 120.0)
    real = ["librivox", "cards", "goforward"]
    yield stitch(rng, "test-pocketsphinx-3", "test", {p: clips(p) for p in real}, 60.0)
    yield stitch(rng, "test-single-librivox", "test", {"librivox": clips("librivox")}, 60.0)
    if actors:
        for k, person in enumerate(rng.sample(actors[12:], 3)):
            pair = {"librivox": clips("librivox"), person: clips(person)}
            yield stitch(rng, f"test-librivox-ravdess-{k}", "test", pair, 60.0)


def hypothesis(turns: Sequence[sp.Turn]) -> list[Turn]:
    return [(start, end, f"S{who}") for start, end, who in turns]


def utterance_hypothesis(diarization: sp.Diarization) -> list[Turn]:
    """The speaker timeline as the utterances carry it (what the transcript shows)."""
    return [
        (u.start, u.end, f"S{who}")
        for u, who in zip(diarization.utterances, diarization.speakers, strict=True)
        if who is not None
    ]


def score(recording: Recording, hyp: Sequence[Turn], found: int) -> dict:
    collared = der(recording.turns, hyp, recording.duration, collar=COLLAR_S)
    return der(recording.turns, hyp, recording.duration) | {
        "der_collar": collared["der"],
        "speakers": recording.speakers,
        "found": found,
    }


def summarise(rows: list[dict]) -> dict:
    multi = [r for r in rows if r["speakers"] > 1]
    single = [r for r in rows if r["speakers"] == 1]
    seconds = sum(r["reference_s"] for r in multi) or 1.0
    return {
        "recordings": len(rows),
        "der_multi": sum(r["der"] * r["reference_s"] for r in multi) / seconds,
        "der_collar_multi": sum(r["der_collar"] * r["reference_s"] for r in multi) / seconds,
        "der_utterances_multi": sum(
            r.get("der_utterances", r["der"]) * r["reference_s"] for r in multi
        )
        / seconds,
        "confusion_multi": sum(r["confusion"] * r["reference_s"] for r in multi) / seconds,
        "miss_multi": sum(r["miss"] * r["reference_s"] for r in multi) / seconds,
        "false_alarm_multi": sum(r["false_alarm"] * r["reference_s"] for r in multi) / seconds,
        "count_right_multi": float(np.mean([r["found"] == r["speakers"] for r in multi]))
        if multi
        else None,
        "single_stays_one": float(np.mean([r["found"] == 1 for r in single])) if single else None,
    }


def _reference_s(recording: Recording) -> float:
    return sum(e - s for s, e, _ in recording.turns)


def evaluate(args: argparse.Namespace) -> dict:
    """Every recording transcribed as the product does (cached: re-scoring is cheap), diarized
    with each merge threshold in THRESHOLDS; speaker-model CPU time per second of audio."""
    from mlcore.transcribe import load_whisper, segments_to_utterances, transcribe

    whisper = load_whisper()
    encoder = sp.load_speaker_encoder()
    out_dir = Path(args.out)
    rows: dict[float, list[dict]] = {t: [] for t in THRESHOLDS}
    seconds = {"audio": 0.0, "speakers": 0.0}
    for rec in recordings(args.ravdess, args.tess, args.seed):
        if args.split and rec.split != args.split:
            continue
        cached = out_dir / "cache" / f"{rec.name}.pkl"
        if cached.exists():  # the transcript of the same audio (seeded): no need to redo it
            utterances = pickle.loads(cached.read_bytes())[0]
        else:
            utterances = segments_to_utterances(transcribe(rec.audio, whisper))
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps((utterances,)))
        started = time.process_time()
        regions = sp.speech_regions(rec.audio)
        windows = sp.speech_windows(regions)
        embeddings = sp.embed_windows(encoder, rec.audio, windows)
        seconds["speakers"] += time.process_time() - started
        seconds["audio"] += rec.duration
        for t in THRESHOLDS:
            d = sp.assign(utterances, regions, windows, embeddings, t)
            by_utterance = der(rec.turns, utterance_hypothesis(d), rec.duration)
            rows[t].append(
                {"name": rec.name, "split": rec.split, "reference_s": _reference_s(rec)}
                | score(rec, hypothesis(d.turns), d.count)
                | {"der_utterances": by_utterance["der"]}
            )
        row = rows[sp.MERGE_SIMILARITY][-1]
        print(
            f"{rec.name}: {rec.duration:.0f} s, {rec.speakers} speakers, found {row['found']}, "
            f"DER {row['der']:.3f} (collar {row['der_collar']:.3f})",
            flush=True,
        )
    report = {
        "speaker_cpu_s_per_audio_s": seconds["speakers"] / max(seconds["audio"], 1e-9),
        "thresholds": {
            str(t): {
                split: summarise([r for r in rows[t] if r["split"] == split])
                for split in ("tune", "test")
            }
            for t in THRESHOLDS
        },
        "rows": rows[sp.MERGE_SIMILARITY],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "speakers.json").write_text(json.dumps(report, indent=1))
    for t in THRESHOLDS:
        print(t, json.dumps(report["thresholds"][str(t)]))
    return report


def through_product(args: argparse.Namespace) -> dict:
    """The held-out recordings through the whole Analyzer (as a video, face channel off)."""
    import soundfile

    from mlcore.inference import get_analyzer

    analyzer = get_analyzer(face=False)  # the shipped models, as a worker runs them
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rec in recordings(args.ravdess, args.tess, args.seed):
            if rec.split != "test":
                continue
            wav, video = Path(tmp) / "a.wav", Path(tmp) / "v.mp4"
            soundfile.write(wav, rec.audio, SAMPLE_RATE)
            subprocess.run(
                ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "color=size=64x64:rate=2",
                 "-i", str(wav), "-c:v", "libx264", "-c:a", "aac", "-shortest", str(video)],
                check=True,
            )  # fmt: skip
            result = analyzer.analyze(video)
            found = len(result.speakers)
            hyp = [(t["start"], t["end"], f"S{t['speaker']}") for t in result.speaker_turns]
            rows.append(
                {"name": rec.name, "split": "test", "reference_s": _reference_s(rec)}
                | score(rec, hyp, found)
            )
            print(rows[-1], flush=True)
    report = {"through_product": summarise(rows), "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speakers-through-product.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["through_product"]))
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["evaluate"])
    parser.add_argument("--ravdess", type=Path, help="RAVDESS speech folder (Actor_01 ...)")
    parser.add_argument("--tess", type=Path, help="TESS folder")
    parser.add_argument("--out", default="runs/speakers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["tune", "test"], help="only this set")
    parser.add_argument(
        "--through-product", action="store_true", help="held-out set through the Analyzer"
    )
    args = parser.parse_args(argv)
    through_product(args) if args.through_product else evaluate(args)


if __name__ == "__main__":
    main()
