"""Evaluate a checkpoint on a MELD split: accuracy, weighted and macro F1, per-class precision and
recall, confusion matrices (PNG) and a metrics JSON.

    python -m training.evaluate --checkpoint mlcore/weights/default.pt \
        --split-csv ../shared/meld/dev_sent_emo.csv [--clips DIR] [--out DIR] \
        [--speech [--speech-limit N] [--jobs 2]]

`--speech` adds the through-speech scores (`training.speech_eval`: the lines spoken by
espeak-ng and transcribed by the product's Whisper path, transcripts cached) beside the
gold-text ones, in the printout and in metrics.json under `through_speech`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support as prfs
from torch.utils.data import DataLoader
from tqdm import tqdm

from mlcore.checkpoint import load_checkpoint
from mlcore.labels import EMOTIONS, SENTIMENTS
from training import speech_eval
from training.meld import (
    BucketBatchSampler,
    MeldCollator,
    MeldDataset,
    MeldUtterance,
    read_meld_csv,
)

TASKS: dict[str, tuple[str, ...]] = {"emotion": EMOTIONS, "sentiment": SENTIMENTS}


def compute_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, weighted/macro F1, per-class precision/recall/F1/support and the confusion
    matrix (rows: true, columns: predicted) of one task. Classes are label indices."""
    classes = list(range(len(labels)))
    precision, recall, f1, support = prfs(y_true, y_pred, labels=classes, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)
        ),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
        ),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "labels": list(labels),
    }


def selection_score(metrics: dict) -> float:
    """What model selection maximises: the mean of emotion and sentiment weighted F1 (weighted
    F1 is MELD's usual figure; the mean keeps both heads honest)."""
    return (metrics["emotion"]["weighted_f1"] + metrics["sentiment"]["weighted_f1"]) / 2


def predict(
    model: torch.nn.Module, loader: DataLoader, device: torch.device, *, progress: bool = True
) -> dict[str, dict[str, list[int]]]:
    """True and predicted label indices per task, over the loader."""
    model.eval()
    out = {task: {"true": [], "pred": []} for task in TASKS}
    dropped = 0
    with torch.inference_mode():
        for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
            dropped += batch["dropped"]
            if not batch["size"]:
                continue
            logits = model(**model_inputs(batch, device))
            for task in TASKS:
                out[task]["true"].extend(batch[task].tolist())
                out[task]["pred"].extend(logits[task].argmax(-1).cpu().tolist())
    out["dropped"] = dropped
    return out


def model_inputs(batch: dict, device: torch.device) -> dict:
    """The batch's text/audio/video moved to `device`, as keyword arguments of the model."""
    return {
        "text": {k: v.to(device, non_blocking=True) for k, v in batch["text"].items()},
        "audio": None if batch["audio"] is None else batch["audio"].to(device),
        "video": None if batch["video"] is None else batch["video"].to(device),
    }


def metrics_from_predictions(predictions: dict) -> dict:
    metrics = {
        task: compute_metrics(predictions[task]["true"], predictions[task]["pred"], labels)
        for task, labels in TASKS.items()
    }
    metrics["score"] = selection_score(metrics)
    metrics["examples"] = len(predictions["emotion"]["true"])
    metrics["dropped"] = predictions["dropped"]
    return metrics


def save_confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    """Row-normalised confusion matrix (recall on the diagonal) with raw counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")  # no display: CI and workers
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(labels), 0.8 + 0.8 * len(labels)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour, fontsize=8)
    ax.set_title(path.stem.replace("_", " "))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(metrics: dict, out: Path) -> list[Path]:
    """metrics.json and one confusion-matrix PNG per task into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return [out / "metrics.json"] + [
        save_confusion_png(
            metrics[task]["confusion_matrix"], labels, out / f"{task}_confusion_matrix.png"
        )
        for task, labels in TASKS.items()
    ]


