"""Checkpoints are self-contained: they load on a host that has none of the training files."""

from __future__ import annotations

import json

import torch

from mlcore.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from mlcore.config import ModelConfig
from mlcore.model import MultimodalSentimentModel


def test_a_checkpoint_does_not_need_the_video_backbone_file(tmp_path):
    from torchvision.models.video import r3d_18

    backbone = tmp_path / "train-host" / "r3d18-kinetics.pt"
    backbone.parent.mkdir()
    torch.save(r3d_18(weights=None).state_dict(), backbone)
    config = ModelConfig(
        modalities=("text", "audio", "video"), video_backbone_weights=str(backbone)
    )
    model = MultimodalSentimentModel(config)
    path = save_checkpoint(model, tmp_path / "model.pt", model_version="t", trained=False)
    backbone.unlink()  # another host: the training machine's file is not there

    stored = read_checkpoint(path)
    assert str(tmp_path) not in json.dumps(stored["config"])
    assert stored["video_backbone_init"] == "file:r3d18-kinetics.pt"  # the name stays on record
    loaded, info = load_checkpoint(path)
    assert info.config.video_backbone_weights == ""
    name = next(k for k in model.state_dict() if k.startswith("video.backbone."))
    assert torch.equal(loaded.state_dict()[name], model.state_dict()[name])
