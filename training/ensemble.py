"""Score an ensemble: the mean of several checkpoints' probabilities, per MELD line.

    python -m training.ensemble --checkpoint A.pt --checkpoint B.pt \
        --split-csv ../shared/meld/dev_sent_emo.csv [--voices eval|flite]

Each checkpoint reads the lines as `training.evaluate` has it read them (its own tokenizer and
dialogue context); `--voices` reads them through speech instead, from the transcripts
`training.speech_eval` cached (made there first, e.g. `--transcribe-only eval`). Prints each
member's weighted F1 and the ensemble's; nothing is shipped from here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from training import speech_eval
from training.evaluate import TASKS, compute_metrics, model_inputs, text_loader
from training.meld import MeldDataset, read_meld_csv, with_texts


def line_probabilities(
    checkpoint: str | Path,
    split_csv: str | Path,
    *,
    voice_set: str | None = None,
    cache_dir: str | Path = speech_eval.DEFAULT_CACHE_DIR,
    batch_size: int = 64,
    device: str | None = None,
) -> dict[str, np.ndarray]:
    """Per task, (lines, classes) probabilities in the split's line order, and the true labels
    under "<task>_true". With `voice_set`, the lines are read as their cached transcripts."""
    model, info, tokenizer, torch_device = speech_eval._load(checkpoint, device)
    preprocess = info.config.preprocess
    context = (preprocess.context_utterances, preprocess.context_following)
    lines = read_meld_csv(split_csv, *context)
    if voice_set is not None:
        voices = speech_eval.VOICE_SETS[voice_set]
        transcripts = speech_eval.cached_transcripts(lines, cache_dir, voices=voices)
        missing = sum(1 for t in transcripts if t is None)
        if missing:
            raise FileNotFoundError(
                f"{missing} of {len(lines)} lines have no cached transcript in {cache_dir}: run "
                f"python -m training.speech_eval --split-csv {split_csv} --transcribe-only "
                f"{voice_set} first"
            )
        lines = with_texts(lines, transcripts, *context)
    loader = text_loader(MeldDataset(lines, preprocess), tokenizer, batch_size)
    out = {task: np.zeros((len(lines), len(labels))) for task, labels in TASKS.items()}
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            logits = model(**model_inputs(batch, torch_device))
            rows = batch["index"].numpy()
            for task in TASKS:
                out[task][rows] = logits[task].softmax(-1).float().cpu().numpy()
    for task in TASKS:
        out[f"{task}_true"] = np.array([getattr(u, task) for u in lines])
    return out


def ensemble_metrics(members: Sequence[dict[str, np.ndarray]]) -> dict:
    """Metrics of the mean of the members' probabilities (the members read the same lines)."""
    metrics = {}
    for task, labels in TASKS.items():
        truth = members[0][f"{task}_true"]
        if any(not np.array_equal(m[f"{task}_true"], truth) for m in members):
            raise ValueError("the members were scored on different lines")
        mean = np.mean([m[task] for m in members], axis=0)
        metrics[task] = compute_metrics(truth.tolist(), mean.argmax(-1).tolist(), labels)
    return metrics


def _f1(metrics: dict) -> str:
    return " / ".join(f"{metrics[task]['weighted_f1']:.4f}" for task in TASKS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="a member (repeat)")
    parser.add_argument("--split-csv", required=True, help="a MELD {split}_sent_emo.csv")
    parser.add_argument(
        "--voices",
        choices=speech_eval.EVAL_VOICE_SETS,
        help="read the lines through speech: the transcripts cached for this voice set",
    )
    parser.add_argument("--speech-cache", default=str(speech_eval.DEFAULT_CACHE_DIR))
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    members = [
        line_probabilities(
            checkpoint,
            args.split_csv,
            voice_set=args.voices,
            cache_dir=args.speech_cache,
            device=args.device,
        )
        for checkpoint in args.checkpoint
    ]
    reading = f"through speech ({args.voices} voices)" if args.voices else "gold text"
    print(f"weighted F1 emotion / sentiment, {reading}:")
    for checkpoint, member in zip(args.checkpoint, members, strict=True):
        print(f"  {checkpoint}: {_f1(ensemble_metrics([member]))}")
    print(f"  mean of the {len(members)}: {_f1(ensemble_metrics(members))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
