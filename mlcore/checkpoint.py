"""One-file checkpoints: config, labels, modalities, preprocessing, metrics, weights, version.

Text-encoder parameters are stored as float16 *differences* from the packaged pretrained encoder,
and omitted where unchanged (frozen layers), so a fine-tuned checkpoint stays a few MB.
Loaded with `torch.load(weights_only=True)`: no pickled code runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from mlcore.config import ModelConfig
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.model import MultimodalSentimentModel

FORMAT_NAME = "video-sentiment-checkpoint"
FORMAT_VERSION = 1
ENCODER_PREFIX = "text.encoder."


class CheckpointError(Exception):
    """A checkpoint that cannot be used: wrong format, version, labels or modalities."""


@dataclass
class CheckpointInfo:
    model_version: str
    trained: bool
    config: ModelConfig
    metrics: dict = field(default_factory=dict)
    video_backbone_init: str = "none"


def _plain(data: object) -> object:
    """JSON round trip: tuples -> lists, only types `weights_only` loading accepts."""
    return json.loads(json.dumps(data))


def _base_encoder_state(config: ModelConfig) -> dict[str, torch.Tensor]:
    from transformers import AutoModel  # noqa: PLC0415 - heavy import

    base = AutoModel.from_pretrained(config.resolved_text_encoder_path(), local_files_only=True)
    return {ENCODER_PREFIX + k: v for k, v in base.state_dict().items()}


def save_checkpoint(
    model: MultimodalSentimentModel,
    path: str | Path,
    *,
    model_version: str,
    trained: bool,
    metrics: dict | None = None,
) -> Path:
    config = model.config
    base = _base_encoder_state(config)
    weights: dict[str, torch.Tensor] = {}
    encoder_deltas: dict[str, torch.Tensor] = {}
    for name, live in model.state_dict().items():
        tensor = live.detach().cpu()
        if name in base and tensor.dtype.is_floating_point:
            if not torch.equal(tensor, base[name]):
                encoder_deltas[name] = (tensor - base[name]).to(torch.float16)
        elif name not in base or not torch.equal(tensor, base[name]):
            weights[name] = tensor.clone()
    video_init = "none"
    if "video" in config.modalities:
        video_init = (
            f"file:{Path(config.video_backbone_weights).name}"
            if config.video_backbone_weights
            else "random"
        )
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "trained": bool(trained),
        # The backbone's weights are in `weights`: the training host's file path is not kept
        # (another host has no such file); its name is recorded in video_backbone_init.
        "config": _plain(replace(config, video_backbone_weights="").to_dict()),
        "labels": {"emotion": list(EMOTIONS), "sentiment": list(SENTIMENTS)},
        "modalities": list(config.modalities),
        "video_backbone_init": video_init,
        "metrics": _plain(metrics or {}),
        "weights": weights,
        "encoder_deltas": encoder_deltas,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a half-written checkpoint
    return path


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is not a {FORMAT_NAME} file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {payload.get('format_version')}; "
            f"this code reads version {FORMAT_VERSION}"
        )
    labels = payload.get("labels", {})
    if (
        tuple(labels.get("emotion", ())) != EMOTIONS
        or tuple(labels.get("sentiment", ())) != SENTIMENTS
    ):
        raise CheckpointError(
            f"{path} was trained on labels {labels}, expected emotions {list(EMOTIONS)} "
            f"and sentiments {list(SENTIMENTS)}"
        )
    return payload


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    require_modalities: tuple[str, ...] | None = None,
) -> tuple[MultimodalSentimentModel, CheckpointInfo]:
    """Build the model from a checkpoint, in eval mode on `device`."""
    payload = read_checkpoint(path)
    try:
        # Older checkpoints stored the training host's backbone path: the weights are here.
        config = replace(ModelConfig.from_dict(payload["config"]), video_backbone_weights="")
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} has an invalid model config: {exc}") from exc
    if require_modalities and not set(require_modalities) <= set(config.modalities):
        missing = sorted(set(require_modalities) - set(config.modalities))
        raise CheckpointError(f"{path} has no {', '.join(missing)} branch")
    model = MultimodalSentimentModel(config)
    state = model.state_dict()
    expected = set(state)
    stored = set(payload["weights"]) | set(payload["encoder_deltas"])
    unexpected = stored - expected
    if unexpected:
        raise CheckpointError(f"{path} has weights this model lacks: {sorted(unexpected)[:5]}")
    missing = {k for k in expected - stored if not k.startswith(ENCODER_PREFIX)}
    if missing:
        raise CheckpointError(f"{path} lacks weights for: {sorted(missing)[:5]}")
    with torch.no_grad():
        for name, delta in payload["encoder_deltas"].items():
            state[name] += delta.to(state[name].dtype)
        for name, tensor in payload["weights"].items():
            if state[name].shape != tensor.shape:
                raise CheckpointError(f"{path}: {name} has shape {tuple(tensor.shape)}")
            state[name].copy_(tensor)
    model.to(device).eval()
    info = CheckpointInfo(
        model_version=payload["model_version"],
        trained=payload["trained"],
        config=config,
        metrics=payload.get("metrics", {}),
        video_backbone_init=payload.get("video_backbone_init", "none"),
    )
    return model, info
