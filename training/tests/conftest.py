"""Fixtures for the training tests: the real MELD annotations (../shared/meld or $MELD_DIR) and
a generated MELD-layout mini set with real clips (espeak-ng speaking MELD train utterances)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mlcore.testmedia import make_random_bytes, make_talking_clip
from training.meld import meld_dir, split_csv

MELD_COLUMNS = [
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
]  # fmt: skip


@pytest.fixture(scope="session")
def meld_train_csv() -> Path:
    path = split_csv("train")
    assert path.is_file(), f"MELD annotations not found in {meld_dir()} (set MELD_DIR)"
    return path


@pytest.fixture(scope="session")
def meld_dev_csv() -> Path:
    path = split_csv("dev")
    assert path.is_file(), f"MELD annotations not found in {meld_dir()} (set MELD_DIR)"
    return path


def write_meld_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MELD_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _short_dialogues(csv_path: Path, count: int, max_words: int) -> list[list[dict]]:
    """The first `count` dialogues of MELD train whose utterances are all short (fast clips)."""
    dialogues: dict[str, list[dict]] = {}
    with csv_path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            dialogues.setdefault(row["Dialogue_ID"], []).append(row)
    picked = []
    for rows in dialogues.values():
        if 3 <= len(rows) <= 8 and all(len(r["Utterance"].split()) <= max_words for r in rows):
            picked.append(rows)
            if len(picked) == count:
                break
    return picked


@pytest.fixture(scope="session")
def meld_mini(tmp_path_factory, meld_train_csv) -> dict:
    """A MELD-layout mini set: train/dev CSVs exactly like MELD's (real MELD train rows) and
    clip folders of `dia{D}_utt{U}.mp4` speaking those utterances. Train also lists one clip
    that is missing and one that is not media, as real MELD does."""
    root = tmp_path_factory.mktemp("meld_mini")
    dialogues = _short_dialogues(meld_train_csv, 5, 8)
    splits = {"train": [r for d in dialogues[:4] for r in d], "dev": dialogues[4]}
    clips = {}
    for split, rows in splits.items():
        folder = root / f"{split}_splits"
        for row in rows:
            name = f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}.mp4"
            make_talking_clip(folder / name, [row["Utterance"]], size=(96, 72), pause_s=0.2)
        clips[split] = folder
    broken = [dict(row) for row in splits["train"][:2]]
    broken[0]["Utterance_ID"], broken[1]["Utterance_ID"] = "90", "91"
    make_random_bytes(clips["train"] / f"dia{broken[1]['Dialogue_ID']}_utt91.mp4")
    write_meld_csv(root / "train_sent_emo.csv", splits["train"] + broken)
    write_meld_csv(root / "dev_sent_emo.csv", splits["dev"])
    return {
        "dir": root,
        "train_csv": root / "train_sent_emo.csv",
        "dev_csv": root / "dev_sent_emo.csv",
        "train_clips": clips["train"],
        "dev_clips": clips["dev"],
        "train_rows": len(splits["train"]) + 2,
        "good_train_clips": len(splits["train"]),
        "dev_rows": len(splits["dev"]),
    }
