"""training.ensemble: each member's probabilities in the split's line order, their mean scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlcore.checkpoint import save_checkpoint
from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.model import MultimodalSentimentModel
from training import ensemble, speech_eval
from training.evaluate import evaluate_checkpoint
from training.tests.conftest import write_meld_csv
from training.tests.test_speech_eval import LINES, _row


@pytest.fixture(scope="module")
def lines_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("ensemble") / "dev_sent_emo.csv"
    return write_meld_csv(path, [_row(i, *line) for i, line in enumerate(LINES)])


def _checkpoint(path, seed: int, context: int):
    torch.manual_seed(seed)
    preprocess = PreprocessConfig(max_text_tokens=32, context_utterances=context)
    config = ModelConfig(text_trainable_layers=1, preprocess=preprocess)
    model = MultimodalSentimentModel(config)
    return save_checkpoint(model, path, model_version=f"test-{seed}", trained=False)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    # Different seeds and readings (one with the previous utterance as context).
    return [_checkpoint(folder / "a.pt", 0, 0), _checkpoint(folder / "b.pt", 1, 1)]


def test_one_member_scores_as_evaluate_does(lines_csv, members) -> None:
    for checkpoint in members:
        probabilities = ensemble.line_probabilities(checkpoint, lines_csv)
        assert probabilities["emotion"].shape == (len(LINES), 7)
        assert np.allclose(probabilities["sentiment"].sum(-1), 1.0, atol=1e-5)
        mine = ensemble.ensemble_metrics([probabilities])
        theirs = evaluate_checkpoint(checkpoint, lines_csv, progress=False)
        for task in ("emotion", "sentiment"):
            assert mine[task]["confusion_matrix"] == theirs[task]["confusion_matrix"]
            assert mine[task]["weighted_f1"] == pytest.approx(theirs[task]["weighted_f1"])


def test_the_ensemble_is_the_mean_of_the_members(lines_csv, members) -> None:
    a, b = (ensemble.line_probabilities(c, lines_csv) for c in members)
    assert not np.allclose(a["emotion"], b["emotion"])
    metrics = ensemble.ensemble_metrics([a, b])
    for task in ("emotion", "sentiment"):
        predicted = ((a[task] + b[task]) / 2).argmax(-1)
        truth = a[f"{task}_true"]
        expected = np.zeros_like(metrics[task]["confusion_matrix"])
        for t, p in zip(truth, predicted, strict=True):
            expected[t][p] += 1
        assert metrics[task]["confusion_matrix"] == expected.tolist()
    with pytest.raises(ValueError, match="different lines"):
        ensemble.ensemble_metrics([a, {**b, "emotion_true": b["emotion_true"][::-1]}])


def test_through_speech_reads_the_cached_transcripts(lines_csv, members, tmp_path, capsys):
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="--transcribe-only eval"):
        ensemble.line_probabilities(members[0], lines_csv, voice_set="eval", cache_dir=cache)
    through = speech_eval.through_speech_metrics(
        members[0], lines_csv, cache_dir=cache, progress=False
    )["through_speech"]
    spoken = ensemble.line_probabilities(members[0], lines_csv, voice_set="eval", cache_dir=cache)
    for task in ("emotion", "sentiment"):
        assert (
            ensemble.ensemble_metrics([spoken])[task]["confusion_matrix"]
            == through[task]["confusion_matrix"]
        )
    args = ["--split-csv", str(lines_csv), "--voices", "eval", "--speech-cache", str(cache)]
    for checkpoint in members:
        args += ["--checkpoint", str(checkpoint)]
    assert ensemble.main(args) == 0
    out = capsys.readouterr().out
    assert "through speech (eval voices)" in out and "mean of the 2:" in out
