"""Where the shipped model lives. The one place this path is written down."""

import os
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "default.pt"
# Weights assembled on this machine from split packages (mlcore.weights); never committed.
MODEL_CACHE_DIR = Path(
    os.environ.get("MODEL_CACHE_DIR") or Path(__file__).resolve().parent.parent / "var" / "models"
)
