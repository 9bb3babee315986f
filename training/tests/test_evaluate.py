from __future__ import annotations

import json

import pytest
import torch

from mlcore.checkpoint import save_checkpoint
from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.model import MultimodalSentimentModel
from training.evaluate import compute_metrics, evaluate_checkpoint, main, selection_score


def test_metrics_of_a_known_example() -> None:
    labels = ("a", "b", "c")
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    m = compute_metrics(y_true, y_pred, labels)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # Per class: a P=1 R=2/3 F1=0.8; b P=1/2 R=1/2 F1=0.5; c P=1/2 R=1 F1=2/3.
    assert m["per_class"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["recall"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_a_class_never_seen_counts_as_zero_not_an_error() -> None:
    m = compute_metrics([0, 0], [0, 1], ("x", "y", "z"))
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert len(m["confusion_matrix"]) == 3
    assert selection_score(
        {"emotion": {"weighted_f1": 0.6}, "sentiment": {"weighted_f1": 0.7}}
    ) == (pytest.approx(0.65))


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory):
    """An untrained text model with a fixed seed: evaluation must be reproducible."""
    torch.manual_seed(0)
    config = ModelConfig(
        text_trainable_layers=1,
        preprocess=PreprocessConfig(context_utterances=1, max_text_tokens=32),
    )
    path = tmp_path_factory.mktemp("ckpt") / "text.pt"
    return save_checkpoint(
        MultimodalSentimentModel(config), path, model_version="test-text", trained=False
    )


def test_evaluate_checkpoint_writes_json_and_confusion_pngs(
    text_checkpoint, meld_mini, tmp_path
) -> None:
    out = tmp_path / "report"
    metrics = evaluate_checkpoint(
        text_checkpoint, meld_mini["dev_csv"], out=out, batch_size=4, progress=False
    )
    assert metrics["examples"] == meld_mini["dev_rows"]
    assert metrics["model_version"] == "test-text"
    assert metrics["modalities_used"] == ["text"]
    for task, labels in (("emotion", EMOTIONS), ("sentiment", SENTIMENTS)):
        assert 0.0 <= metrics[task]["weighted_f1"] <= 1.0
        assert sum(map(sum, metrics[task]["confusion_matrix"])) == meld_mini["dev_rows"]
        assert list(metrics[task]["per_class"]) == list(labels)
        png = out / f"{task}_confusion_matrix.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["emotion"] == metrics["emotion"]
    # Deterministic: the same checkpoint scores the same.
    again = evaluate_checkpoint(text_checkpoint, meld_mini["dev_csv"], progress=False)
    assert again["emotion"]["confusion_matrix"] == metrics["emotion"]["confusion_matrix"]


def test_evaluate_cli(text_checkpoint, meld_mini, tmp_path, capsys) -> None:
    code = main(
        [
            "--checkpoint", str(text_checkpoint), "--split-csv", str(meld_mini["dev_csv"]),
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "emotion" in printed and "weighted F1" in printed
    assert (tmp_path / "sentiment_confusion_matrix.png").is_file()
