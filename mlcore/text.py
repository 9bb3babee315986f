"""Text input for the model: the utterance, plus the previous utterances as context.

Training (MELD dialogues) and inference (previous Whisper utterances of the same video) both
build text through `encode_texts`, so the model reads the same shape of input in both.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlcore.config import PreprocessConfig

CONTEXT_SEPARATOR = " | "


def context_string(previous: Sequence[str], count: int) -> str:
    """The last `count` previous utterances, most recent first (truncation drops the oldest)."""
    if count <= 0:
        return ""
    recent = [p.strip() for p in previous[-count:] if p.strip()]
    return CONTEXT_SEPARATOR.join(reversed(recent))


def encode_texts(
    tokenizer,
    utterances: Sequence[str],
    contexts: Sequence[str] | None,
    preprocess: PreprocessConfig,
) -> dict:
    """Tokenize a batch; the context (if any) is the second segment and is truncated first."""
    utterances = [u if u.strip() else "." for u in utterances]
    if preprocess.context_utterances > 0 and contexts is not None:
        pairs = [c if c else "." for c in contexts]
        return tokenizer(
            list(utterances),
            pairs,
            truncation="longest_first",
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
