"""The label sets the model predicts. The one place these lists live."""

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
# The channels an analysis reads, in the order results list them (JSON stores may reorder keys).
CHANNELS: tuple[str, ...] = ("text", "face", "voice", "combined")


def used_channels(channels: dict[str, dict] | None) -> list[str]:
    """The channels that produced output, in `CHANNELS` order."""
    return [name for name in CHANNELS if (channels or {}).get(name, {}).get("used")]
