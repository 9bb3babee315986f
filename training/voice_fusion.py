"""Fusion weights by measurement: the words, the voice-emotion model and `mlcore.fusion.combine`
scored on the same lines, for a grid of voice weights.

    python -m training.voice_fusion meld --checkpoint mlcore/weights/default.pt \
        --split-csv ../shared/meld/dev_sent_emo.csv --voice-weights PATH [--limit N] [--out DIR]

`meld`: MELD dev through speech (`training.speech_eval`). Each line's words are the model's
reading of the transcript the product heard (speech_eval's transcript cache, which this command
only reads: fill it first with `python -m training.speech_eval --transcribe-only eval ...`).
Its voice is the same espeak-ng speech re-made (`speaking_for`'s voice and speed, speech_eval's
`_speak`), decoded by `mlcore.media.load_audio` at 16 kHz and read by the voice-emotion model
(`mlcore.voice_emotion`) as the Analyzer reads an utterance. espeak-ng's flat voice carries no
emotion, so this set measures how much fusion damages the words, not how much the voice adds.

Voice features are cached (`var/voice_fusion/meld-<whisper>-<features version>.npz`,
git-ignored), keyed by
speech_eval's line key (line id + voice + speed + Whisper model + text hash), so a rerun only
scores. A line with no voice reading (nothing sayable, or `unreadable_reason`) is fused from
the words alone, as the product does. `grid` is shared with the RAVDESS side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mlcore.fusion import SENTIMENT_GIVEN_EMOTION, combine
from mlcore.labels import EMOTIONS, SENTIMENTS
from training import speech_eval
from training.meld import REPO_ROOT, MeldUtterance, read_meld_csv, with_texts
from training.voice import FEATURES_VERSION, uar

DEFAULT_FEATURE_DIR = REPO_ROOT / "var" / "voice_fusion"
DEFAULT_OUT = REPO_ROOT / "runs" / "voice_fusion"
TEXT_WEIGHTS: tuple[float, ...] = (1.0,)
VOICE_WEIGHTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
# On espeak-ng's emotionless voice, fusion may cost the words at most this much emotion weighted
# F1 (the target).
TOLERANCE = 0.005
NEUTRAL = (EMOTIONS.index("neutral"), SENTIMENTS.index("neutral"))


class TranscriptsMissing(Exception):
    """Some lines have no cached transcript (this module never transcribes)."""


class Row(NamedTuple):
    """One line: its true labels, the words' probabilities (None: no words read) and the voice
    reading (`mlcore.voice_emotion.reading`; None: no voice reading)."""

    emotion: int
    sentiment: int
    text_emotion: np.ndarray | None
    text_sentiment: np.ndarray | None
    voice: dict | None


# --- Scoring (shared with the RAVDESS side) ---


def _scores(probabilities: np.ndarray | None, labels: Sequence[str]) -> dict[str, float] | None:
    if probabilities is None:
        return None
    return {label: float(p) for label, p in zip(labels, probabilities, strict=True)}


def _labels(fused: dict | None) -> tuple[int, int]:
    """A fused reading's label indices; no reading counts as neutral (as speech_eval counts a
    clip with no speech)."""
    if fused is None:
        return NEUTRAL
    return EMOTIONS.index(fused["emotion"]), SENTIMENTS.index(fused["sentiment"])


def _figures(rows: Sequence[Row], predicted: Sequence[tuple[int, int]]) -> dict:
    from training.evaluate import metrics_from_predictions

    predictions: dict = {
        "emotion": {"true": [r[0] for r in rows], "pred": [p[0] for p in predicted]},
        "sentiment": {"true": [r[1] for r in rows], "pred": [p[1] for p in predicted]},
        "dropped": 0,
    }
    metrics = metrics_from_predictions(predictions)
    out = {
        task: {k: metrics[task][k] for k in ("accuracy", "weighted_f1", "macro_f1")}
        for task in ("emotion", "sentiment")
    }
    out["emotion"]["uar"] = round(
        uar(np.array([r[0] for r in rows]), np.array([p[0] for p in predicted])), 4
    )
    return out


def default_weights() -> list[tuple[float, float]]:
    """(text weight, voice weight) pairs of the grid."""
    return [(t, v) for t in TEXT_WEIGHTS for v in VOICE_WEIGHTS]


def grid(rows: Sequence[Row | tuple], weights: Sequence[tuple[float, float]]) -> list[dict]:
    """Words alone, voice alone, then `combine` (no face) at each (text weight, voice weight):
    emotion and sentiment accuracy / weighted F1 / macro F1 over all `rows`, and how many lines'
    emotion differs from the words'. A row without a voice reading is fused from the words
    alone, as the product does; without any reading it counts as neutral."""
    rows = [Row(*r) for r in rows]
    channels = [
        (_scores(r.text_emotion, EMOTIONS), _scores(r.text_sentiment, SENTIMENTS), r.voice)
        for r in rows
    ]
    words = [_labels(combine(e, s, None, voice=None)) for e, s, _ in channels]
    results = [{"name": "words alone", **_figures(rows, words), "changed": 0}]
    voice = [_labels(combine(None, None, None, voice=v)) for _, _, v in channels]
    results.append(
        {
            "name": "voice alone",
            **_figures(rows, voice),
            "changed": sum(a[0] != b[0] for a, b in zip(voice, words, strict=True)),
            "no_reading": sum(v is None for _, _, v in channels),
        }
    )
    for text_weight, voice_weight in weights:
        fused = [
            _labels(
                combine(e, s, None, voice=v, voice_weight=voice_weight, text_weight=text_weight)
            )
            for e, s, v in channels
        ]
        figures = _figures(rows, fused)
        results.append(
            {
                "name": "combined",
                "text_weight": text_weight,
                "voice_weight": voice_weight,
                **figures,
                "changed": sum(a[0] != b[0] for a, b in zip(fused, words, strict=True)),
                "emotion_wf1_vs_words": figures["emotion"]["weighted_f1"]
                - results[0]["emotion"]["weighted_f1"],
            }
        )
    return results


def format_grid(results: Sequence[dict]) -> str:
    lines = [
        f"{'':22s} {'emo wF1':>8s} {'emo acc':>8s} {'emo UAR':>8s} {'sent wF1':>9s} "
        f"{'changed':>8s}",
    ]
    for r in results:
        name = r["name"]
        if name == "combined":
            name = f"text {r['text_weight']:g} voice {r['voice_weight']:g}"
        lines.append(
            f"{name:22s} {r['emotion']['weighted_f1']:8.4f} {r['emotion']['accuracy']:8.4f} "
            f"{r['emotion']['uar']:8.4f} {r['sentiment']['weighted_f1']:9.4f} {r['changed']:8d}"
        )
    return "\n".join(lines)


# --- MELD dev through speech ---


def text_probabilities(
    loaded: tuple, utterances: Sequence[MeldUtterance], *, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """The words model's emotion (n, 7) and sentiment (n, 3) probabilities for `utterances`,
    through the same loader and model call as `training.evaluate.score_utterances`. `loaded`:
    `speech_eval._load`'s (model, info, tokenizer, device)."""
    import torch

    from training.evaluate import model_inputs, text_loader
    from training.meld import MeldDataset

    model, info, tokenizer, torch_device = loaded
    dataset = MeldDataset(utterances, info.config.preprocess)
    emotion = np.zeros((len(utterances), len(EMOTIONS)), dtype=np.float32)
    sentiment = np.zeros((len(utterances), len(SENTIMENTS)), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for batch in text_loader(dataset, tokenizer, batch_size):
            logits = model(**model_inputs(batch, torch_device))
            # The loader buckets by length: batch["index"] says which lines these are.
            index = batch["index"].numpy()
            emotion[index] = logits["emotion"].softmax(-1).float().cpu().numpy()
            sentiment[index] = logits["sentiment"].softmax(-1).float().cpu().numpy()
    return emotion, sentiment


class FeatureCache:
    """Voice features per line key, one npz per Whisper model: `keys`, `reasons` ("" where
    readable) and `x` (zeros where unreadable)."""

    def __init__(self, directory: str | Path, whisper: str) -> None:
        self.path = Path(directory) / f"meld-{whisper}-{FEATURES_VERSION}.npz"
        self.entries: dict[str, np.ndarray | str] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                for key, reason, x in zip(data["keys"], data["reasons"], data["x"], strict=True):
                    self.entries[str(key)] = str(reason) or x

    def save(self) -> None:
        if not self.entries:
            return
        width = next((v.size for v in self.entries.values() if isinstance(v, np.ndarray)), 1)
        keys = sorted(self.entries)
        x = np.zeros((len(keys), width), dtype=np.float32)
        reasons = []
        for i, key in enumerate(keys):
            value = self.entries[key]
            reasons.append(value if isinstance(value, str) else "")
            if not isinstance(value, str):
                x[i] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), reasons=np.array(reasons), x=x)
        os.replace(tmp, self.path)


