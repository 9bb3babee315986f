"""Training and inference must feed the text encoder the same thing: the same tokens, segment ids
and (through the frozen-prefix cache) the same features for the same utterance and context."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.model import MultimodalSentimentModel
from mlcore.text import (
    FOLLOWING_MARK,
    context_string,
    conversation_contexts,
    encode_texts,
    normalize_for_model,
)
from training.meld import BucketBatchSampler, MeldCollator, MeldDataset, read_meld_csv
from training.prefix_cache import FrozenPrefix

CONTEXT = 2


@pytest.fixture(scope="module")
def setup(meld_dev_csv):
    # 24 tokens: utterance + two previous ones + the next do not fit, so the context is cut.
    preprocess = PreprocessConfig(
        context_utterances=CONTEXT, context_following=1, max_text_tokens=24
    )
    config = ModelConfig(text_trainable_layers=2, preprocess=preprocess)
    torch.manual_seed(0)
    model = MultimodalSentimentModel(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(config.resolved_text_encoder_path())
    utterances = read_meld_csv(meld_dev_csv, CONTEXT, 1)
    return preprocess, model, tokenizer, utterances


def _inference_inputs(tokenizer, utterances, preprocess) -> dict:
    """What `Analyzer._classify` builds: each utterance with the ones around it in its video."""
    texts = [u.text for u in utterances]
    return dict(
        encode_texts(tokenizer, texts, conversation_contexts(texts, preprocess), preprocess)
    )


def test_training_and_inference_features_are_identical(setup):
    preprocess, model, tokenizer, utterances = setup
    first_dialogue = [u for u in utterances if u.dialogue_id == utterances[0].dialogue_id]
    dataset = MeldDataset(first_dialogue, preprocess)
    collate = MeldCollator(tokenizer, preprocess)
    loader = DataLoader(
        dataset,
        batch_sampler=BucketBatchSampler(dataset.token_lengths(tokenizer), 64, shuffle=False),
        collate_fn=collate,
    )
    prefix = FrozenPrefix(model)
    prefix.build(loader, torch.device("cpu"), progress=False)
    inference = _inference_inputs(tokenizer, first_dialogue, preprocess)
    assert "token_type_ids" in inference and inference["token_type_ids"].any()
    with torch.no_grad():
        served = model.text(**inference)
        (batch,) = list(loader)
        order = batch["index"].tolist()
        for key, value in batch["text"].items():  # the same tokens and segment ids
            torch.testing.assert_close(value, inference[key][order], rtol=0, atol=0)
        with prefix.active(batch, torch.device("cpu")):
            trained = model.text(**batch["text"])
        plain = model.text(**batch["text"])
        no_segments = model.text(
            input_ids=batch["text"]["input_ids"], attention_mask=batch["text"]["attention_mask"]
        )
    # float16 rounding of the cached states is the only difference allowed.
    torch.testing.assert_close(trained, served[order], atol=2e-3, rtol=0)
    torch.testing.assert_close(plain, served[order], atol=1e-5, rtol=0)
    # ... and dropping the segment ids (the old bug) would have been caught.
    assert (no_segments - plain).abs().max() > 1e-2


def test_the_context_is_cut_never_the_utterance(setup):
    preprocess, _, tokenizer, _ = setup
    utterance = "I cannot believe you did that to me today."
    context = " | ".join(["We talked about the weather and the long trip home yesterday"] * 3)
    encoded = encode_texts(tokenizer, [utterance], [context], preprocess)
    ids = encoded["input_ids"][0].tolist()
    own = tokenizer(normalize_for_model(utterance), add_special_tokens=False)["input_ids"]
    assert len(ids) == preprocess.max_text_tokens
    assert ids[1 : 1 + len(own)] == own  # the whole utterance, right after [CLS]
    assert tokenizer.sep_token_id in ids[1 + len(own) :]


def test_an_utterance_longer_than_the_budget_still_encodes(setup):
    preprocess, _, tokenizer, _ = setup
    long = " ".join(["word"] * 60)
    encoded = encode_texts(tokenizer, [long], ["short context"], preprocess)
    assert encoded["input_ids"].shape[1] == preprocess.max_text_tokens


def test_context_holds_previous_utterances_then_following_ones() -> None:
    texts = ["one", "two", "three", "four"]
    both = PreprocessConfig(context_utterances=2, context_following=1)
    assert conversation_contexts(texts, both) == [
        f"{FOLLOWING_MARK}two".strip(),
        f"one{FOLLOWING_MARK}three",
        f"two | one{FOLLOWING_MARK}four",
        "three | two",
    ]
    previous_only = PreprocessConfig(context_utterances=1)
    assert conversation_contexts(texts, previous_only) == ["", "one", "two", "three"]
    assert conversation_contexts(texts, PreprocessConfig()) == ["", "", "", ""]
    assert context_string(["a", " ", "b"], 3, ["", "c", "d"], 2) == f"b | a{FOLLOWING_MARK}c"
