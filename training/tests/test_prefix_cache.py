from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.model import MultimodalSentimentModel
from training.meld import BucketBatchSampler, MeldCollator, MeldDataset, read_meld_csv
from training.prefix_cache import FrozenPrefix


def test_cached_frozen_layers_give_the_models_own_output(meld_dev_csv) -> None:
    preprocess = PreprocessConfig(context_utterances=2, max_text_tokens=48)
    config = ModelConfig(text_trainable_layers=2, preprocess=preprocess)
    torch.manual_seed(0)
    model = MultimodalSentimentModel(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(config.resolved_text_encoder_path())
    dataset = MeldDataset(read_meld_csv(meld_dev_csv, 2)[:40], preprocess)
    collate = MeldCollator(tokenizer, preprocess)
    lengths = dataset.token_lengths(tokenizer)
    prefix = FrozenPrefix(model)
    assert prefix.frozen == 4
    prefix.build(
        DataLoader(
            dataset,
            batch_sampler=BucketBatchSampler(lengths, 16, shuffle=False),
            collate_fn=collate,
        ),
        torch.device("cpu"),
        progress=False,
    )
    assert sorted(prefix.cache) == list(range(40))
    # Other batches than the ones cached: padding differs, results must not.
    batches = DataLoader(
        dataset, batch_sampler=BucketBatchSampler(lengths, 8, seed=1), collate_fn=collate
    )
    for batch in batches:
        with torch.no_grad():
            full = model(text=batch["text"])
            with prefix.active(batch, torch.device("cpu")):
                cached = model(text=batch["text"])
        for task in ("emotion", "sentiment"):
            torch.testing.assert_close(cached[task], full[task], atol=2e-2, rtol=0)
    # The model is whole again afterwards.
    assert len(model.text.encoder.encoder.layer) == 6
    assert model.text.encoder.embeddings is not prefix.stub