def voice_features(
    lines: Sequence[MeldUtterance],
    speakings: Sequence[speech_eval.Speaking],
    whisper_spec: str | None,
    *,
    cache_dir: str | Path = DEFAULT_FEATURE_DIR,
    save_every: int = 100,
    progress: bool = True,
) -> tuple[list[np.ndarray | str], int]:
    """Per line, its espeak-ng speech's voice features, or why it has no voice reading; and how
    many were made now (the rest came from the cache)."""
    from mlcore.media import load_audio
    from mlcore.transcribe import load_whisper
    from mlcore.voice_emotion import SAMPLE_RATE, embed, unreadable_reason

    tag = speech_eval.whisper_tag(whisper_spec)
    cache = FeatureCache(cache_dir, tag)
    keys = [speech_eval.cache_key(u, s, tag) for u, s in zip(lines, speakings, strict=True)]
    todo = [i for i, key in enumerate(keys) if key not in cache.entries]
    if todo:
        whisper = load_whisper(whisper_spec, cpu_threads=1)
        started = time.perf_counter()
        try:
            with tempfile.TemporaryDirectory(prefix="voice_fusion_") as tmp:
                wav = Path(tmp) / "line.wav"
                for done, i in enumerate(todo, start=1):
                    text = speech_eval.spoken_text(lines[i].text)
                    if text is None:  # espeak-ng has nothing to say: no audio at all
                        cache.entries[keys[i]] = "nothing to say"
                    else:
                        # The speech speech_eval transcribed: same voice, speed and padding.
                        speech_eval._speak(text, wav, speakings[i])
                        audio = load_audio(wav, SAMPLE_RATE)
                        reason = unreadable_reason(audio)
                        cache.entries[keys[i]] = reason or embed(whisper, audio)
                    if done % save_every == 0:
                        cache.save()
                        if progress:
                            rate = done / (time.perf_counter() - started)
                            print(f"  voice {done}/{len(todo)} ({rate:.2f} lines/s)", flush=True)
        finally:
            cache.save()
    return [cache.entries[key] for key in keys], len(todo)


