from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mlcore.checkpoint import load_checkpoint
from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.model import MultimodalSentimentModel
from training.config import DataConfig, OptimConfig, TrainConfig, load_config
from training.train import (
    STATE_FORMAT,
    build_datasets,
    class_weights,
    main,
    make_optimizer,
    make_scheduler,
    train,
)


def test_class_weights_favour_rare_classes_and_keep_the_loss_scale() -> None:
    counts = np.array([90, 10, 0])
    assert class_weights(counts, "none") is None
    inverse = class_weights(counts, "inverse")
    assert inverse[1] / inverse[0] == pytest.approx(9.0)
    assert inverse[2] == 0.0  # absent class: nothing to weigh
    assert float((inverse[:2] * torch.tensor([90.0, 10.0])).sum()) == pytest.approx(100.0)
    sqrt = class_weights(counts, "sqrt")
    assert sqrt[1] / sqrt[0] == pytest.approx(3.0)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_warms_up_then_decays_to_zero(schedule: str) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    config = TrainConfig(train=OptimConfig(warmup_ratio=0.1, schedule=schedule))
    scheduler = make_scheduler(optimizer, 100, config)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.1)  # first of 10 warm-up steps
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 9
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # then only down
    assert lrs[-1] < 0.02 and optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_encoder_and_new_layers_get_their_own_learning_rates() -> None:
    model = MultimodalSentimentModel(ModelConfig(text_trainable_layers=1))
    config = TrainConfig(train=OptimConfig(lr_encoder=2e-5, lr_head=1e-3, weight_decay=0.05))
    groups = make_optimizer(model, config).param_groups
    by_name = {(g["name"], g["weight_decay"]): g for g in groups}
    assert by_name["encoder", 0.05]["lr"] == 2e-5
    assert by_name["head", 0.05]["lr"] == 1e-3
    assert by_name["head", 0.0]["lr"] == 1e-3  # biases and norms: no decay
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == trainable
    # Frozen embeddings are not optimised.
    frozen = {id(p) for p in model.text.encoder.embeddings.parameters()}
    assert not frozen & {id(p) for g in groups for p in g["params"]}


def test_yaml_config_reads_numbers_and_rejects_unknown_keys(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "model_version: v-test\n"
        "model:\n  text_trainable_layers: 2\n  preprocess:\n    context_utterances: 3\n"
        "train:\n  lr_encoder: 5e-5\n  epochs: 4\n"
    )
    config = load_config(path, ["train.epochs=1", "data.max_train_examples=100"])
    assert config.train.lr_encoder == 5e-5 and isinstance(config.train.lr_encoder, float)
    assert config.train.epochs == 1
    assert config.data.max_train_examples == 100
    assert config.model.preprocess.context_utterances == 3
    assert config.model_version == "v-test"
    path.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_config(path)
    with pytest.raises(ValueError, match="schedule"):
        OptimConfig(schedule="step")


def test_shipped_configs_load() -> None:
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        assert load_config(path).model_version


def _tiny_text_config(meld_mini, out) -> TrainConfig:
    return TrainConfig(
        model_version="test-resume",
        output_dir=str(out),
        data=DataConfig(meld_dir=str(meld_mini["dir"])),
        model=ModelConfig(
            text_trainable_layers=1,
            preprocess=PreprocessConfig(context_utterances=1, max_text_tokens=32),
        ),
        train=OptimConfig(epochs=2, batch_size=8, eval_batch_size=16, patience=5, seed=3),
    )


def test_resumed_run_matches_an_uninterrupted_one(meld_mini, tmp_path) -> None:
    straight = train(_tiny_text_config(meld_mini, tmp_path / "a"), progress=False)
    config = _tiny_text_config(meld_mini, tmp_path / "b")
    first = train(config, stop_after=1, progress=False)
    assert [h["epoch"] for h in first.history] == [0]
    resumed = train(config, resume=tmp_path / "b" / "last_state.pt", progress=False)

    assert [h["epoch"] for h in resumed.history] == [0, 1]
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["dev"] == a["dev"]
    state_a = torch.load(tmp_path / "a" / "last_state.pt", weights_only=False)["model"]
    state_b = torch.load(tmp_path / "b" / "last_state.pt", weights_only=False)["model"]
    for name, tensor in state_a.items():
        torch.testing.assert_close(state_b[name], tensor, msg=name)
    # Log: one line per epoch, the resumed run appended to the first.
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1]
    # The best checkpoint is a real mlcore checkpoint with its dev metrics.
    model, info = load_checkpoint(straight.best_checkpoint)
    assert info.trained and info.model_version == "test-resume"
    assert info.metrics["split"] == "dev"
    assert info.metrics["emotion"]["weighted_f1"] == pytest.approx(
        straight.best_metrics["emotion"]["weighted_f1"]
    )
    assert model.config.preprocess.context_utterances == 1


def test_resume_refuses_a_state_from_another_config(meld_mini, tmp_path) -> None:
    config = _tiny_text_config(meld_mini, tmp_path)
    train(replace(config, train=replace(config.train, epochs=1)), progress=False)
    with pytest.raises(ValueError, match="different config"):
        train(config, resume=tmp_path / "last_state.pt", progress=False)


class _RunsCode:
    """Unpickling this calls Path.touch: what a crafted state file could do with any call."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_resume_never_unpickles_code(tmp_path) -> None:
    marker = tmp_path / "code-ran"
    state = tmp_path / "last_state.pt"
    torch.save({"format": STATE_FORMAT, "config": {}, "payload": _RunsCode(marker)}, state)
    with pytest.raises(ValueError, match="not a training state file"):
        main(["--resume", str(state)])
    assert not marker.exists()


def test_text_augmentation_is_refused_with_a_frozen_layer_cache(meld_mini, tmp_path) -> None:
    config = _tiny_text_config(meld_mini, tmp_path)  # 1 of 6 layers trained: 5 cached
    augmented = replace(config, train=replace(config.train, exclamation_dropout=0.5))
    with pytest.raises(ValueError, match="cache_frozen: false"):
        train(augmented, progress=False)


def test_training_lines_get_their_cached_transcripts(meld_mini, tmp_path) -> None:
    from training import speech_eval
    from training.meld import read_meld_csv

    rows = read_meld_csv(meld_mini["train_csv"])
    cache = speech_eval.TranscriptCache(tmp_path / "cache")
    for row in rows[:3]:
        speaking = speech_eval.speaking_for(
            row.dialogue_id, row.utterance_id, speech_eval.TRAIN_VOICES
        )
        key = speech_eval.cache_key(row, speaking, "tiny.en")
        cache.put(key, {"transcript": f"heard {row.utterance_id}", "audio_s": 1, "asr_s": 1})
    cache.save()
    config = _tiny_text_config(meld_mini, tmp_path)
    config = replace(config, data=replace(config.data, train_transcripts=str(tmp_path / "cache")))
    train_set, dev_set = build_datasets(config)
    assert [s[0] for s in train_set.spoken[:3]] == [f"heard {r.utterance_id}" for r in rows[:3]]
    assert train_set.spoken[3:] == [None] * (len(rows) - 3)
    # The spoken reading's context is the neighbours' transcripts (1 previous utterance here).
    assert (rows[0].utterance_id, rows[1].utterance_id) == (0, 1)
    assert train_set.spoken[1] == ("heard 1", "heard 0")
    assert train_set[1]["context"] == rows[0].text  # the subtitle reading keeps its own
    assert dev_set.spoken == [None] * len(dev_set)  # dev always reads the subtitles
