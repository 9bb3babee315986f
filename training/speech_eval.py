"""Through-speech evaluation: MELD lines spoken by espeak-ng, transcribed by the product's own
Whisper path, and scored on what the model reads in the product (the transcript), beside the
gold subtitle text.

    python -m training.speech_eval --checkpoint mlcore/weights/default.pt \
        --split-csv ../shared/meld/dev_sent_emo.csv [--limit N] [--jobs 2] [--out DIR]

Each line is spoken by one espeak-ng voice at one speed, chosen deterministically from its
dialogue and utterance ids (`speaking_for`): a mix of American and British, male and female
voices at 140-175 words per minute. The speech (with 0.3 s of silence either side, as
`mlcore.testmedia.make_speech_track` writes it) is read back by `mlcore.media.load_audio` at
16 kHz and transcribed by `mlcore.transcribe.transcribe` with `load_whisper()`, exactly as the
Analyzer does; the model reads the whole transcript of the line (segments joined by a space).

Transcripts are cached (`var/speech_eval/transcripts.json` by default, git-ignored), keyed by
line id + voice + speed + Whisper model + a hash of the spoken text, so a rerun only scores.
A line espeak-ng has nothing to say for (no letters or digits), or that Whisper hears nothing
in, is read as an empty transcript (the model's input for empty text).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from training.meld import REPO_ROOT, MeldUtterance, read_meld_csv, with_texts

DEFAULT_CACHE_DIR = REPO_ROOT / "var" / "speech_eval"
CACHE_FILE = "transcripts.json"
# espeak-ng voices (language + variant) and speeds; every line gets one of each.
VOICES: tuple[str, ...] = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+m7", "en-gb+f2")
# Training transcripts are spoken by other voices than the evaluation's, so a model trained on
# them is scored through voices it never heard (other accents and variants of espeak-ng).
TRAIN_VOICES: tuple[str, ...] = (
    "en-us+m3", "en-gb-x-rp+f4", "en-029+m1", "en-gb-scotland+f1", "en-us+klatt", "en-gb+m5",
)  # fmt: skip
# A second evaluation set from another engine: Flite's voices (Debian's flite package; "flite:"
# marks them). Whisper tiny.en mishears them a third less than espeak-ng's (WER 13.8% against
# 19.6% on MELD dev; MODEL_CARD.md), so the two sets bracket how much of the through-speech loss
# is the synthetic voice rather than the model.
FLITE_VOICES: tuple[str, ...] = ("flite:slt", "flite:rms", "flite:awb")
FLITE = "flite:"
VOICE_SETS: dict[str, tuple[str, ...]] = {
    "eval": VOICES,
    "train": TRAIN_VOICES,
    "flite": FLITE_VOICES,
}
EVAL_VOICE_SETS: tuple[str, ...] = ("eval", "flite")  # what a model is scored through
SPEEDS_WPM: tuple[int, ...] = (140, 150, 160, 175)
PAUSE_S = 0.3
DIALOGUE_PAUSE_S = 0.8  # between the lines of a whole-dialogue video (dialogue_metrics)
_SAYABLE = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class Speaking:
    voice: str
    words_per_minute: int


def speaking_for(dialogue_id: int, utterance_id: int, voices: Sequence[str] = VOICES) -> Speaking:
    """The voice and speed for a line: fixed by its ids (crc32, not Python's salted hash)."""
    code = zlib.crc32(f"dia{dialogue_id}_utt{utterance_id}".encode())
    return Speaking(voices[code % len(voices)], SPEEDS_WPM[(code // len(voices)) % len(SPEEDS_WPM)])


def spoken_text(text: str) -> str | None:
    """What espeak-ng is given: the line without leading dashes (an argument starting with `-`
    would be read as an option); None when nothing in it can be spoken."""
    text = text.strip().lstrip("-").strip()
    return text if _SAYABLE.search(text) else None


def whisper_tag(spec: str | None) -> str:
    """The Whisper model's name in the cache key."""
    spec = (spec or "").strip()
    return Path(spec).name if spec else "tiny.en"


def cache_key(utterance: MeldUtterance, speaking: Speaking, model: str) -> str:
    digest = hashlib.sha1(utterance.text.encode()).hexdigest()[:10]
    return (
        f"dia{utterance.dialogue_id}_utt{utterance.utterance_id}|{speaking.voice}|"
        f"{speaking.words_per_minute}|{model}|{digest}"
    )


def _speakings_and_keys(
    utterances: Sequence[MeldUtterance], voices: Sequence[str], tag: str
) -> tuple[list[Speaking], list[str]]:
    """Each line's voice and speed, and its cache key: the one way both are derived."""
    speakings = [speaking_for(u.dialogue_id, u.utterance_id, voices) for u in utterances]
    keys = [cache_key(u, s, tag) for u, s in zip(utterances, speakings, strict=True)]
    return speakings, keys


class TranscriptCache:
    """A JSON object of cache key -> {"transcript", "audio_s", "asr_s"}."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / CACHE_FILE
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            self.entries = json.loads(self.path.read_text())

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=0, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


# --- Speaking and transcribing (one process per job; Whisper loaded once per process) ---

_WORKER: dict = {}


def _init_worker(spec: str | None, threads: int) -> None:
    from mlcore.transcribe import load_whisper

    _WORKER["model"] = load_whisper(spec or None, cpu_threads=threads)
    _WORKER["dir"] = Path(tempfile.mkdtemp(prefix="speech_eval_"))


def speak_and_transcribe(text: str | None, speaking: Speaking) -> dict:
    """espeak-ng -> WAV -> `load_audio` (16 kHz) -> `transcribe`: the joined transcript."""
    from mlcore.media import load_audio
    from mlcore.transcribe import transcribe

    if text is None:
        return {"transcript": "", "audio_s": 0.0, "asr_s": 0.0}
    wav = _WORKER["dir"] / "line.wav"
    _speak(text, wav, speaking)
    audio = load_audio(wav, 16_000)
    started = time.process_time()
    segments = transcribe(audio, _WORKER["model"])
    return {
        "transcript": " ".join(s.text for s in segments).strip(),
        "audio_s": round(audio.size / 16_000, 3),
        "asr_s": round(time.process_time() - started, 3),
    }


def _spoken_pcm(text: str, scratch: Path, speaking: Speaking) -> bytes:
    """The line spoken by espeak-ng (`make_speech_wav`) or Flite: 16-bit mono PCM at
    `SPEECH_RATE`, no silence added. `scratch` is a WAV path it may use and removes."""
    from mlcore.testmedia import _read_pcm, make_speech_wav

    if speaking.voice.startswith(FLITE):
        _flite_wav(text, scratch, speaking.voice.removeprefix(FLITE), speaking.words_per_minute)
    else:
        make_speech_wav(
            text, scratch, voice=speaking.voice, words_per_minute=speaking.words_per_minute
        )
    pcm = _read_pcm(scratch)
    scratch.unlink()
    return pcm


def _write_wav(path: Path, pcm: bytes) -> None:
    import wave

    from mlcore.testmedia import SPEECH_RATE

    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SPEECH_RATE)
        f.writeframes(pcm)


def _speak(text: str, wav: Path, speaking: Speaking) -> None:
    """The line spoken, with PAUSE_S of silence before and after (the layout of
    `make_speech_track`, which has no voice or speed option)."""
    from mlcore.testmedia import _silence

    spoken = _spoken_pcm(text, wav.with_suffix(".raw.wav"), speaking)
    _write_wav(wav, _silence(PAUSE_S) + spoken + _silence(PAUSE_S))


def _flite_wav(text: str, path: Path, voice: str, words_per_minute: int) -> None:
    """`text` spoken by Flite's `voice`, resampled by FFmpeg to espeak-ng's WAV layout. Flite
    has no words-per-minute option: its durations are stretched around its ~160 wpm."""
    from mlcore.testmedia import SPEECH_RATE, _run

    spoken = path.with_suffix(".flite.wav")
    stretch = f"{160 / words_per_minute:.3f}"
    _run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text,
          "-o", str(spoken)])  # fmt: skip
    _run(["ffmpeg", "-v", "error", "-y", "-i", str(spoken), "-ac", "1", "-ar", str(SPEECH_RATE),
          "-c:a", "pcm_s16le", str(path)])  # fmt: skip
    spoken.unlink()


def _job(args: tuple[str | None, Speaking]) -> dict:
    return speak_and_transcribe(*args)


@dataclass
class TranscriptRun:
    transcripts: list[str]
    speakings: list[Speaking]
    cached: int  # lines read from the cache
    transcribed: int  # lines spoken and transcribed in this call
    seconds: float  # wall time of this call
    audio_s: float  # seconds of speech over all lines (cached ones included)
    asr_cpu_s: float  # Whisper process CPU seconds over all lines (as measured when made)


def transcribe_lines(
    utterances: Sequence[MeldUtterance],
    *,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    whisper: str | None = None,
    jobs: int = 1,
    voices: Sequence[str] = VOICES,
    save_every: int = 100,
    progress: bool = True,
) -> TranscriptRun:
    """Each line's transcript through speech, from the cache or made (and cached) now."""
    started = time.perf_counter()
    cache = TranscriptCache(cache_dir)
    tag = whisper_tag(whisper)
    speakings, keys = _speakings_and_keys(utterances, voices, tag)
    todo = [i for i, key in enumerate(keys) if cache.get(key) is None]
    if todo:
        jobs = max(1, jobs)
        threads = max(1, (os.cpu_count() or 1) // jobs)
        work = [(spoken_text(utterances[i].text), speakings[i]) for i in todo]
        if jobs == 1:
            _init_worker(whisper, threads)
            results = map(_job, work)
            pool = None
        else:
            pool = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(whisper, threads))
            results = pool.map(_job, work, chunksize=4)
        try:
            for done, (i, entry) in enumerate(zip(todo, results, strict=True), start=1):
                cache.put(keys[i], entry)
                if done % save_every == 0:
                    cache.save()
                    if progress:
                        rate = done / (time.perf_counter() - started)
                        print(f"  transcribed {done}/{len(todo)} ({rate:.2f} lines/s)", flush=True)
        finally:
            cache.save()
            if pool is not None:
                pool.shutdown()
    entries = [cache.get(key) for key in keys]
    return TranscriptRun(
        transcripts=[e["transcript"] for e in entries],
        speakings=speakings,
        cached=len(keys) - len(todo),
        transcribed=len(todo),
        seconds=time.perf_counter() - started,
        audio_s=sum(e["audio_s"] for e in entries),
        asr_cpu_s=sum(e["asr_s"] for e in entries),
    )


def cached_transcripts(
    utterances: Sequence[MeldUtterance],
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    *,
    whisper: str | None = None,
    voices: Sequence[str] = VOICES,
) -> list[str | None]:
    """Each line's cached transcript (None where the cache has none); nothing is made."""
    cache = TranscriptCache(cache_dir)
    _, keys = _speakings_and_keys(utterances, voices, whisper_tag(whisper))
    entries = [cache.get(key) for key in keys]
    return [None if e is None else e["transcript"] for e in entries]


def fixed_subset(utterances: Sequence[MeldUtterance], limit: int | None) -> list[MeldUtterance]:
    """The first `limit` lines in file order (whole dialogues first; None: all): the same
    lines on every run, so cached transcripts are reused."""
    return list(utterances if limit is None else utterances[:limit])


def punctuation_counts(texts: Sequence[str]) -> dict[str, int]:
    return {mark: sum(t.count(mark) for t in texts) for mark in ("!", "?", ".", ",")}


def word_error_rate(references: Sequence[str], transcripts: Sequence[str]) -> float:
    """WER of the transcripts against the lines (lowercased, punctuation removed, as
    `mlcore.bench_language` scores Whisper), over the lines that hold words."""
    import jiwer

    from mlcore.bench_language import normalize_words

    pairs = [
        (normalize_words(r), normalize_words(t))
        for r, t in zip(references, transcripts, strict=True)
    ]
    pairs = [(r, t) for r, t in pairs if r]
    if not pairs:
        return 0.0
    return float(jiwer.wer([r for r, _ in pairs], [t for _, t in pairs]))


def through_speech_metrics(
    checkpoint: str | Path,
    split_csv: str | Path,
    *,
    limit: int | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    whisper: str | None = None,
    voice_set: str = "eval",
    jobs: int = 1,
    batch_size: int = 128,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Gold-text and through-speech metrics of a checkpoint on the same lines of a split, spoken
    by the voices of `voice_set` (a VOICE_SETS key)."""
    from training.evaluate import score_utterances

    model, info, tokenizer, torch_device = _load(checkpoint, device)
    preprocess = info.config.preprocess
    context = (preprocess.context_utterances, preprocess.context_following)
    lines = fixed_subset(read_meld_csv(split_csv, *context), limit)
    run = transcribe_lines(
        lines, cache_dir=cache_dir, whisper=whisper, jobs=jobs, voices=VOICE_SETS[voice_set]
    )
    spoken = with_texts(lines, run.transcripts, *context)
    options = {"device": torch_device, "batch_size": batch_size, "progress": progress}
    gold = score_utterances(model, info, tokenizer, lines, **options)
    speech = score_utterances(model, info, tokenizer, spoken, **options)
    voices: dict[str, int] = {}
    for s in run.speakings:
        name = f"{s.voice}@{s.words_per_minute}"
        voices[name] = voices.get(name, 0) + 1
    return {
        "checkpoint": str(checkpoint),
        "model_version": info.model_version,
        "split_csv": str(split_csv),
        "lines": len(lines),
        "whisper": whisper_tag(whisper),
        "voice_set": voice_set,
        "gold_text": gold,
        "through_speech": speech,
        "gap": {
            task: gold[task]["weighted_f1"] - speech[task]["weighted_f1"]
            for task in ("emotion", "sentiment")
        },
        "transcription": {
            "cached": run.cached,
            "transcribed": run.transcribed,
            "seconds": round(run.seconds, 1),
            "audio_s": round(run.audio_s, 1),
            "asr_cpu_s": round(run.asr_cpu_s, 1),
            "empty_transcripts": sum(1 for t in run.transcripts if not t.strip()),
            "punctuation_gold": punctuation_counts([u.text for u in lines]),
            "punctuation_transcripts": punctuation_counts(run.transcripts),
            "word_error_rate": round(
                word_error_rate([spoken_text(u.text) or "" for u in lines], run.transcripts), 4
            ),
            "voices": voices,
        },
    }


def _mux(wav: Path, clip: Path) -> None:
    """An MP4 of the WAV under a small test-pattern picture, as a user's upload would be."""
    from mlcore.testmedia import _run

    _run(
        ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x72:rate=10",
         "-i", str(wav), "-shortest", "-c:v", "libx264", "-preset", "ultrafast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-ar", "16000", str(clip)]
    )  # fmt: skip


def dialogue_track(
    lines: Sequence[MeldUtterance], wav: Path, voices: Sequence[str] = VOICES
) -> list[tuple[float, float] | None]:
    """The lines spoken one after another into one WAV (each in its own voice and speed, with
    DIALOGUE_PAUSE_S between them): each line's (start, end) seconds, None where nothing in it
    can be spoken."""
    from mlcore.testmedia import SPEECH_RATE, _silence

    pcm = bytearray(_silence(DIALOGUE_PAUSE_S))
    windows: list[tuple[float, float] | None] = []
    for line in lines:
        text = spoken_text(line.text)
        if text is None:
            windows.append(None)
            continue
        speaking = speaking_for(line.dialogue_id, line.utterance_id, voices)
        start = len(pcm) / 2 / SPEECH_RATE
        pcm += _spoken_pcm(text, wav.with_suffix(".raw.wav"), speaking)
        windows.append((start, len(pcm) / 2 / SPEECH_RATE))
        pcm += _silence(DIALOGUE_PAUSE_S)
    _write_wav(wav, bytes(pcm))
    return windows


def line_labels(
    utterances: Sequence, windows: Sequence[tuple[float, float] | None]
) -> list[tuple[int, int] | None]:
    """Each line's (emotion, sentiment) label indices from the product's utterances: their
    scores averaged, weighted by how long each overlaps the line's window. None where no
    labelled utterance overlaps it (nothing spoken, nothing heard, or no label given)."""
    from mlcore.labels import EMOTIONS, SENTIMENTS

    labels: list[tuple[int, int] | None] = []
    for window in windows:
        emotion, sentiment, total = [0.0] * len(EMOTIONS), [0.0] * len(SENTIMENTS), 0.0
        for u in utterances if window else ():
            overlap = min(u.end, window[1]) - max(u.start, window[0])
            if overlap <= 0 or u.emotion_scores is None or u.sentiment_scores is None:
                continue
            total += overlap
            for i, name in enumerate(EMOTIONS):
                emotion[i] += overlap * u.emotion_scores[name]
            for i, name in enumerate(SENTIMENTS):
                sentiment[i] += overlap * u.sentiment_scores[name]
        if total == 0:
            labels.append(None)
        else:
            labels.append((emotion.index(max(emotion)), sentiment.index(max(sentiment))))
    return labels


def dialogue_metrics(
    checkpoint: str | Path,
    split_csv: str | Path,
    *,
    dialogues: int = 20,
    whisper: str | None = None,
    voice_set: str = "eval",
    progress: bool = True,
) -> dict:
    """The product end to end on whole dialogues: the first `dialogues` dialogues of the split,
    each spoken into one video (`dialogue_track`), analysed by `Analyzer` as an upload is (the
    utterances and their context are the product's own; face and voice off), and each MELD line
    scored by the utterances that overlap it (`line_labels`). A line left without a label
    counts as predicted neutral (`unlabelled` says how many)."""
    from mlcore.inference import Analyzer
    from mlcore.labels import EMOTIONS, SENTIMENTS
    from training.evaluate import metrics_from_predictions

    neutral = (EMOTIONS.index("neutral"), SENTIMENTS.index("neutral"))
    analyzer = Analyzer(checkpoint, whisper_model=whisper, face=False, voice=False)
    by_dialogue: dict[int, list[MeldUtterance]] = {}
    for line in read_meld_csv(split_csv):
        if line.dialogue_id in by_dialogue or len(by_dialogue) < dialogues:
            by_dialogue.setdefault(line.dialogue_id, []).append(line)
    predictions = {task: {"true": [], "pred": []} for task in ("emotion", "sentiment")}
    predictions["dropped"] = 0
    unlabelled = utterances = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="speech_dialogue_") as tmp:
        wav, clip = Path(tmp) / "dialogue.wav", Path(tmp) / "dialogue.mp4"
        for n, lines in enumerate(by_dialogue.values(), start=1):
            windows = dialogue_track(lines, wav, VOICE_SETS[voice_set])
            _mux(wav, clip)
            result = analyzer.analyze(clip)
            utterances += len(result.utterances)
            for line, label in zip(lines, line_labels(result.utterances, windows), strict=True):
                unlabelled += label is None
                emotion, sentiment = label or neutral
                predictions["emotion"]["true"].append(line.emotion)
                predictions["emotion"]["pred"].append(emotion)
                predictions["sentiment"]["true"].append(line.sentiment)
                predictions["sentiment"]["pred"].append(sentiment)
            if progress and n % 5 == 0:
                print(f"  dialogues {n}/{len(by_dialogue)}", flush=True)
    metrics = metrics_from_predictions(predictions)
    metrics.update(
        dialogues=len(by_dialogue),
        lines=len(predictions["emotion"]["true"]),
        utterances=utterances,
        unlabelled=unlabelled,
        voice_set=voice_set,
        seconds=round(time.perf_counter() - started, 1),
    )
    return metrics


def end_to_end_metrics(
    checkpoint: str | Path,
    split_csv: str | Path,
    *,
    limit: int = 100,
    whisper: str | None = None,
    progress: bool = True,
) -> dict:
    """The product end to end on the first `limit` lines: each line spoken (its voice and
    speed, as above) and muxed with a test-pattern picture into an MP4, analysed by
    `mlcore.inference.Analyzer` (words channel; face and voice off: they do not change the
    words' labels) and scored by the video summary's dominant emotion and sentiment. A clip
    in which no speech is found counts as predicted neutral (`no_speech` says how many)."""
    from mlcore.inference import Analyzer
    from mlcore.labels import EMOTIONS, SENTIMENTS
    from training.evaluate import metrics_from_predictions

    analyzer = Analyzer(checkpoint, whisper_model=whisper, face=False, voice=False)
    lines = fixed_subset(read_meld_csv(split_csv), limit)
    predictions = {task: {"true": [], "pred": []} for task in ("emotion", "sentiment")}
    predictions["dropped"] = 0
    no_speech = 0
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="speech_e2e_") as tmp:
        wav, clip = Path(tmp) / "line.wav", Path(tmp) / "line.mp4"
        for n, line in enumerate(lines, start=1):
            text = spoken_text(line.text)
            summary = {}
            if text is not None:
                _speak(text, wav, speaking_for(line.dialogue_id, line.utterance_id))
                _mux(wav, clip)
                summary = analyzer.analyze(clip).summary
            if not summary.get("dominant_emotion"):
                no_speech += 1
                summary = {"dominant_emotion": "neutral", "dominant_sentiment": "neutral"}
            predictions["emotion"]["true"].append(line.emotion)
            predictions["emotion"]["pred"].append(EMOTIONS.index(summary["dominant_emotion"]))
            predictions["sentiment"]["true"].append(line.sentiment)
            predictions["sentiment"]["pred"].append(SENTIMENTS.index(summary["dominant_sentiment"]))
            if progress and n % 25 == 0:
                print(f"  end to end {n}/{len(lines)}", flush=True)
    metrics = metrics_from_predictions(predictions)
    metrics.update(
        lines=len(lines),
        no_speech=no_speech,
        seconds=round(time.perf_counter() - started, 1),
        cpu_s=round(time.process_time() - cpu, 1),
    )
    return metrics


def brief(result: dict) -> dict:
    """The through-speech result as stored in metrics.json: weighted/macro F1 and accuracy of
    both readings of the same lines, the gap, and how the transcripts were made."""

    def scores(m: dict) -> dict:
        return {
            task: {k: m[task][k] for k in ("accuracy", "weighted_f1", "macro_f1")}
            for task in ("emotion", "sentiment")
        }

    return {
        "lines": result["lines"],
        "whisper": result["whisper"],
        "voice_set": result["voice_set"],
        "gold_text": scores(result["gold_text"]),
        "through_speech": scores(result["through_speech"]),
        "gap": result["gap"],
        "transcription": result["transcription"],
    }


def _load(checkpoint: str | Path, device: str | None):
    import torch
    from transformers import AutoTokenizer

    from mlcore.checkpoint import load_checkpoint

    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, info = load_checkpoint(checkpoint, torch_device)
    tokenizer = AutoTokenizer.from_pretrained(
        info.config.resolved_text_encoder_path(), local_files_only=True
    )
    return model, info, tokenizer, torch_device


def format_comparison(result: dict) -> str:
    lines = [
        f"{result['model_version']}: {result['lines']} lines of {result['split_csv']} "
        f"(voices: {result['voice_set']}; Whisper {result['whisper']}; "
        f"{result['transcription']['cached']} transcripts cached, "
        f"{result['transcription']['transcribed']} made)",
        f"{'weighted F1':14s} {'emotion':>8s} {'sentiment':>10s}",
    ]
    for name in ("gold_text", "through_speech"):
        m = result[name]
        lines.append(
            f"{name:14s} {m['emotion']['weighted_f1']:8.4f} {m['sentiment']['weighted_f1']:10.4f}"
        )
    gap = result["gap"]
    lines.append(f"{'gap':14s} {gap['emotion']:8.4f} {gap['sentiment']:10.4f}")
    lines.append(
        f"word error rate of the transcripts: {result['transcription']['word_error_rate']:.1%}"
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speech-limit", type=int, help="the first N lines only (default all)")
    parser.add_argument("--speech-cache", default=str(DEFAULT_CACHE_DIR), help="transcript cache")
    parser.add_argument("--whisper", help="Whisper model (default: the packaged tiny.en)")
    parser.add_argument("--jobs", type=int, default=1, help="transcription processes")
    parser.add_argument(
        "--voices",
        choices=EVAL_VOICE_SETS,
        default="eval",
        help="who speaks the lines: espeak-ng's evaluation voices (default) or Flite's",
    )


def _beside_same_lines(
    args: argparse.Namespace, product: dict, voice_set: str, keys: tuple[str, ...]
) -> dict:
    """A product-end-to-end result (`end_to_end_metrics`, `dialogue_metrics`) beside the gold
    text and the per-line transcripts of the same lines (its first `lines` lines)."""
    subset = through_speech_metrics(
        args.checkpoint,
        args.split_csv,
        limit=product["lines"],
        cache_dir=args.speech_cache,
        whisper=args.whisper,
        voice_set=voice_set,
        device=args.device,
        progress=False,
    )
    out = {key: product[key] for key in ("lines", "seconds", *keys)}
    for name, metrics in (
        ("end_to_end", product),
        ("through_speech_same_lines", subset["through_speech"]),
        ("gold_text_same_lines", subset["gold_text"]),
    ):
        out[name] = {t: metrics[t]["weighted_f1"] for t in ("emotion", "sentiment")}
    return out


def _print_same_lines(title: str, result: dict, note: str) -> None:
    print(f"{title} (weighted F1 emotion / sentiment):")
    for name in ("gold_text_same_lines", "through_speech_same_lines", "end_to_end"):
        print(f"  {name:26s} {result[name]['emotion']:.4f} / {result[name]['sentiment']:.4f}")
    print(f"  {note}; {result['seconds']} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="the model to score (not with --transcribe-only)")
    parser.add_argument("--split-csv", required=True, help="a MELD {split}_sent_emo.csv")
    parser.add_argument("--out", help="folder for speech_metrics.json")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--end-to-end", type=int, metavar="N", help="also run the Analyzer on the first N lines"
    )
    parser.add_argument(
        "--dialogues",
        type=int,
        metavar="N",
        help="also run the Analyzer on the first N dialogues, each spoken into one video",
    )
    parser.add_argument(
        "--transcribe-only",
        choices=sorted(VOICE_SETS),
        help="only fill the cache with the split's transcripts, spoken by the evaluation's "
        "voices or by the training voices (training: data.train_transcripts)",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.transcribe_only:
        lines = fixed_subset(read_meld_csv(args.split_csv), args.speech_limit)
        run = transcribe_lines(
            lines,
            cache_dir=args.speech_cache,
            whisper=args.whisper,
            jobs=args.jobs,
            voices=VOICE_SETS[args.transcribe_only],
        )
        print(
            f"{len(lines)} lines: {run.cached} cached, {run.transcribed} transcribed in "
            f"{run.seconds:.0f} s; {run.audio_s:.0f} s of speech, {run.asr_cpu_s:.0f} Whisper CPU-s"
        )
        return 0
    if not args.checkpoint:
        parser.error("--checkpoint is required unless --transcribe-only")
    result = through_speech_metrics(
        args.checkpoint,
        args.split_csv,
        limit=args.speech_limit,
        cache_dir=args.speech_cache,
        whisper=args.whisper,
        voice_set=args.voices,
        jobs=args.jobs,
        device=args.device,
    )
    if args.end_to_end:
        e2e = end_to_end_metrics(
            args.checkpoint, args.split_csv, limit=args.end_to_end, whisper=args.whisper
        )
        # end_to_end_metrics speaks with the evaluation's espeak-ng voices.
        result["end_to_end"] = _beside_same_lines(args, e2e, "eval", ("no_speech",))
    if args.dialogues:
        dialogue = dialogue_metrics(
            args.checkpoint,
            args.split_csv,
            dialogues=args.dialogues,
            whisper=args.whisper,
            voice_set=args.voices,
        )
        result["dialogues"] = _beside_same_lines(
            args, dialogue, args.voices, ("dialogues", "utterances", "unlabelled")
        )
    print(format_comparison(result))
    if args.dialogues:
        d = result["dialogues"]
        _print_same_lines(
            f"first {d['dialogues']} dialogues, one video each: {d['lines']} lines, "
            f"{d['utterances']} utterances found",
            d,
            f"{d['unlabelled']} lines without a label",
        )
    if args.end_to_end:
        e = result["end_to_end"]
        _print_same_lines(
            f"first {e['lines']} lines", e, f"no speech found in {e['no_speech']} clips"
        )
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "speech_metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}/speech_metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