def meld_line_scores(
    checkpoint: str | Path,
    split_csv: str | Path,
    voice_weights: str | Path,
    *,
    limit: int | None = None,
    transcript_cache: str | Path = speech_eval.DEFAULT_CACHE_DIR,
    feature_cache: str | Path = DEFAULT_FEATURE_DIR,
    device: str | None = None,
    progress: bool = True,
) -> tuple[list[Row], dict]:
    """Per MELD line (the first `limit`, as speech_eval picks them): true labels, the words'
    probabilities on the product's transcript, and the voice reading of its espeak-ng speech
    (None where unreadable). Also a summary: lines, voice model, why lines have no voice, and
    how many features were made now. Raises when a transcript is not cached yet."""
    from mlcore.voice_emotion import SYNTHETIC_NOTE, VoiceEmotionModel

    model = VoiceEmotionModel.load(voice_weights)
    loaded = speech_eval._load(checkpoint, device)
    # The lines and their dialogue context as through_speech_metrics reads them.
    preprocess = loaded[1].config.preprocess
    context = (preprocess.context_utterances, preprocess.context_following)
    lines = speech_eval.fixed_subset(read_meld_csv(split_csv, *context), limit)
    transcripts = speech_eval.cached_transcripts(lines, transcript_cache)
    missing = sum(t is None for t in transcripts)
    if missing:
        raise TranscriptsMissing(
            f"{missing} of {len(lines)} lines have no cached transcript in {transcript_cache}: "
            "run `python -m training.speech_eval --transcribe-only eval --split-csv "
            f"{split_csv}` first"
        )
    spoken = with_texts(lines, [t or "" for t in transcripts], *context)
    emotion, sentiment = text_probabilities(loaded, spoken)

    speakings = [speech_eval.speaking_for(u.dialogue_id, u.utterance_id) for u in lines]
    # The head's own Whisper (None is the packaged tiny.en, as the Analyzer loads it).
    spec = model.whisper_model if model.whisper_model != "tiny.en" else None
    features, made = voice_features(
        lines, speakings, spec, cache_dir=feature_cache, progress=progress
    )
    readable = [i for i, f in enumerate(features) if not isinstance(f, str)]
    voices: list[dict | None] = [None] * len(lines)
    synthetic = 0
    for i in readable:
        voice = model.read(features[i])  # as the product: text-to-speech gets no reading
        if voice["emotion"]:
            voices[i] = voice
        synthetic += voice["emotion_note"] == SYNTHETIC_NOTE
    rows = [
        Row(u.emotion, u.sentiment, emotion[i], sentiment[i], voices[i])
        for i, u in enumerate(lines)
    ]
    summary = {
        "lines": len(lines),
        "voice_model": model.name,
        "voice_whisper": speech_eval.whisper_tag(spec),
        "transcript_whisper": speech_eval.whisper_tag(None),
        "empty_transcripts": sum(1 for t in transcripts if not (t or "").strip()),
        "no_voice": dict(Counter(f for f in features if isinstance(f, str)))
        | ({"synthetic": synthetic} if synthetic else {}),
        "features_made": made,
    }
    return rows, summary