def evaluate_checkpoint(
    checkpoint: str | Path,
    split_csv: str | Path,
    *,
    clips: str | Path | None = None,
    out: str | Path | None = None,
    batch_size: int = 128,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Load the checkpoint, predict the split and return (and with `out`, write) the metrics.

    Without `clips`, audio/video branches get no input (the model's zero embedding), so a
    multimodal checkpoint is scored on text alone; `modalities_used` says so."""
    from transformers import AutoTokenizer

    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, info = load_checkpoint(checkpoint, torch_device)
    preprocess = info.config.preprocess
    modalities = info.config.modalities if clips else ("text",)
    utterances = read_meld_csv(
        split_csv, preprocess.context_utterances, preprocess.context_following
    )
    dataset = MeldDataset(utterances, preprocess, clips_dir=clips, modalities=modalities)
    tokenizer = AutoTokenizer.from_pretrained(
        info.config.resolved_text_encoder_path(), local_files_only=True
    )
    metrics = _score(
        model, tokenizer, dataset, torch_device, batch_size=batch_size, progress=progress
    )
    metrics.update(
        checkpoint=str(checkpoint),
        model_version=info.model_version,
        split_csv=str(split_csv),
        modalities_used=list(modalities),
        rows=len(utterances),
        **dataset.skip_report(),
    )
    if out is not None:
        write_report(metrics, Path(out))
    return metrics


def text_loader(dataset: MeldDataset, tokenizer, batch_size: int) -> DataLoader:
    """Scoring batches in length buckets (no shuffling); `batch["index"]` says which lines."""
    return DataLoader(
        dataset,
        batch_sampler=BucketBatchSampler(
            dataset.token_lengths(tokenizer), batch_size, shuffle=False
        ),
        collate_fn=MeldCollator(tokenizer, dataset.preprocess),
    )


def _score(model, tokenizer, dataset, device, *, batch_size: int, progress: bool) -> dict:
    loader = text_loader(dataset, tokenizer, batch_size)
    return metrics_from_predictions(predict(model, loader, device, progress=progress))


def score_utterances(
    model: torch.nn.Module,
    info,
    tokenizer,
    utterances: Sequence[MeldUtterance],
    *,
    device: torch.device,
    batch_size: int = 128,
    progress: bool = True,
) -> dict:
    """Text-only metrics of a loaded checkpoint on the given utterances (e.g. transcripts)."""
    dataset = MeldDataset(utterances, info.config.preprocess)
    return _score(model, tokenizer, dataset, device, batch_size=batch_size, progress=progress)


def format_summary(metrics: dict) -> str:
    lines = []
    for task in TASKS:
        m = metrics[task]
        lines.append(
            f"{task:9s} accuracy {m['accuracy']:.4f}  weighted F1 {m['weighted_f1']:.4f}  "
            f"macro F1 {m['macro_f1']:.4f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--split-csv", required=True, help="a MELD {split}_sent_emo.csv")
    parser.add_argument("--clips", help="folder of dia{D}_utt{U}.mp4 (for audio/video)")
    parser.add_argument("--out", help="folder for metrics.json and confusion-matrix PNGs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--speech", action="store_true", help="also score through speech (training.speech_eval)"
    )
    speech_eval.add_arguments(parser)
    args = parser.parse_args(argv)
    metrics = evaluate_checkpoint(
        args.checkpoint,
        args.split_csv,
        clips=args.clips,
        out=args.out,
        batch_size=args.batch_size,
        device=args.device,
    )
    if args.speech:
        speech = speech_eval.through_speech_metrics(
            args.checkpoint,
            args.split_csv,
            limit=args.speech_limit,
            cache_dir=args.speech_cache,
            whisper=args.whisper,
            voice_set=args.voices,
            jobs=args.jobs,
            batch_size=args.batch_size,
            device=args.device,
            progress=False,
        )
        metrics["through_speech"] = speech_eval.brief(speech)
        if args.out:
            write_report(metrics, Path(args.out))
    print(f"{metrics['model_version']} on {metrics['split_csv']} ({metrics['examples']} examples)")
    print(format_summary(metrics))
    if args.speech:
        print(speech_eval.format_comparison(speech))
    if metrics["skipped"] or metrics["dropped"]:
        print(f"skipped clips: {metrics['skipped']}, dropped at decode: {metrics['dropped']}")
    if args.out:
        print(f"wrote {args.out}/metrics.json and confusion-matrix PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
