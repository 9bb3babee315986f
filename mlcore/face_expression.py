"""Facial-expression classifiers of the face channel, and the one face crop that training and
inference share.

Two classifiers, chosen by name (`EXPRESSION_MODELS`):
- `mobilenetv2-rafdb-fer` (default): torchvision's MobileNetV2, initialised from ImageNet and
  fine-tuned on RAF-DB (faces in the wild) and FER2013 train by `python -m training.face train`;
  RGB 96x96 crops; weights `mlcore/weights/face_expression.pt`, SHA-256 checked at load.
- `fer-mini-xception`: `fer`'s FER2013 mini-Xception (`mlcore.fer_model`), gray 64x64, the
  classifier before; kept selectable for comparison.

Both read `square_crop` of the detector's box: training cuts its faces with the same function
(`training.face`), so the model sees at inference what it learned from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch import nn

from mlcore.labels import EMOTIONS
from mlcore.paths import WEIGHTS_DIR
from mlcore.weights import cached_sha256

Box = tuple[float, float, float, float]

# Context added around the detector's box before the crop, as a fraction of its side: BlazeFace
# boxes are tight (brows to chin); 0.2 matches fer's own crop (Haar box + 10 px) on carphone.
CROP_MARGIN = 0.2
MOBILENET_INPUT = 96  # RAF-DB's aligned faces are 100 px; FER2013's 48 px
# No margin for the default classifier: the detector's box on RAF-DB's aligned faces covers the
# whole image (measured: x 0.01-1.00, y 0.09-1.07), so the box itself frames a face in a video
# the way its training images do. With a 0.2 margin, training crops were a fifth replicated
# edge pixels where a real frame shows hair and background: RAF-DB test read 0.82 on its own
# images but 0.70 with the faces placed in frames (same boxes).
MOBILENET_MARGIN = 0.0
FACE_EXPRESSION_WEIGHTS = WEIGHTS_DIR / "face_expression.pt"
FACE_EXPRESSION_SHA256 = "c5869d41fa861aecbdb13be9385356e6500328f9a45cb78871828ad15e0bb296"
DEFAULT_EXPRESSION_MODEL = "mobilenetv2-rafdb-fer"
EXPRESSION_MODELS = (DEFAULT_EXPRESSION_MODEL, "fer-mini-xception")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class FaceExpressionError(Exception):
    """An unknown classifier name, or weights that are not the recorded ones."""


def square_crop(image: np.ndarray, box: Box, size: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face in `box` (normalised x0, y0, x1, y1 of `image`), made square on its longer side,
    widened by `margin` of that side on each edge, cut from `image` (H, W) or (H, W, C) with edge
    pixels repeated past the border, and resized to size x size (cv2 area/bilinear). Same dtype."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    span = max(1, round(side))
    pad = max(0, -left, -top, left + span - width, top + span - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = image[top + pad : top + pad + span, left + pad : left + pad + span]
    # Shrinking: area averaging (no aliasing); enlarging: bilinear.
    interpolation = cv2.INTER_AREA if span > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


class ExpressionNet(nn.Module):
    """MobileNetV2 over uint8 RGB crops (N, H, W, 3): scales and normalises them itself (ImageNet
    statistics), so callers hand over `square_crop` output as is. Logits in EMOTIONS order."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.backbone = mobilenet_v2(num_classes=len(EMOTIONS), dropout=0.3)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1) * 255)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).float()
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.backbone(x)


class ExpressionClassifier(Protocol):
    name: str

    def crop(self, frame: np.ndarray, box: Box) -> np.ndarray: ...

    def probabilities(self, crops: np.ndarray) -> np.ndarray: ...


class MobileNetExpression:
    """The default classifier: `crop` an RGB frame's face, `probabilities` (N, 7) in EMOTIONS."""

    input_size = MOBILENET_INPUT

    def __init__(self, net: ExpressionNet, name: str, device: torch.device | None = None) -> None:
        self.device = device or torch.device("cpu")
        self.net = net.to(self.device, memory_format=torch.channels_last)
        self.name = name

    def crop(self, frame: np.ndarray, box: Box) -> np.ndarray:
        return square_crop(frame, box, self.input_size, MOBILENET_MARGIN)

    @torch.inference_mode()
    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
        return torch.softmax(self.net(batch), dim=1).cpu().numpy()


class MiniXceptionExpression:
    """fer's FER2013 mini-Xception: gray 64x64 crops scaled to [-1, 1]."""

    name = "fer-mini-xception"

    def __init__(self, device: torch.device | None = None) -> None:
        from mlcore.fer_model import FER_CLASSES, INPUT_SIZE, load_fer_model

        self.device = device or torch.device("cpu")
        self.input_size = INPUT_SIZE
        self.net = load_fer_model().to(self.device, memory_format=torch.channels_last)
        fer_names = {"angry": "anger", "happy": "joy", "sad": "sadness"}
        order = [fer_names.get(name, name) for name in FER_CLASSES]
        self._columns = [order.index(emotion) for emotion in EMOTIONS]

    def crop(self, frame: np.ndarray, box: Box) -> np.ndarray:
        gray = cv2.cvtColor(square_crop(frame, box, self.input_size), cv2.COLOR_RGB2GRAY)
        return (gray.astype(np.float32) / 255.0 - 0.5) * 2.0

    @torch.inference_mode()
    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(crops)).unsqueeze(1).to(self.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        return self.net(batch).cpu().numpy()[:, self._columns]


def load_expression_net(path: str | Path | None = None) -> ExpressionNet:
    """The trained ExpressionNet in eval mode. The shipped file must have its recorded SHA-256;
    a file given by path (a training run's output) is loaded as it is."""
    if path is None:
        path = FACE_EXPRESSION_WEIGHTS
        found = cached_sha256(path)
        if found != FACE_EXPRESSION_SHA256:
            raise FaceExpressionError(
                f"{path} has SHA-256 {found}, not the recorded {FACE_EXPRESSION_SHA256}"
            )
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = ExpressionNet()
    net.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    return net.eval()


def load_expression_classifier(
    name: str = DEFAULT_EXPRESSION_MODEL, device: torch.device | None = None
) -> ExpressionClassifier:
    """The classifier called `name` (EXPRESSION_MODELS; empty: the default) or, for a path to a
    trained ExpressionNet file, that one."""
    if name in ("", DEFAULT_EXPRESSION_MODEL):
        return MobileNetExpression(load_expression_net(), DEFAULT_EXPRESSION_MODEL, device)
    if name == "fer-mini-xception":
        return MiniXceptionExpression(device=device)
    if Path(name).suffix == ".pt" and Path(name).is_file():
        label = f"{DEFAULT_EXPRESSION_MODEL} ({Path(name).name})"
        return MobileNetExpression(load_expression_net(name), label, device)
    raise FaceExpressionError(
        f"unknown face-expression model {name!r}: one of {', '.join(EXPRESSION_MODELS)} "
        "or a path to a .pt file from `python -m training.face train`"
    )
