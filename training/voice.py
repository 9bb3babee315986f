"""Voice-emotion training and evaluation on real emotional speech (`mlcore.voice_emotion`).

    # features once per Whisper model (cached under --cache), then the speaker-independent
    # protocol on RAVDESS and the cross-corpus test on TESS, then the shipped head
    python -m training.voice evaluate --ravdess DIR --tess DIR [--whisper tiny.en|base]
    python -m training.voice train --ravdess DIR --tess DIR --out mlcore/weights/voice_emotion.npz

Clips are decoded by `mlcore.media.load_audio` (FFmpeg, 16 kHz mono) and embedded by
`mlcore.voice_emotion.embed`, exactly as the Analyzer does for an utterance. The head is
trained on RAVDESS only: TESS's licence (CC BY-NC-ND) allows testing, not derived weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlcore.labels import EMOTIONS
from mlcore.media import MediaError, load_audio
from mlcore.transcribe import load_whisper
from mlcore.voice_emotion import (
    PROSODY_FEATURES,
    SAMPLE_RATE,
    SYNTHETIC_THRESHOLD,
    VoiceEmotionModel,
    embed,
)
from mlcore.weights import file_sha256
from training.emotional_speech import (
    FOLDS,
    Clip,
    ravdess_clips,
    ravdess_fold,
    tess_clips,
)
from training.meld import REPO_ROOT, split_csv

DEFAULT_CACHE = REPO_ROOT / "var" / "voice_features"
FEATURES_VERSION = "whisper-prosody-v2"
DEFAULT_SYNTHETIC_NEUTRAL = 600
# in the cache file's name: other features, other file
# The regularisation of the logistic regressions (sklearn's C), chosen on RAVDESS folds.
DEFAULT_C = 0.002
AROUSAL_C = 0.01
# How far a strong or normal intensity moves the arousal target (`arousal_level`), chosen on
# RAVDESS folds: larger ranks strong over normal better, and high over low emotions worse.
AROUSAL_INTENSITY_STEP = 0.25


def whisper_key(spec: str | None) -> str:
    return spec or "tiny.en"


def features(
    clips: Sequence[Clip], whisper_spec: str | None, cache: Path
) -> tuple[np.ndarray, list[Clip]]:
    """Embeddings (n, d) of the `clips` FFmpeg can decode, and those clips (the others are
    reported and left out), computed once per clip and Whisper model, then cached."""
    cache.mkdir(parents=True, exist_ok=True)
    file = cache / f"{clips[0].corpus}-{whisper_key(whisper_spec)}-{FEATURES_VERSION}.npz"
    names = np.array([str(c.path) for c in clips])
    if file.is_file():
        with np.load(file) as data:
            if data["names"].shape == names.shape and (data["names"] == names).all():
                kept = data["kept"]
                return data["x"], [c for c, k in zip(clips, kept, strict=True) if k]
    whisper = load_whisper(whisper_spec)
    rows, kept, started = [], [], time.perf_counter()
    for i, clip in enumerate(clips):
        try:
            audio = load_audio(clip.path, SAMPLE_RATE)
        except MediaError as exc:  # TESS holds a few AIFF files named .wav
            print(f"  left out: {exc}", flush=True)
            kept.append(False)
            continue
        rows.append(embed(whisper, audio))
        kept.append(True)
        if (i + 1) % 200 == 0:
            print(
                f"  {i + 1}/{len(clips)} clips, {time.perf_counter() - started:.0f} s", flush=True
            )
    x = np.stack(rows)
    np.savez(file, x=x, names=names, kept=np.array(kept))
    return x, [c for c, k in zip(clips, kept, strict=True) if k]


def synthetic_neutral_clips(count: int, directory: Path, meld_csv: Path) -> list[Clip]:
    """`count` MELD *train* lines spoken by espeak-ng's training voices (`speech_eval.
    TRAIN_VOICES`, never the evaluation's), labelled neutral: a synthetic voice carries no
    emotion, and without such examples the head read espeak-ng as anger at 0.9. MELD dev and
    the evaluation voices stay unseen, so the through-speech fusion test is still held out."""
    from training import speech_eval
    from training.meld import read_meld_csv

    directory.mkdir(parents=True, exist_ok=True)
    lines = [u for u in read_meld_csv(meld_csv) if speech_eval.spoken_text(u.text)]
    step = max(1, len(lines) // count)
    clips = []
    for u in lines[::step][:count]:
        speaking = speech_eval.speaking_for(u.dialogue_id, u.utterance_id, speech_eval.TRAIN_VOICES)
        wav = directory / f"dia{u.dialogue_id}_utt{u.utterance_id}.wav"
        if not wav.is_file():
            speech_eval._speak(speech_eval.spoken_text(u.text), wav, speaking)
        clips.append(
            Clip(
                path=wav, emotion="neutral", speaker=f"espeak-{speaking.voice}", corpus="synthetic"
            )
        )
    return clips


def labels(clips: Sequence[Clip]) -> np.ndarray:
    return np.array([c.label for c in clips])


def arousal_targets(clips: Sequence[Clip]) -> np.ndarray:
    """1 high, 0 low, -1 neither (disgust): what the high-vs-low arousal AUC is scored on."""
    return np.array([-1 if c.high_arousal is None else int(c.high_arousal) for c in clips])


def arousal_level(clip: Clip, step: float = AROUSAL_INTENSITY_STEP) -> float:
    """How activated the clip's voice is meant to be, 0-1, from both RAVDESS labels: the
    emotion's arousal (low 0, disgust 0.5, high 1) moved by the intensity (strong +step,
    normal -step; low emotions only rise, by 2 x step, when strong). Neutral has one level."""
    base = {True: 1.0, False: 0.0, None: 0.5}[clip.high_arousal]
    if clip.strong is None or (clip.emotion == "neutral" and not clip.calm):
        return base
    if clip.high_arousal is False:
        return min(1.0, base + (2 * step if clip.strong else 0.0))
    return float(np.clip(base + (step if clip.strong else -step), 0.0, 1.0))


def fit(x: np.ndarray, clips: Sequence[Clip], c: float = DEFAULT_C, info: dict | None = None):
    """The head trained on `x`: standardisation and the emotion and arousal regressions from the
    emotional clips; where `clips` include synthetic speech (corpus "synthetic"), a third
    regression that tells it from people's voices (the emotion heads never see it)."""
    from sklearn.linear_model import LogisticRegression

    synthetic = np.array([clip.corpus == "synthetic" for clip in clips])
    x_all = x
    x, clips = x[~synthetic], [clip for clip, s in zip(clips, synthetic, strict=True) if not s]
    mean = np.nanmean(x, axis=0)
    x = np.where(np.isnan(x), mean, x)
    # The prosody block (last PROSODY_FEATURES columns) weighted up so its few columns count as
    # much as the Whisper block under one L2 penalty.
    weight = np.ones(x.shape[1])
    weight[-PROSODY_FEATURES:] = np.sqrt((x.shape[1] - PROSODY_FEATURES) / PROSODY_FEATURES)
    scale = (x.std(axis=0) + 1e-6) / weight
    z = (x - mean) / scale
    y = labels(clips)
    emotion = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(z, y)
    # Arousal: a logistic regression on soft targets (each clip once as "activated" weighted by
    # its level, once as "calm" weighted by the rest), so its output is a calibrated 0-1 level.
    level = np.array([arousal_level(clip) for clip in clips])
    arousal = LogisticRegression(C=AROUSAL_C, max_iter=3000).fit(
        np.concatenate([z, z]),
        np.r_[np.ones(len(z)), np.zeros(len(z))],
        sample_weight=np.r_[level, 1.0 - level],
    )
    if list(emotion.classes_) != list(range(len(EMOTIONS))):
        raise ValueError("every emotion must occur in the training clips")
    synthetic_coef, synthetic_bias = np.zeros(x.shape[1]), -np.inf  # never synthetic
    if synthetic.any():
        z_all = (np.where(np.isnan(x_all), mean, x_all) - mean) / scale
        detector = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        detector.fit(z_all, synthetic)
        synthetic_coef, synthetic_bias = detector.coef_[0], float(detector.intercept_[0])
    return VoiceEmotionModel(
        mean=mean,
        scale=scale,
        emotion_coef=emotion.coef_,
        emotion_bias=emotion.intercept_,
        arousal_coef=arousal.coef_[0],
        arousal_bias=float(arousal.intercept_[0]),
        synthetic_coef=synthetic_coef,
        synthetic_bias=synthetic_bias,
        info=info or {"labels": list(EMOTIONS), "whisper": "", "name": "fold"},
    )


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted average recall over the classes present in `y_true`."""
    return float(np.mean([np.mean(y_pred[y_true == k] == k) for k in np.unique(y_true)]))


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


def scores(model: VoiceEmotionModel, x: np.ndarray, clips: Sequence[Clip]) -> dict:
    """UAR, accuracy, arousal AUCs and the confusion matrix of `model` on `clips`."""
    emotion, arousal = model.predict(x)
    y, pred = labels(clips), emotion.argmax(axis=1)
    a = arousal_targets(clips)
    out = {
        "clips": len(clips),
        "read_as_synthetic": int(np.sum(model.synthetic(x) >= SYNTHETIC_THRESHOLD)),
        "uar": round(uar(y, pred), 4),
        "accuracy": round(float(np.mean(y == pred)), 4),
        "arousal_auc_high_vs_low": round(auc(arousal[a >= 0], a[a >= 0]), 4),
        "confusion": [[int(np.sum((y == i) & (pred == j))) for j in range(7)] for i in range(7)],
    }
    strong = np.array([c.strong is not None and c.emotion != "neutral" for c in clips])
    if strong.any():
        s = np.array([bool(c.strong) for c in clips])
        out["arousal_auc_strong_vs_normal"] = round(auc(arousal[strong], s[strong]), 4)
    return out


def speaker_normalised(x: np.ndarray, clips: Sequence[Clip]) -> np.ndarray:
    """Each clip's features less its speaker's mean (a video's utterances, in the product)."""
    out = x.copy()
    speakers = np.array([c.speaker for c in clips])
    for s in np.unique(speakers):
        out[speakers == s] -= np.nanmean(x[speakers == s], axis=0)
    return out


def cross_validate(
    x: np.ndarray,
    clips: Sequence[Clip],
    c: float,
    extra: tuple[np.ndarray, Sequence[Clip]] | None = None,
) -> dict:
    """RAVDESS, FOLDS folds by actor pair: every clip predicted by a head that never heard its
    actor. `extra` (features, clips) join every fold's training set, never its test."""
    folds = np.array([ravdess_fold(clip) for clip in clips])
    emotion = np.zeros((len(clips), len(EMOTIONS)))
    arousal = np.zeros(len(clips))
    flagged = np.zeros(len(clips), dtype=bool)
    x_extra, clips_extra = extra if extra else (x[:0], [])
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        model = fit(
            np.concatenate([x[train], x_extra]),
            [clips[i] for i in np.flatnonzero(train)] + list(clips_extra),
            c,
        )
        emotion[test], arousal[test] = model.predict(x[test])
        flagged[test] = model.synthetic(x[test]) >= SYNTHETIC_THRESHOLD
    y, pred, a = labels(clips), emotion.argmax(axis=1), arousal_targets(clips)
    strong = np.array([c.emotion != "neutral" for c in clips])
    s = np.array([bool(c.strong) for c in clips])
    return {
        "uar": round(uar(y, pred), 4),
        "accuracy": round(float(np.mean(y == pred)), 4),
        "arousal_auc_high_vs_low": round(auc(arousal[a >= 0], a[a >= 0]), 4),
        "arousal_auc_strong_vs_normal": round(auc(arousal[strong], s[strong]), 4),
        "read_as_synthetic": int(flagged.sum()),
        "per_fold_uar": [round(uar(y[folds == k], pred[folds == k]), 4) for k in range(FOLDS)],
        "confusion": [[int(np.sum((y == i) & (pred == j))) for j in range(7)] for i in range(7)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["evaluate", "train"])
    parser.add_argument("--ravdess", required=True, type=Path, help="RAVDESS speech folder")
    parser.add_argument("--tess", type=Path, help="TESS folder (cross-corpus test only)")
    parser.add_argument("--whisper", default=None, help="Whisper model (default tiny.en)")
    parser.add_argument("--c", type=float, default=DEFAULT_C, help="logistic regression C")
    parser.add_argument("--speaker-norm", action="store_true", help="subtract speaker means")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, help="where train writes the head (.npz)")
    parser.add_argument(
        "--synthetic-neutral",
        type=int,
        default=DEFAULT_SYNTHETIC_NEUTRAL,
        help="MELD train lines spoken by espeak-ng's training voices, added as neutral (0: none)",
    )
    parser.add_argument("--meld-train", type=Path, help="MELD train csv (default: MELD_DIR)")
    args = parser.parse_args(argv)

    ravdess = ravdess_clips(args.ravdess)
    x, ravdess = features(ravdess, args.whisper, args.cache)
    tess = tess_clips(args.tess) if args.tess else []
    x_tess, tess = features(tess, args.whisper, args.cache) if tess else (None, [])
    if args.speaker_norm:
        x = speaker_normalised(x, ravdess)
        x_tess = speaker_normalised(x_tess, tess) if tess else None
    report: dict = {"whisper": whisper_key(args.whisper), "c": args.c}
    report["speaker_normalised"] = args.speaker_norm
    extra = None
    if args.synthetic_neutral:
        synthetic = synthetic_neutral_clips(
            args.synthetic_neutral,
            args.cache / "synthetic-neutral",
            args.meld_train or split_csv("train"),
        )
        extra = features(synthetic, args.whisper, args.cache)
    report["synthetic_neutral"] = len(extra[1]) if extra else 0
    report["ravdess_speaker_independent"] = cross_validate(x, ravdess, args.c, extra)
    info = {
        "name": f"voice-emotion-whisper-{whisper_key(args.whisper)}-ravdess",
        "labels": list(EMOTIONS),
        "whisper": whisper_key(args.whisper),
        "trained_on": "RAVDESS speech, 24 actors, 1,440 clips (calm read as neutral)",
        "licence": "CC BY-NC-SA 4.0 (derived from RAVDESS)",
        "c": args.c,
    }
    model = (
        fit(np.concatenate([x, extra[0]]), ravdess + extra[1], args.c, info)
        if extra
        else fit(x, ravdess, args.c, info)
    )
    if tess:
        report["tess_cross_corpus"] = scores(model, x_tess, tess)
    print(json.dumps(report, indent=1))
    if args.command == "train":
        if args.speaker_norm:
            parser.error("the shipped head reads raw features: train without --speaker-norm")
        info["figures"] = {
            "ravdess_uar": report["ravdess_speaker_independent"]["uar"],
            "tess_uar": report.get("tess_cross_corpus", {}).get("uar"),
        }
        out = args.out or REPO_ROOT / "mlcore" / "weights" / "voice_emotion.npz"
        model.save(out)
        # Shipping it: record this in mlcore.voice_emotion.DEFAULT_WEIGHTS_SHA256.
        print(f"wrote {out} (SHA-256 {file_sha256(out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
