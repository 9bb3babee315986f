"""Voice-emotion baselines (issue 27), measured under the same protocol as `training.voice`.

Two candidates against the frozen-Whisper-encoder one:

- prosody: the product's own prosody measurements (`mlcore.voice`: pitch median and range,
  voiced fraction, loudness) plus a compact eGeMAPS-like set of per-utterance statistics
  (pitch in semitones, level, voicing runs, spectral shape, zero crossings, MFCC 1-13), read
  by a logistic regression, a random forest and histogram gradient boosting.
- cnn: the seed's audio branch (`mlcore.model.AudioEncoder`) on the project's log-mel
  spectrogram (`mlcore.media.log_mel`), trained from scratch with a linear 7-class head.

Every clip is decoded by `mlcore.media.load_audio` (FFmpeg, 16 kHz mono) and trimmed by
`mlcore.voice_emotion.trim`, as for the Whisper candidate. Protocol: 4-fold speaker-independent
cross-validation on RAVDESS (`ravdess_fold`, actor pairs), then trained on all of RAVDESS and
tested on all of TESS (never trained on). Also the CPU seconds per second of audio of feature
extraction and prediction (one thread). Features are cached under --cache.

    python -m training.voice_baselines --ravdess DIR --tess DIR [--candidate prosody|cnn|all]
        [--out report.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.labels import EMOTIONS
from mlcore.media import MediaError, load_audio, log_mel
from mlcore.voice_emotion import SAMPLE_RATE, prosody_features, trim
from training.emotional_speech import (
    FOLDS,
    HIGH_AROUSAL,
    Clip,
    ravdess_clips,
    ravdess_fold,
    tess_clips,
)
from training.voice import DEFAULT_CACHE, arousal_targets, auc, labels, uar

CANDIDATES = ("prosody", "cnn")
# Classes whose summed probability is the emotion classifier's arousal score.
HIGH_AROUSAL_INDEX = [EMOTIONS.index(e) for e in sorted(HIGH_AROUSAL)]
# Logistic regression C, fixed beforehand (not tuned on the test folds); a sweep is reported
# separately and is optimistic.
DEFAULT_C = 0.1
C_SWEEP = (0.01, 0.03, 0.1, 0.3, 1.0)
# CNN: the seed's encoder over the first CNN_STEPS of the 300 log-mel steps. A trimmed RAVDESS
# clip spans 2.0 s (median; 95% under 3.1 s = 96 steps); the full 300 would cost 3x the CPU to
# read mostly padding.
CNN_STEPS = 96
CNN_EPOCHS = 15
CNN_BATCH = 32
CNN_LR = 1e-3
CNN_FREQ_MASK = 8  # bins, at most, masked once per training example (SpecAugment-style)
CNN_TIME_MASK = 12  # steps
TIMING_CLIPS = 100
PREPROCESS = PreprocessConfig()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_trimmed(clip: Clip) -> np.ndarray:
    return trim(load_audio(clip.path, SAMPLE_RATE))


# --- Prosody features ---


def prosody_vector(audio: np.ndarray) -> np.ndarray:
    return np.array(list(prosody_features(audio).values()), dtype=np.float32)


def prosody_names() -> list[str]:
    return list(prosody_features(np.zeros(SAMPLE_RATE, dtype=np.float32) + 1e-3).keys())


def mel_matrix(audio: np.ndarray) -> np.ndarray:
    """The project's log-mel of the whole trimmed clip, (64, 300); float16 keeps the cache
    small (dB values, 0.03 dB steps at most)."""
    return log_mel(audio, 0.0, audio.size / SAMPLE_RATE, PREPROCESS).astype(np.float16)


EXTRACTORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "prosody": prosody_vector,
    "cnn": mel_matrix,
}


def features(
    clips: Sequence[Clip], candidates: Sequence[str], cache: Path
) -> tuple[dict[str, np.ndarray], np.ndarray, list[Clip]]:
    """Each candidate's features of the readable `clips`, their trimmed durations (s) and those
    clips; one decoding pass for whatever is not cached yet. A clip FFmpeg cannot decode is
    left out (2 of the TESS files are AIFF named .wav, a format `load_audio` refuses)."""
    cache.mkdir(parents=True, exist_ok=True)
    names = np.array([str(c.path) for c in clips])
    corpus = clips[0].corpus
    found: dict[str, np.ndarray] = {}
    durations, readable = None, np.ones(len(clips), dtype=bool)
    for candidate in candidates:
        file = cache / f"baseline-{candidate}-{corpus}.npz"
        if file.is_file():
            with np.load(file) as data:
                if data["names"].shape == names.shape and (data["names"] == names).all():
                    found[candidate], durations = data["x"], data["durations"]
                    if "readable" in data:
                        readable = data["readable"]
    missing = [c for c in candidates if c not in found]
    if missing:
        rows: dict[str, list[np.ndarray]] = {c: [] for c in missing}
        seconds, started = [], time.perf_counter()
        for i, clip in enumerate(clips):
            try:
                audio = load_trimmed(clip)
            except MediaError as error:
                log(f"  left out: {error}")
                readable[i] = False
                continue
            seconds.append(audio.size / SAMPLE_RATE)
            for candidate in missing:
                rows[candidate].append(EXTRACTORS[candidate](audio))
            if (i + 1) % 200 == 0:
                elapsed = time.perf_counter() - started
                log(f"  {corpus} {missing}: {i + 1}/{len(clips)}, {elapsed:.0f} s")
        durations = np.array(seconds, dtype=np.float32)
        for candidate in missing:
            found[candidate] = np.stack(rows[candidate])
            file = cache / f"baseline-{candidate}-{corpus}.npz"
            np.savez(file, x=found[candidate], names=names, durations=durations, readable=readable)
    return found, durations, [c for c, ok in zip(clips, readable, strict=True) if ok]


# --- Classifiers: fit(x, clips) -> predict(x) -> (emotion probabilities, arousal) ---

# A predictor returns (emotion probabilities (n, 7), P(high arousal) (n,) or None where the
# candidate has no arousal classifier of its own).
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def sklearn_fitter(
    kind: str, c: float = DEFAULT_C
) -> Callable[[np.ndarray, Sequence[Clip]], Predictor]:
    """An emotion classifier and a binary arousal classifier of the same kind."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make():
        if kind == "logreg":
            return make_pipeline(
                SimpleImputer(strategy="median"),
                StandardScaler(),
                LogisticRegression(C=c, max_iter=5000, class_weight="balanced"),
            )
        if kind == "random_forest":
            return make_pipeline(
                SimpleImputer(strategy="median"),
                RandomForestClassifier(
                    n_estimators=500,
                    min_samples_leaf=2,
                    class_weight="balanced",
                    n_jobs=1,
                    random_state=0,
                ),
            )
        if kind == "hist_gradient_boosting":
            # Missing pitch (NaN) is handled natively.
            return HistGradientBoostingClassifier(
                learning_rate=0.05,
                max_iter=300,
                max_leaf_nodes=15,
                l2_regularization=1.0,
                class_weight="balanced",
                random_state=0,
            )
        raise ValueError(kind)

    def fit(x: np.ndarray, clips: Sequence[Clip], rows: np.ndarray) -> Predictor:
        y = labels(clips)
        emotion = make().fit(x, y)
        a = arousal_targets(clips)
        arousal = make().fit(x[a >= 0], a[a >= 0])

        def predict(z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            return emotion.predict_proba(z), arousal.predict_proba(z)[:, 1]

        return predict

    return fit


def _mel_input(mel: np.ndarray, offsets: np.ndarray | None = None):
    """(n, 1, 64, CNN_STEPS) float tensor from cached (n, 64, 300) dB matrices, scaled to about
    [-1, 1]; from `offsets` (training crops) or the start."""
    import torch

    if offsets is None:
        offsets = np.zeros(len(mel), dtype=int)
    crops = np.stack([m[:, o : o + CNN_STEPS] for m, o in zip(mel, offsets, strict=True)])
    return torch.from_numpy((crops.astype(np.float32) + 40.0) / 40.0)[:, None]


def cnn_model():
    """The seed's audio branch and a linear 7-class head."""
    from torch import nn

    from mlcore.model import AudioEncoder

    config = ModelConfig()
    return nn.Sequential(AudioEncoder(config), nn.Linear(config.projection_dim, len(EMOTIONS)))


def cnn_fitter(
    durations: np.ndarray, epochs: int = CNN_EPOCHS, seed: int = 0
) -> Callable[[np.ndarray, Sequence[Clip]], Predictor]:
    """Adam, class-balanced cross-entropy, random crops and one frequency and one time mask per
    example. `durations` are those of the training rows (for the crops' range)."""

    def fit(mel: np.ndarray, clips: Sequence[Clip], rows: np.ndarray) -> Predictor:
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        y = labels(clips)
        counts = np.bincount(y, minlength=len(EMOTIONS))
        weight = torch.tensor(len(y) / (len(EMOTIONS) * np.maximum(counts, 1)), dtype=torch.float32)
        steps = np.ceil(durations[rows] * SAMPLE_RATE / PREPROCESS.hop_length).astype(int)
        room = np.clip(np.minimum(steps, PREPROCESS.mel_steps) - CNN_STEPS, 0, None)
        model = cnn_model()
        optimiser = torch.optim.Adam(model.parameters(), lr=CNN_LR)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        target = torch.from_numpy(y)
        started = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for batch in np.array_split(rng.permutation(len(y)), math.ceil(len(y) / CNN_BATCH)):
                x = _mel_input(mel[batch], rng.integers(0, room[batch] + 1))
                for row in x:  # masks filled with the floor (silence)
                    f, t = rng.integers(0, CNN_FREQ_MASK + 1), rng.integers(0, CNN_TIME_MASK + 1)
                    f0 = rng.integers(0, row.shape[1] - f + 1)
                    t0 = rng.integers(0, row.shape[2] - t + 1)
                    row[:, f0 : f0 + f] = -1.0
                    row[:, :, t0 : t0 + t] = -1.0
                loss = loss_fn(model(x), target[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            elapsed = time.perf_counter() - started
            log(f"    epoch {epoch + 1}: loss {total / len(y):.3f}, {elapsed:.0f} s")
        model.eval()

        def predict(z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            with torch.no_grad():
                probs = [
                    torch.softmax(model(_mel_input(z[i : i + 256])), 1).numpy()
                    for i in range(0, len(z), 256)
                ]
            return np.concatenate(probs), None

        return predict

    return fit


# --- Protocol ---


def metrics(emotion: np.ndarray, arousal: np.ndarray | None, clips: Sequence[Clip]) -> dict:
    """UAR, accuracy, arousal AUCs (high vs low, and strong vs normal intensity where the corpus
    has it) and the confusion matrix, as `training.voice.cross_validate` computes them. The
    arousal score is `arousal` where given, else the summed high-arousal emotion probability
    (reported as summed_* too when both exist)."""
    y, pred, a = labels(clips), emotion.argmax(axis=1), arousal_targets(clips)
    summed = emotion[:, HIGH_AROUSAL_INDEX].sum(axis=1)
    strong = np.array([c.strong is not None and c.emotion != "neutral" for c in clips])
    s = np.array([bool(c.strong) for c in clips])
    out: dict = {
        "clips": len(clips),
        "uar": round(uar(y, pred), 4),
        "accuracy": round(float(np.mean(y == pred)), 4),
    }
    scores = {"": summed} if arousal is None else {"": arousal, "summed_emotion_": summed}
    for prefix, score in scores.items():
        out[f"{prefix}arousal_auc_high_vs_low"] = round(auc(score[a >= 0], a[a >= 0]), 4)
        if strong.any():
            out[f"{prefix}arousal_auc_strong_vs_normal"] = round(auc(score[strong], s[strong]), 4)
    out["confusion"] = [[int(np.sum((y == i) & (pred == j))) for j in range(7)] for i in range(7)]
    return out


def protocol(
    fit,
    x: np.ndarray,
    ravdess: Sequence[Clip],
    x_tess: Callable[[], tuple[np.ndarray, list[Clip]]] | None,
) -> dict:
    """Speaker-independent CV on RAVDESS, then all of RAVDESS -> TESS (`x_tess` gives the TESS
    features, read only then). `fit(x, clips, rows)` gets the training rows' indices too (the
    CNN's crops need their durations)."""
    folds = np.array([ravdess_fold(clip) for clip in ravdess])
    emotion = np.zeros((len(ravdess), len(EMOTIONS)))
    arousal: np.ndarray | None = np.zeros(len(ravdess))
    for k in range(FOLDS):
        started = time.process_time()
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        predict = fit(x[train], [ravdess[i] for i in train], train)
        emotion[test], fold_arousal = predict(x[test])
        if fold_arousal is None:
            arousal = None
        else:
            arousal[test] = fold_arousal
        log(f"  fold {k}: {time.process_time() - started:.0f} CPU s")
    cv = metrics(emotion, arousal, ravdess)
    y, pred = labels(ravdess), emotion.argmax(axis=1)
    cv["per_fold_uar"] = [round(uar(y[folds == k], pred[folds == k]), 4) for k in range(FOLDS)]
    report = {"ravdess_speaker_independent": cv}
    if x_tess is not None:
        predict = fit(x, ravdess, np.arange(len(ravdess)))
        features, tess = x_tess()
        report["tess_cross_corpus"] = metrics(*predict(features), tess)
        report["_predict"] = predict
    return report


def cpu_cost(clips: Sequence[Clip], extract: Callable, predicts: dict[str, Predictor]) -> dict:
    """CPU seconds per second of trimmed audio: trimming and feature extraction, then each
    predictor, clip by clip (decoding by FFmpeg is not counted: it is shared by every
    candidate and runs in another process)."""
    chosen = [clips[i] for i in np.linspace(0, len(clips) - 1, TIMING_CLIPS).astype(int)]
    raw = [load_audio(c.path, SAMPLE_RATE) for c in chosen]
    extract(trim(raw[0]))  # librosa's numba code compiles on first use: not a per-clip cost
    started = time.process_time()
    trimmed = [trim(a) for a in raw]
    rows = [extract(a) for a in trimmed]
    extract_s = time.process_time() - started
    seconds = sum(a.size for a in trimmed) / SAMPLE_RATE
    out = {
        "clips": len(chosen),
        "audio_s": round(seconds, 1),
        "extract_cpu_s_per_audio_s": round(extract_s / seconds, 5),
    }
    for name, predict in predicts.items():
        started = time.process_time()
        for row in rows:
            predict(row[None])
        predict_s = time.process_time() - started
        out[f"{name}_predict_cpu_s_per_audio_s"] = round(predict_s / seconds, 5)
        out[f"{name}_total_cpu_s_per_audio_s"] = round((extract_s + predict_s) / seconds, 5)
    return out


def run_prosody(ravdess, x, x_tess, c: float) -> dict:
    report: dict = {
        "features": prosody_names(),
        "arousal": "P(high arousal) of a binary classifier of the same kind trained on "
        "arousal_targets >= 0; summed_emotion_* use P(anger+fear+joy+surprise) of the emotion "
        "classifier",
        "logreg_c": c,
    }
    predicts = {}
    for kind in ("logreg", "random_forest", "hist_gradient_boosting"):
        log(f"prosody {kind}")
        result = protocol(sklearn_fitter(kind, c), x, ravdess, x_tess)
        predicts[kind] = result.pop("_predict", None)
        report[kind] = result
    # Optimistic (chosen on the test folds): only to show how much C matters.
    report["logreg_c_sweep_cv_uar"] = {
        str(value): protocol(sklearn_fitter("logreg", value), x, ravdess, None)[
            "ravdess_speaker_independent"
        ]["uar"]
        for value in C_SWEEP
    }
    if all(predicts.values()):
        report["cpu_cost"] = cpu_cost(ravdess, prosody_vector, predicts)
    return report


def run_cnn(ravdess, mel, durations, mel_tess, *, epochs: int) -> dict:
    log("cnn")
    report: dict = {
        "model": "mlcore.model.AudioEncoder (3 conv blocks 32/64/128, default ModelConfig) + "
        "linear 7-class head, trained from scratch",
        "input": f"mlcore.media.log_mel (64 mels, 32 ms hop), first {CNN_STEPS} of its "
        f"{PREPROCESS.mel_steps} steps; training crops at a random start within the clip",
        "training": f"Adam lr {CNN_LR}, {epochs} epochs, batch {CNN_BATCH}, class-balanced "
        f"cross-entropy, one frequency (<= {CNN_FREQ_MASK} bins) and one time "
        f"(<= {CNN_TIME_MASK} steps) mask per example, seed 0, 1 CPU thread",
        "arousal": "summed probability of anger+fear+joy+surprise from the emotion head",
    }
    result = protocol(cnn_fitter(durations, epochs), mel, ravdess, mel_tess)
    predict = result.pop("_predict", None)
    report.update(result)
    if predict:
        report["cpu_cost"] = cpu_cost(ravdess, mel_matrix, {"cnn": predict})
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ravdess", required=True, type=Path, help="RAVDESS speech folder")
    parser.add_argument("--tess", type=Path, help="TESS folder (cross-corpus test only)")
    parser.add_argument("--candidate", choices=[*CANDIDATES, "all"], default="all")
    parser.add_argument("--c", type=float, default=DEFAULT_C, help="logistic regression C")
    parser.add_argument("--epochs", type=int, default=CNN_EPOCHS, help="CNN training epochs")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args(argv)

    import sklearn.ensemble  # noqa: F401  (its OpenMP runtime loaded before the limit below)
    import torch
    from threadpoolctl import threadpool_limits

    # One thread: the cost figures are per core, and the machine is shared.
    torch.set_num_threads(1)
    threadpool_limits(1)
    candidates = list(CANDIDATES) if args.candidate == "all" else [args.candidate]
    ravdess = ravdess_clips(args.ravdess)
    tess = tess_clips(args.tess) if args.tess else []
    all_ravdess = len(ravdess)
    x, durations, ravdess = features(ravdess, candidates, args.cache)

    @functools.cache
    def tess_features() -> tuple[dict[str, np.ndarray], list[Clip]]:
        # Read after the RAVDESS cross-validation: a long run need not wait for TESS's decoding.
        found, _, readable = features(tess, candidates, args.cache)
        report["clips_left_out"] = {
            "ravdess": all_ravdess - len(ravdess),
            "tess": sorted({str(c.path) for c in tess} - {str(c.path) for c in readable}),
        }
        return found, readable

    def tess_of(candidate: str) -> Callable[[], tuple[np.ndarray, list[Clip]]] | None:
        return (lambda: (tess_features()[0][candidate], tess_features()[1])) if tess else None

    report: dict = {
        "protocol": f"RAVDESS {len(ravdess)} clips, {FOLDS} speaker-independent folds "
        "(ravdess_fold); cross-corpus: trained on all RAVDESS, tested on all TESS",
        "trimmed_duration_s": {
            "ravdess_median": round(float(np.median(durations)), 2),
            "ravdess_p90": round(float(np.percentile(durations, 90)), 2),
        },
    }
    if "prosody" in candidates:
        report["prosody"] = run_prosody(ravdess, x["prosody"], tess_of("prosody"), args.c)
    if "cnn" in candidates:
        report["cnn"] = run_cnn(ravdess, x["cnn"], durations, tess_of("cnn"), epochs=args.epochs)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
