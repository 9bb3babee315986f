"""Multimodal training end to end on a generated MELD-layout mini set: text + audio + video
train, the loss falls, the checkpoint loads and the inference Analyzer uses it on a new video."""

from __future__ import annotations

import json

import pytest
import yaml

from mlcore.checkpoint import load_checkpoint
from mlcore.inference import Analyzer
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.testmedia import make_talking_clip
from training.evaluate import evaluate_checkpoint
from training.train import main

pytestmark = pytest.mark.slow

TINY_MULTIMODAL = {
    "model_version": "test-multimodal",
    "model": {
        "modalities": ["text", "audio", "video"],
        "text_trainable_layers": 1,
        "projection_dim": 32,
        "fusion_hidden": 64,
        "dropout": 0.1,
        # Small frames keep R3D-18 affordable on a CPU; the pipeline is the real one.
        "preprocess": {"num_frames": 4, "frame_size": 32, "context_utterances": 1},
    },
    "train": {
        "epochs": 3,
        "batch_size": 8,
        "lr_encoder": 1e-4,
        "lr_head": 1e-2,
        "warmup_ratio": 0.0,
        "patience": 10,
        "seed": 1,
    },
}


@pytest.fixture(scope="module")
def multimodal_run(meld_mini, tmp_path_factory):
    out = tmp_path_factory.mktemp("mm_run")
    config = dict(
        TINY_MULTIMODAL,
        output_dir=str(out),
        data={
            "meld_dir": str(meld_mini["dir"]),
            "train_clips": str(meld_mini["train_clips"]),
            "dev_clips": str(meld_mini["dev_clips"]),
        },
    )
    path = out / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "--no-progress"]) == 0
    return out


def test_training_with_all_three_modalities_learns(multimodal_run, meld_mini) -> None:
    history = [
        json.loads(line) for line in (multimodal_run / "metrics.jsonl").read_text().splitlines()
    ]
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert history[-1]["train_loss"] < history[0]["train_loss"] * 0.9
    assert all(h["train_examples"] == meld_mini["good_train_clips"] for h in history)
    summary = json.loads((multimodal_run / "summary.json").read_text())
    # The missing and the broken clip were skipped and reported, not fatal.
    assert sum(summary["skipped"]["train"]["skipped"].values()) == 2
    assert summary["skipped"]["train"]["skipped"]["missing"] == 1


def test_checkpoint_loads_with_every_branch_trained(multimodal_run) -> None:
    model, info = load_checkpoint(
        multimodal_run / "best.pt", require_modalities=("text", "audio", "video")
    )
    assert info.trained and info.model_version == "test-multimodal"
    assert info.config.preprocess.num_frames == 4
    assert info.video_backbone_init == "random"
    assert model.audio is not None and model.video is not None
    assert 0.0 <= info.metrics["emotion"]["weighted_f1"] <= 1.0


def test_evaluate_reads_the_clips(multimodal_run, meld_mini) -> None:
    metrics = evaluate_checkpoint(
        multimodal_run / "best.pt",
        meld_mini["dev_csv"],
        clips=meld_mini["dev_clips"],
        progress=False,
    )
    assert metrics["modalities_used"] == ["text", "audio", "video"]
    assert metrics["examples"] == meld_mini["dev_rows"]
    assert metrics["skipped"] == {}


def test_analyzer_uses_the_trained_checkpoint_on_a_new_video(multimodal_run, tmp_path) -> None:
    video = make_talking_clip(
        tmp_path / "talk.mp4",
        ["I am so happy to see you again.", "This is terrible news."],
        size=(160, 120),
    )
    analyzer = Analyzer(multimodal_run / "best.pt")
    result = analyzer.analyze(video)
    assert result.model_version == "test-multimodal"
    assert result.modalities_used == ["text", "audio", "video"]
    assert result.utterances, "speech was transcribed into utterances"
    for utterance in result.utterances:
        assert utterance.emotion in EMOTIONS and utterance.sentiment in SENTIMENTS
        assert sum(utterance.emotion_scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert result.summary["dominant_emotion"] in EMOTIONS
