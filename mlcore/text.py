"""Text input for the model: the utterance, plus the previous utterances as context.

Training (MELD dialogues) and inference (previous Whisper utterances of the same video) both
build text through `encode_texts`, so the model reads the same shape of input in both, and
`encode_texts` is the one place `normalize_for_model` is applied to every text either reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mlcore.config import PreprocessConfig

CONTEXT_SEPARATOR = " | "
# Marks where the following utterances start in a context (after the previous ones, if any).
FOLLOWING_MARK = " >> "

# The one normalisation of what the model reads, training and inference alike (applied inside
# `encode_texts`). It only writes the subtitle text's debris the way Whisper's transcripts do
# (no runs of dots or commas, no leading dash), because everything beyond that was measured to
# cost the shipped model on MELD dev (MODEL_CARD.md, "Through speech"): `!` -> `.` as Whisper
# writes it lowered its gold-text weighted F1 by 11 / 13 points (emotion / sentiment; a model
# retrained that way reached 0.503 / 0.591), collapsing "!!" and "?!" by 0.3 / 0.9 points.
# Robustness to the marks speech loses can be trained instead (`train.exclamation_dropout`,
# `train.punctuation_dropout`). Casing needs nothing: the MiniLM tokenizer lowercases.
_ELLIPSIS = re.compile(r"\.{3,}")
_REPEATED_COMMA = re.compile(r",(\s*,)+")
_LEADING_DASHES = re.compile(r"^[\s\-]+")
_SPACES = re.compile(r"\s+")


def normalize_for_model(text: str) -> str:
    """The text as the model reads it, training and inference alike: a run of 3+ dots becomes
    `...`, of commas `,`; leading dashes go and whitespace is collapsed."""
    text = _ELLIPSIS.sub("...", text)
    text = _REPEATED_COMMA.sub(",", text)
    text = _LEADING_DASHES.sub("", text)
    return _SPACES.sub(" ", text).strip()


def context_string(
    previous: Sequence[str],
    count: int,
    following: Sequence[str] = (),
    following_count: int = 0,
) -> str:
    """The last `count` previous utterances, most recent first, then `FOLLOWING_MARK` and the
    next `following_count` utterances in order (truncation cuts from the end)."""
    # Each utterance normalised on its own (a leading dash inside the context is debris too).
    recent = [normalize_for_model(p) for p in previous[-count:]] if count > 0 else []
    context = CONTEXT_SEPARATOR.join(reversed([p for p in recent if p]))
    after = [normalize_for_model(f) for f in following[:following_count]]
    after = [f for f in after if f]
    if after:
        context = (context + FOLLOWING_MARK + CONTEXT_SEPARATOR.join(after)).strip()
    return context


def conversation_contexts(texts: Sequence[str], preprocess: PreprocessConfig) -> list[str]:
    """The context of every utterance of one conversation (a MELD dialogue, a video's
    transcript), in order: the one place training and inference build it."""
    return [
        context_string(
            texts[:k], preprocess.context_utterances, texts[k + 1 :], preprocess.context_following
        )
        for k in range(len(texts))
    ]


def encode_texts(
    tokenizer,
    utterances: Sequence[str],
    contexts: Sequence[str] | None,
    preprocess: PreprocessConfig,
) -> dict:
    """Tokenize a batch; the context (if any) is the second segment, and only it is cut to fit
    `max_text_tokens` (an utterance too long to leave room for one context token is cut itself
    first). Every text is read through `normalize_for_model` first."""
    utterances = [normalize_for_model(u) or "." for u in utterances]
    if preprocess.uses_context and contexts is not None:
        pairs = [normalize_for_model(c) or "." for c in contexts]
        room = preprocess.max_text_tokens - tokenizer.num_special_tokens_to_add(pair=True) - 1
        ids = tokenizer(list(utterances), add_special_tokens=False)["input_ids"]
        utterances = [
            tokenizer.decode(i[:room]) if len(i) > room else u
            for u, i in zip(utterances, ids, strict=True)
        ]
        return tokenizer(
            list(utterances),
            pairs,
            truncation="only_second",
            max_length=preprocess.max_text_tokens,
            padding=True,
            return_tensors="pt",
        )
    return tokenizer(
        list(utterances),
        truncation=True,
        max_length=preprocess.max_text_tokens,
        padding=True,
        return_tensors="pt",
    )