# --- RAVDESS end to end: actors the head never heard, through the Analyzer ---

HELD_OUT_FOLD = 3


def _sentiment_of(emotion: str) -> str:
    """RAVDESS has no sentiment label: the emotion's usual sentiment in MELD (surprise:
    negative, by a hair)."""
    given = SENTIMENT_GIVEN_EMOTION[emotion]
    return max(given, key=given.__getitem__)


def ravdess_rows(
    ravdess: str | Path, *, every: int, fold: int = HELD_OUT_FOLD, cache: Path | None = None
) -> tuple[list[Row], dict]:
    """Each `every`-th clip of RAVDESS fold `fold`'s actors, muxed over a plain grey frame and
    analysed by the Analyzer whose voice head was trained on the other folds only. A clip's
    reading is its longest utterance's (a RAVDESS clip is one sentence); no utterance: no
    reading. The Analyzer's outputs are cached in `cache` (JSON) so a rerun only scores."""
    import subprocess

    from mlcore.inference import Analyzer
    from training.emotional_speech import ravdess_clips, ravdess_fold
    from training.voice import DEFAULT_CACHE, features, fit

    clips = ravdess_clips(ravdess)
    cache = cache or DEFAULT_OUT / f"ravdess-fold{fold}-every{every}.json"
    done: dict = json.loads(cache.read_text()) if cache.is_file() else {}
    test = [c for c in clips if ravdess_fold(c) == fold][::every]
    if any(c.path.name not in done for c in test):
        x, kept = features(clips, None, DEFAULT_CACHE)
        train = [i for i, c in enumerate(kept) if ravdess_fold(c) != fold]
        head = fit(x[train], [kept[i] for i in train])
        head = dataclasses.replace(
            head,
            info=head.info | {"name": f"voice-emotion-without-fold-{fold}", "whisper": "tiny.en"},
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        head_path = cache.with_suffix(".npz")
        head.save(head_path)
        analyzer = Analyzer(voice_emotion_weights=head_path)
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / "clip.mp4"
            for clip in test:
                if clip.path.name in done:
                    continue
                subprocess.run(
                    ["ffmpeg", "-y", "-v", "error", "-f", "lavfi",
                     "-i", "color=c=gray:s=320x240:r=10", "-i", str(clip.path), "-shortest",
                     "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video)],
                    check=True,
                )  # fmt: skip
                result = analyzer.analyze(video)
                done[clip.path.name] = [
                    {
                        "duration": u.end - u.start,
                        "text": u.text,
                        "emotion_scores": u.emotion_scores,
                        "sentiment_scores": u.sentiment_scores,
                        "voice": u.voice,
                    }
                    for u in result.utterances
                ]
                cache.write_text(json.dumps(done))
    rows = []
    for clip in test:
        utterances = done[clip.path.name]
        u = max(utterances, key=lambda x: x["duration"]) if utterances else None
        rows.append(
            Row(
                EMOTIONS.index(clip.emotion),
                SENTIMENTS.index(_sentiment_of(clip.emotion)),
                _array(u and u["emotion_scores"], EMOTIONS),
                _array(u and u["sentiment_scores"], SENTIMENTS),
                u["voice"] if u and (u["voice"] or {}).get("emotion_scores") else None,
            )
        )
    return rows, {"clips": len(rows), "fold": fold, "every": every}


def _array(scores: dict | None, labels: Sequence[str]) -> np.ndarray | None:
    return None if not scores else np.array([scores[label] for label in labels])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="set", required=True)
    meld = sub.add_parser("meld", help="MELD dev through speech (espeak-ng)")
    meld.add_argument("--checkpoint", required=True, help="the words model")
    meld.add_argument("--split-csv", required=True, help="a MELD {split}_sent_emo.csv")
    meld.add_argument("--voice-weights", required=True, help="the voice-emotion head (.npz)")
    meld.add_argument("--limit", type=int, help="the first N lines only (default all)")
    meld.add_argument("--out", default=str(DEFAULT_OUT), help="folder for meld.json")
    meld.add_argument("--device", help="cpu or cuda for the words model (default: cuda if any)")
    ravdess = sub.add_parser("ravdess", help="held-out RAVDESS actors end to end")
    ravdess.add_argument("--ravdess", required=True, help="RAVDESS speech folder")
    ravdess.add_argument("--every", type=int, default=3, help="every N-th clip of the fold")
    ravdess.add_argument("--out", default=str(DEFAULT_OUT), help="folder for ravdess.json")
    args = parser.parse_args(argv)
    if args.set == "ravdess":
        rows, summary = ravdess_rows(args.ravdess, every=args.every)
        results = grid(rows, default_weights())
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "ravdess.json").write_text(
            json.dumps({"set": "ravdess held-out actors", **summary, "grid": results}, indent=1)
        )
        print(f"{summary['clips']} clips of fold {summary['fold']}")
        print(format_grid(results))
        return 0

    import torch

    torch.set_num_threads(1)  # a shared machine; the words model is small next to Whisper
    started = time.perf_counter()
    try:
        rows, summary = meld_line_scores(
            args.checkpoint,
            args.split_csv,
            args.voice_weights,
            limit=args.limit,
            device=args.device,
        )
    except TranscriptsMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    results = grid(rows, default_weights())
    words = results[0]["emotion"]["weighted_f1"]
    within = [
        r["voice_weight"]
        for r in results
        if r["name"] == "combined" and r["emotion"]["weighted_f1"] >= words - TOLERANCE
    ]
    out = {
        "set": "meld dev through speech (espeak-ng)",
        "checkpoint": str(args.checkpoint),
        "split_csv": str(args.split_csv),
        "voice_weights": str(args.voice_weights),
        **summary,
        "tolerance": TOLERANCE,
        "voice_weights_within_tolerance": within,
        "grid": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"{summary['lines']} lines; voice {summary['voice_model']} (Whisper "
        f"{summary['voice_whisper']}); no voice reading: {summary['no_voice'] or 0}; "
        f"{summary['features_made']} voice features made; {out['seconds']} s"
    )
    print(format_grid(results))
    print(f"voice weights within {TOLERANCE} of the words' emotion wF1: {within}")
    path = Path(args.out) / "meld.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
