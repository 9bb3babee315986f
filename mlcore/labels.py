"""The label sets the model predicts. The one place these lists live."""

EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
# The channels an analysis reads, in the order results list them (JSON stores may reorder keys).
CHANNELS: tuple[str, ...] = ("text", "face", "voice", "combined")


def used_channels(channels: dict[str, dict] | None) -> list[str]:
    """The channels that produced output, in `CHANNELS` order."""
    return [name for name in CHANNELS if (channels or {}).get(name, {}).get("used")]


# A whole-video headline states a label only when it is supported: it holds at least this share
# of the labelled speaking time, and the model gave it with at least this mean probability where
# it gave it. Otherwise the headline says "mixed" (no label holds most of the time) or "unclear"
# (the label holds the time, but on weak guesses).
HEADLINE_MIN_SHARE = 0.5
HEADLINE_MIN_CONFIDENCE = 0.5


def headline(shares: dict[str, float], confidence: dict[str, float]) -> dict:
    """`label` (the one with most speaking time), `verdict` ("clear", "mixed", "unclear"),
    its `share` of the speaking time and the model's `mean_confidence` in it."""
    label = max(shares, key=lambda name: (shares[name], confidence.get(name, 0.0)))
    share, sure = shares[label], confidence.get(label, 0.0)
    if share < HEADLINE_MIN_SHARE:
        verdict = "mixed"
    elif sure < HEADLINE_MIN_CONFIDENCE:
        verdict = "unclear"
    else:
        verdict = "clear"
    return {
        "label": label,
        "verdict": verdict,
        "share": round(share, 4),
        "mean_confidence": round(sure, 4),
    }
