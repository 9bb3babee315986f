"""Train the model on MELD, select on dev, save the best checkpoint through mlcore.checkpoint.

    python -m training.train --config training/configs/default.yaml [--set train.epochs=1 ...]
    python -m training.train --resume runs/default/last_state.pt

Writes into the config's `output_dir`: `config.yaml` (as resolved), `metrics.jsonl` (one line
per epoch), `last_state.pt` (model, optimizer, scheduler, epoch, RNG: what --resume reads),
`best.pt` (the checkpoint with the best dev score, with its dev metrics), `dev_report/` (the
best epoch's metrics.json and confusion matrices) and `summary.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import pickle
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from mlcore.checkpoint import ENCODER_PREFIX, read_checkpoint, save_checkpoint
from mlcore.model import MultimodalSentimentModel
from training.config import TrainConfig, config_from_dict, load_config
from training.evaluate import (
    TASKS,
    metrics_from_predictions,
    model_inputs,
    predict,
    write_report,
)
from training.meld import (
    REPO_ROOT,
    BucketBatchSampler,
    MeldCollator,
    MeldDataset,
    MeldUtterance,
    meld_dir,
    read_meld_csv,
    subsample,
)
from training.prefix_cache import FrozenPrefix

STATE_FORMAT = "video-sentiment-train-state"


@dataclass
class TrainResult:
    output_dir: Path
    best_checkpoint: Path | None
    best_epoch: int | None
    best_metrics: dict | None
    history: list[dict]
    seconds: float
    skipped: dict


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(counts: np.ndarray, mode: str) -> torch.Tensor | None:
    """Inverse-frequency ("inverse") or its square root ("sqrt") class weights, scaled so the
    average weight per example is 1 (the loss keeps its scale). A class absent from the training
    data gets weight 0 (nothing to weigh)."""
    if mode == "none":
        return None
    counts = counts.astype(np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = 1.0 / counts[present]
    if mode == "sqrt":
        weights = np.sqrt(weights)
    weights *= counts.sum() / (weights * counts).sum()
    return torch.tensor(weights, dtype=torch.float32)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, two learning rates: small for the pretrained encoder, larger for the new parts.
    No weight decay on biases and LayerNorm/BatchNorm weights (standard for transformers)."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        pretrained = name.startswith(ENCODER_PREFIX)
        decay = param.ndim > 1
        groups.setdefault((pretrained, decay), []).append(param)
    opt = config.train
    return torch.optim.AdamW(
        [
            {
                "name": "encoder" if pretrained else "head",
                "params": params,
                "lr": opt.lr_encoder if pretrained else opt.lr_head,
                "weight_decay": opt.weight_decay if decay else 0.0,
            }
            for (pretrained, decay), params in sorted(groups.items())
        ]
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then linear or cosine decay to zero at the last step."""
    warmup = max(1, round(config.train.warmup_ratio * total_steps))
    cosine = config.train.schedule == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress)) if cosine else 1.0 - progress

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _resolve(directory: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else directory / path


def build_datasets(config: TrainConfig) -> tuple[MeldDataset, MeldDataset]:
    data = config.data
    directory = Path(data.meld_dir) if data.meld_dir else meld_dir()
    preprocess = config.model.preprocess
    context = (preprocess.context_utterances, preprocess.context_following)
    seed = config.train.seed
    datasets = []
    for csv_name, clips, limit, transcripts in (
        (data.train_csv, data.train_clips, data.max_train_examples, data.train_transcripts),
        (data.dev_csv, data.dev_clips, data.max_dev_examples, ""),
    ):
        utterances = subsample(read_meld_csv(_resolve(directory, csv_name), *context), limit, seed)
        datasets.append(
            MeldDataset(
                utterances,
                config.model.preprocess,
                clips_dir=_resolve(directory, clips) if clips else None,
                modalities=config.model.modalities,
                max_clip_s=data.max_clip_s,
                spoken_texts=training_transcripts(utterances, transcripts) if transcripts else None,
            )
        )
    return datasets[0], datasets[1]


def training_transcripts(
    utterances: Sequence[MeldUtterance], cache_dir: str | Path
) -> list[str | None]:
    """Each line's cached transcript through speech by the training voices (None where the
    cache has none); a missing cache is an error, not a silent run on subtitles only."""
    from training.speech_eval import CACHE_FILE, TRAIN_VOICES, cached_transcripts

    directory = Path(cache_dir) if Path(cache_dir).is_absolute() else REPO_ROOT / cache_dir
    if not (directory / CACHE_FILE).is_file():
        raise FileNotFoundError(
            f"no transcript cache at {directory / CACHE_FILE}: make it with "
            "python -m training.speech_eval --split-csv TRAIN_CSV --transcribe-only train"
        )
    return cached_transcripts(utterances, directory, voices=TRAIN_VOICES)


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision on CUDA (bf16 where supported: no loss scaling needed); plain fp32 on
    CPU, where autocast buys little without AVX-512 bf16."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _save_state(path: Path, **state: object) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"format": STATE_FORMAT, **state}, tmp)
    tmp.replace(path)  # a crash mid-save keeps the previous state


def _load_state(path: str | Path) -> dict:
    """A last_state.pt: tensors and plain containers only (weights_only), never pickled code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path} is not a training state file ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} is not a training state file")
    return state


def _trim_log(path: Path, last_epoch: int) -> None:
    """Drop log lines of epochs after `last_epoch` (written before a crash, then redone)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["epoch"] <= last_epoch]
    path.write_text("".join(line + "\n" for line in kept))


