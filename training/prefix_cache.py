"""Run the frozen bottom of the text encoder once, not every epoch (a CPU speed-up).

With `text_trainable_layers` < the encoder's depth, the embeddings and the lower layers never
change, so their output for an example is the same every epoch. `FrozenPrefix.build` computes it
once per training example (stored unpadded, float16); during training the model's own forward
then runs with the embeddings swapped for a stub returning that output and only the trainable
top layers in place. Attention masks, pooling, projection, fusion and heads stay the model's own
code. Differences from the plain forward: no dropout inside the frozen layers (their output is
taken in eval mode) and float16 rounding of the cached states.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader
from tqdm import tqdm

from mlcore.model import MultimodalSentimentModel, segment_ids


class _CachedOutput(nn.Module):
    """Stands in for the encoder's embeddings: returns the cached output of the frozen layers."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: torch.Tensor | None = None

    def forward(self, input_ids: torch.Tensor | None = None, **_: object) -> torch.Tensor:
        if self.hidden is None or self.hidden.shape[:2] != input_ids.shape:
            raise RuntimeError("cached frozen-layer output does not match the batch")
        return self.hidden


class FrozenPrefix:
    """The cached output of the encoder's frozen embeddings + lower layers, per dataset index."""

    def __init__(self, model: MultimodalSentimentModel) -> None:
        self.bert = model.text.encoder
        self.layers = self.bert.encoder.layer
        self.frozen = len(self.layers) - min(
            len(self.layers), max(0, model.config.text_trainable_layers)
        )
        self.stub = _CachedOutput()
        self.cache: dict[int, torch.Tensor] = {}

    @contextlib.contextmanager
    def _layers(self, layers: nn.ModuleList) -> Iterator[None]:
        original = self.bert.encoder.layer
        self.bert.encoder.layer = layers
        try:
            yield
        finally:
            self.bert.encoder.layer = original

    def build(self, loader: DataLoader, device: torch.device, *, progress: bool = True) -> None:
        """Run embeddings + frozen layers over every example of `loader` (batches carry
        `index`), in eval mode, keeping each example's unpadded output."""
        was_training = self.bert.training
        self.bert.eval()
        with torch.inference_mode(), self._layers(self.layers[: self.frozen]):
            for batch in tqdm(
                loader, desc="cache frozen layers", leave=False, disable=not progress
            ):
                if not batch["size"]:
                    continue
                text = {k: v.to(device) for k, v in batch["text"].items()}
                hidden = self.bert(
                    input_ids=text["input_ids"],
                    attention_mask=text["attention_mask"],
                    **segment_ids(text.get("token_type_ids")),
                ).last_hidden_state
                lengths = text["attention_mask"].sum(1).tolist()
                for row, (index, length) in enumerate(zip(batch["index"], lengths, strict=True)):
                    self.cache[int(index)] = hidden[row, :length].to(torch.float16).cpu()
        self.bert.train(was_training)

    @contextlib.contextmanager
    def active(self, batch: dict, device: torch.device) -> Iterator[None]:
        """Within this block the model's forward starts from the cached states of `batch`."""
        hidden = pad_sequence([self.cache[int(i)] for i in batch["index"]], batch_first=True)
        self.stub.hidden = hidden.to(device=device, dtype=torch.float32)
        embeddings = self.bert.embeddings
        self.bert.embeddings = self.stub
        try:
            with self._layers(self.layers[self.frozen :]):
                yield
        finally:
            self.bert.embeddings = embeddings
            self.stub.hidden = None
