"""A training run's configuration: a YAML file with `data`, `model` (mlcore's ModelConfig) and
`train` sections, plus `model_version` and `output_dir`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlcore.config import ModelConfig


@dataclass(frozen=True)
class DataConfig:
    meld_dir: str = ""  # empty -> $MELD_DIR or ../shared/meld beside the repo root
    train_csv: str = "train_sent_emo.csv"  # relative to meld_dir unless absolute
    dev_csv: str = "dev_sent_emo.csv"
    # Folders of dia{D}_utt{U}.mp4 (relative to meld_dir unless absolute); for audio/video.
    train_clips: str = ""
    dev_clips: str = ""
    max_train_examples: int | None = None  # seeded subsample, for quick trials
    max_dev_examples: int | None = None
    max_clip_s: float = 30.0  # MELD has clips mis-cut to minutes
    # A transcript cache of the train split spoken by the training voices (made by
    # `python -m training.speech_eval --split-csv TRAIN --transcribe-only train`; relative to the
    # repo root unless absolute; empty: none): each training line can then be read as Whisper
    # transcribed it (`train.transcript_p`). Lines without a cached transcript read the subtitle.
    train_transcripts: str = ""
    num_workers: int = 0  # DataLoader workers: clip decoding; text needs none


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    lr_encoder: float = 5e-5  # pretrained transformer layers
    lr_head: float = 1e-3  # projections, fusion, heads, audio CNN, video backbone
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06  # of all optimizer steps
    schedule: str = "linear"  # linear | cosine (decay to 0 after warm-up)
    class_weights: str = "none"  # none | inverse | sqrt (inverse-frequency, mean 1)
    label_smoothing: float = 0.0
    emotion_loss_weight: float = 1.0
    sentiment_loss_weight: float = 1.0
    grad_clip: float = 1.0
    patience: int = 2  # epochs without a better dev score before stopping
    seed: int = 13
    amp: bool = True  # mixed precision, on CUDA only
    # CPU threads for torch (0: torch's default, one per core). On a CPU shared with other
    # busy processes, 1 thread often trains faster than 2 (no waiting on a descheduled peer).
    threads: int = 0
    # Compute the frozen embeddings + lower encoder layers once, not every epoch (see
    # training/prefix_cache.py); only matters when text_trainable_layers < the encoder's depth.
    cache_frozen: bool = True
    # Augmentation towards transcripts: each punctuation run of a training utterance is dropped
    # with this probability (training batches only; dev and inference read the text as is; its
    # random stream is not part of --resume's state).
    punctuation_dropout: float = 0.0
    # ... and with this probability a training utterance has every `!` written as `.`, as
    # Whisper transcribes it (the model learns to do without `!`, and still reads it).
    exclamation_dropout: float = 0.0
    # ... and with this probability a training line is read as its cached transcript through
    # speech (data.train_transcripts) instead of its subtitle; the dropouts above then apply to
    # the subtitle lines only.
    transcript_p: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in {"linear", "cosine"}:
            raise ValueError(f"schedule must be linear or cosine, got {self.schedule!r}")
        if self.class_weights not in {"none", "inverse", "sqrt"}:
            raise ValueError(
                f"class_weights must be none, inverse or sqrt, got {self.class_weights!r}"
            )


@dataclass(frozen=True)
class TrainConfig:
    model_version: str = "meld-text-minilm-dev"
    output_dir: str = "runs/default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict:
        return {
            "model_version": self.model_version,
            "output_dir": self.output_dir,
            "data": dataclasses.asdict(self.data),
            "model": self.model.to_dict(),
            "train": dataclasses.asdict(self.train),
        }


def _typed(cls: type, values: dict, section: str) -> dict:
    """Check keys and coerce numbers: YAML reads `5e-5` as a string."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown keys in {section}: {sorted(unknown)}")
    casts = {"float": float, "int": int}
    out = dict(values)
    for key, value in values.items():
        cast = casts.get(str(fields[key].type).split(" ")[0])
        if value is not None and cast is not None:
            out[key] = cast(value)
    return out


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    raw = dict(raw)
    unknown = set(raw) - {"model_version", "output_dir", "data", "model", "train"}
    if unknown:
        raise ValueError(f"unknown top-level keys: {sorted(unknown)}")
    model = dict(raw.get("model") or {})
    return TrainConfig(
        model_version=str(raw.get("model_version", TrainConfig.model_version)),
        output_dir=str(raw.get("output_dir", TrainConfig.output_dir)),
        data=DataConfig(**_typed(DataConfig, raw.get("data") or {}, "data")),
        model=ModelConfig.from_dict(model),
        train=OptimConfig(**_typed(OptimConfig, raw.get("train") or {}, "train")),
    )


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """`section.key=value` strings (values parsed as YAML) applied to a raw config dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    return config_from_dict(apply_overrides(raw, overrides or []))