def _brief(metrics: dict) -> dict:
    """The per-epoch log's view of dev metrics: headline numbers, no matrices."""
    brief = {
        task: {k: round(metrics[task][k], 4) for k in ("accuracy", "weighted_f1", "macro_f1")}
        for task in TASKS
    }
    brief["score"] = round(metrics["score"], 4)
    return brief


def _on(tensor: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(device)


def _frozen_prefix(
    model: MultimodalSentimentModel,
    train_set: MeldDataset,
    lengths: Sequence[int],
    collate: MeldCollator,
    config: TrainConfig,
    *,
    device: torch.device,
    progress: bool,
) -> FrozenPrefix | None:
    """The frozen layers' output for every training example, when there are frozen layers and
    the config asks for the cache."""
    prefix = FrozenPrefix(model)
    if not config.train.cache_frozen or prefix.frozen == 0:
        return None
    if collate.augments:
        # The cache holds one reading per example: augmented text would be silently ignored.
        raise ValueError(
            "text augmentation (transcript_p, exclamation_dropout, punctuation_dropout) needs "
            "train.cache_frozen: false when layers are frozen"
        )
    # Text only: the cache needs no clip decoding (same examples, same indices).
    text_view = MeldDataset(train_set.utterances, config.model.preprocess)
    batches = BucketBatchSampler(lengths, config.train.eval_batch_size, shuffle=False)
    prefix.build(
        DataLoader(text_view, batch_sampler=batches, collate_fn=collate),
        device,
        progress=progress,
    )
    return prefix


def train(
    config: TrainConfig,
    *,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run (or, from a last-state file, continue) training; returns the best epoch's metrics.
    `stop_after` ends this call after that many epochs (time-boxing on a shared machine); the
    run goes on later with `resume`."""
    from transformers import AutoTokenizer

    started = time.perf_counter()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    opt = config.train
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    set_seed(opt.seed)
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)

    train_set, dev_set = build_datasets(config)
    tokenizer = AutoTokenizer.from_pretrained(
        config.model.resolved_text_encoder_path(), local_files_only=True
    )
    collate = MeldCollator(tokenizer, config.model.preprocess)
    sampler = BucketBatchSampler(
        train_set.token_lengths(tokenizer), opt.batch_size, shuffle=True, seed=opt.seed
    )
    workers = config.data.num_workers
    train_collate = MeldCollator(
        tokenizer,
        config.model.preprocess,
        punctuation_dropout=opt.punctuation_dropout,
        exclamation_dropout=opt.exclamation_dropout,
        transcript_p=opt.transcript_p,
        seed=opt.seed,
    )
    train_loader = DataLoader(
        train_set, batch_sampler=sampler, collate_fn=train_collate, num_workers=workers
    )
    dev_loader = DataLoader(
        dev_set,
        batch_sampler=BucketBatchSampler(
            dev_set.token_lengths(tokenizer), opt.eval_batch_size, shuffle=False
        ),
        collate_fn=collate,
        num_workers=workers,
    )

    model = MultimodalSentimentModel(config.model).to(device)
    prefix = _frozen_prefix(
        model, train_set, sampler.lengths, train_collate, config, device=device, progress=progress
    )
    losses = {
        task: nn.CrossEntropyLoss(
            weight=_on(class_weights(train_set.label_counts(task), opt.class_weights), device),
            label_smoothing=opt.label_smoothing,
        )
        for task in TASKS
    }
    task_weight = {"emotion": opt.emotion_loss_weight, "sentiment": opt.sentiment_loss_weight}
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, opt.epochs * len(sampler), config)
    use_scaler = device.type == "cuda" and opt.amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    start_epoch, best_score, best_epoch, bad_epochs = 0, -math.inf, None, 0
    log_path = out / "metrics.jsonl"
    if resume is not None:
        state = _load_state(resume)
        if state["config"] != config.to_dict():
            raise ValueError(f"{resume} was written by a run with a different config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        start_epoch = state["epoch"] + 1
        best_score, best_epoch, bad_epochs = state["best_score"], state["best_epoch"], state["bad"]
        _trim_log(log_path, state["epoch"])
    elif log_path.exists():
        log_path.unlink()  # a fresh run starts a fresh log

    history = (
        [json.loads(line) for line in log_path.read_text().splitlines()]
        if resume is not None and log_path.exists()
        else []
    )
    best_metrics = None
    last_epoch = opt.epochs if stop_after is None else min(opt.epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, last_epoch):
        if bad_epochs >= opt.patience:
            break  # early stopping (also: a resumed run that had already stopped)
        epoch_started = time.perf_counter()
        sampler.set_epoch(epoch)
        model.train()
        totals = {"loss": 0.0, "emotion": 0.0, "sentiment": 0.0}
        seen, dropped = 0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{opt.epochs}", disable=not progress)
        for batch in bar:
            dropped += batch["dropped"]
            if batch["size"] < 2:  # BatchNorm needs two examples
                continue
            cached = prefix.active(batch, device) if prefix else contextlib.nullcontext()
            with cached, _autocast(device, opt.amp):
                logits = model(**model_inputs(batch, device))
            parts = {
                task: losses[task](logits[task].float(), batch[task].to(device)) for task in TASKS
            }
            loss = sum(task_weight[task] * parts[task] for task in TASKS)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            size = batch["size"]
            seen += size
            totals["loss"] += loss.item() * size
            for task in TASKS:
                totals[task] += parts[task].item() * size
            bar.set_postfix(loss=f"{totals['loss'] / seen:.3f}")

        metrics = metrics_from_predictions(predict(model, dev_loader, device, progress=progress))
        improved = metrics["score"] > best_score
        if improved:
            best_score, best_epoch, bad_epochs, best_metrics = metrics["score"], epoch, 0, metrics
            save_checkpoint(
                model,
                out / "best.pt",
                model_version=config.model_version,
                trained=True,
                metrics={
                    "split": "dev",
                    "split_csv": config.data.dev_csv,
                    "epoch": epoch + 1,
                    "train_examples": len(train_set),
                    **metrics,
                },
            )
            write_report(metrics, out / "dev_report")
        else:
            bad_epochs += 1
        record = {
            "epoch": epoch,
            "train_loss": totals["loss"] / max(seen, 1),
            "train_emotion_loss": totals["emotion"] / max(seen, 1),
            "train_sentiment_loss": totals["sentiment"] / max(seen, 1),
            "train_examples": seen,
            "dropped": dropped + metrics["dropped"],
            "lr": {group["name"]: group["lr"] for group in optimizer.param_groups},
            "dev": _brief(metrics),
            "best": improved,
            "seconds": round(time.perf_counter() - epoch_started, 1),
        }
        history.append(record)
        with log_path.open("a") as log:
            log.write(json.dumps(record) + "\n")
        _save_state(
            out / "last_state.pt",
            config=config.to_dict(),
            epoch=epoch,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            scaler=scaler.state_dict(),
            rng={
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            },
            best_score=best_score,
            best_epoch=best_epoch,
            bad=bad_epochs,
        )
        if progress:
            print(
                f"epoch {epoch + 1}: train loss {record['train_loss']:.4f}, dev {record['dev']}"
                + (" (best)" if improved else ""),
                flush=True,
            )

    if best_metrics is None and best_epoch is not None:  # best epoch was before a resume
        best_metrics = read_checkpoint(out / "best.pt")["metrics"]
    skipped = {"train": train_set.skip_report(), "dev": dev_set.skip_report()}
    result = TrainResult(
        output_dir=out,
        best_checkpoint=out / "best.pt" if best_epoch is not None else None,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        history=history,
        seconds=time.perf_counter() - started,
        skipped=skipped,
    )
    summary = {
        "model_version": config.model_version,
        "best_epoch": None if best_epoch is None else best_epoch + 1,
        "best_score": best_score if best_epoch is not None else None,
        "seconds_this_run": round(result.seconds, 1),
        "train_examples": len(train_set),
        "train_examples_with_transcripts": sum(s is not None for s in train_set.spoken),
        "dev_examples": len(dev_set),
        "skipped": skipped,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the sentiment model on MELD.")
    parser.add_argument("--config", help="YAML config (training/configs/*.yaml)")
    parser.add_argument("--resume", help="last_state.pt of an interrupted run: continue it")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.epochs=1 --set output_dir=runs/try",
    )
    parser.add_argument(
        "--stop-after", type=int, metavar="N", help="stop after N epochs (continue with --resume)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.config:
        config = load_config(args.config, args.overrides)
    elif args.resume:
        # The run's own config, stored in its state file.
        config = config_from_dict(_load_state(args.resume)["config"])
    else:
        parser.error("give --config, or --resume with a last_state.pt")
    result = train(
        config, resume=args.resume, stop_after=args.stop_after, progress=not args.no_progress
    )
    if result.best_metrics is None:
        print(f"no new best epoch in this run; see {result.output_dir}/metrics.jsonl")
        return 0
    dev = _brief(result.best_metrics)
    print(
        f"best epoch {result.best_epoch + 1}: dev {dev}\n"
        f"checkpoint {result.best_checkpoint} ({result.seconds:.0f} s this run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
