"""The multimodal sentiment model: text, audio and video encoders, fused, with two heads."""

from __future__ import annotations

import torch
from torch import nn

from mlcore.config import ModelConfig
from mlcore.labels import EMOTIONS, SENTIMENTS


def segment_ids(token_type_ids: torch.Tensor | None) -> dict:
    """`token_type_ids` as a keyword argument for the encoder, when the tokenizer made them."""
    return {} if token_type_ids is None else {"token_type_ids": token_type_ids}


class TextEncoder(nn.Module):
    """A BERT-family transformer (mean-pooled, as sentence-transformers does), projected."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        from transformers import AutoModel  # noqa: PLC0415 - heavy import

        path = config.resolved_text_encoder_path()
        self.encoder = AutoModel.from_pretrained(path, local_files_only=True)
        self._freeze_lower_layers(config.text_trainable_layers)
        self.projection = nn.Linear(self.encoder.config.hidden_size, config.projection_dim)

    def _freeze_lower_layers(self, trainable_layers: int) -> None:
        layers = self.encoder.encoder.layer
        first_trainable = max(0, len(layers) - trainable_layers)
        for param in self.encoder.embeddings.parameters():
            param.requires_grad = False
        for layer in layers[:first_trainable]:
            for param in layer.parameters():
                param.requires_grad = False

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **_: object,
    ):
        # Segment ids mark the context of an utterance + context pair (BERT family); encoders
        # without them (MPNet) get none. The frozen-prefix cache passes the same ones.
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **segment_ids(token_type_ids)
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.projection(pooled)


class AudioEncoder(nn.Module):
    """A small CNN over the log-mel spectrogram (batch, 1, n_mels, steps). Trained, not frozen."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]

        self.features = nn.Sequential(
            *block(1, 32), *block(32, 64), *block(64, 128), nn.AdaptiveAvgPool2d(1)
        )
        self.projection = nn.Sequential(
            nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(128, config.projection_dim)
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.projection(self.features(mel))


class VideoEncoder(nn.Module):
    """torchvision R3D-18 over (batch, 3, frames, H, W), projected. Weights: local file or none."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        from torchvision.models.video import r3d_18  # noqa: PLC0415 - heavy import

        self.backbone = r3d_18(weights=None)
        if config.video_backbone_weights:
            state = torch.load(config.video_backbone_weights, map_location="cpu", weights_only=True)
            self.backbone.load_state_dict(state)
        features = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.projection = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(features, config.projection_dim)
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.projection(self.backbone(frames))


def _head(in_features: int, classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, classes)
    )


class MultimodalSentimentModel(nn.Module):
    """Emotion (7) and sentiment (3) logits from the configured modalities."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.text = TextEncoder(config)
        self.audio = AudioEncoder(config) if "audio" in config.modalities else None
        self.video = VideoEncoder(config) if "video" in config.modalities else None
        fused = config.projection_dim * len(config.modalities)
        self.fusion = nn.Sequential(
            nn.Linear(fused, config.fusion_hidden),
            nn.BatchNorm1d(config.fusion_hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
        )
        self.emotion_head = _head(config.fusion_hidden, len(EMOTIONS), config.dropout)
        self.sentiment_head = _head(config.fusion_hidden, len(SENTIMENTS), config.dropout)

    def forward(
        self,
        text: dict[str, torch.Tensor],
        audio: torch.Tensor | None = None,
        video: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`audio`/`video` may be None for a configured branch (e.g. a video with no audio
        stream): that branch then contributes a zero embedding instead of failing."""
        parts = [self.text(**text)]
        batch = parts[0].shape[0]
        for encoder, tensor in ((self.audio, audio), (self.video, video)):
            if encoder is None:
                continue
            if tensor is None:
                parts.append(parts[0].new_zeros(batch, self.config.projection_dim))
            else:
                parts.append(encoder(tensor))
        fused = self.fusion(torch.cat(parts, dim=1))
        return {"emotion": self.emotion_head(fused), "sentiment": self.sentiment_head(fused)}
