"""Fixtures for the training tests, all generated here (the tests need no data from outside the
project): MELD-format annotation files with invented dialogues, and a MELD-layout mini set with
real clips (espeak-ng speaking those utterances)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mlcore.testmedia import make_random_bytes, make_talking_clip

MELD_COLUMNS = [
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
]  # fmt: skip


# Invented dialogues in MELD's layout: (speaker, utterance, emotion, sentiment). Some lines carry
# the encoding debris MELD's files have (UTF-8 read as Windows-1252), which reading must repair.
DIALOGUES: tuple[tuple[tuple[str, str, str, str], ...], ...] = (
    (
        ("Ann", "Oh my God, you got the job!", "surprise", "positive"),
        ("Ben", "I start on Monday.", "neutral", "neutral"),
        ("Ann", "That is amazing news!", "joy", "positive"),
        ("Ben", "I canâ€™t believe it either.", "joy", "positive"),
    ),
    (
        ("Cat", "Who ate my sandwich?", "anger", "negative"),
        ("Dan", "It was not me.", "fear", "negative"),
        ("Cat", "You have mustard on your shirt.", "anger", "negative"),
        ("Dan", "Okay, fine, it was me.", "sadness", "negative"),
        ("Cat", "Unbelievable.", "disgust", "negative"),
    ),
    (
        ("Eve", "The movie starts at eight.", "neutral", "neutral"),
        ("Fay", "Should we get dinner first?", "neutral", "neutral"),
        ("Eve", "Sure, the pizza place is close.", "neutral", "neutral"),
        ("Fay", "Great, I am starving!", "joy", "positive"),
    ),
    (
        ("Gus", "My grandmother passed away.", "sadness", "negative"),
        ("Hal", "I am so sorry.", "sadness", "negative"),
        ("Gus", "Thanks for being here.", "neutral", "neutral"),
    ),
    (
        ("Ivy", "There is a spider in the bath!", "fear", "negative"),
        ("Jon", "It is tiny, relax.", "neutral", "neutral"),
        ("Ivy", "Get it out, please.", "fear", "negative"),
        ("Jon", "Wow, that smell is awful.", "disgust", "negative"),
    ),
    (
        ("Kim", "We won the lottery?", "surprise", "positive"),
        ("Lee", "Only ten dollars.", "neutral", "neutral"),
        ("Kim", "Still, that is fun!", "joy", "positive"),
    ),
    (
        ("Max", "Why did you tell her?", "anger", "negative"),
        ("Nia", "I thought she knew.", "sadness", "negative"),
        ("Max", "Well, now she does.", "anger", "negative"),
        ("Nia", "Iâ€™m sorry, really.", "sadness", "negative"),
    ),
    (
        ("Oli", "The train is late again.", "neutral", "neutral"),
        ("Pam", "Of course it is.", "disgust", "negative"),
        ("Oli", "Let us walk instead.", "neutral", "neutral"),
        ("Pam", "Good idea, it is sunny.", "joy", "positive"),
    ),
)


def meld_rows(dialogues, first_dialogue_id: int = 0) -> list[dict]:
    rows = []
    for d, dialogue in enumerate(dialogues, start=first_dialogue_id):
        for u, (speaker, text, emotion, sentiment) in enumerate(dialogue):
            rows.append(
                {
                    "Sr No.": len(rows) + 1, "Utterance": text, "Speaker": speaker,
                    "Emotion": emotion, "Sentiment": sentiment, "Dialogue_ID": d,
                    "Utterance_ID": u, "Season": 1, "Episode": 1,
                    "StartTime": f"00:00:{2 * u:02d},000", "EndTime": f"00:00:{2 * u + 1:02d},500",
                }
            )  # fmt: skip
    return rows


@pytest.fixture(scope="session")
def meld_train_csv(tmp_path_factory) -> Path:
    """MELD's train file layout with the invented dialogues (31 utterances)."""
    path = tmp_path_factory.mktemp("meld_csv") / "train_sent_emo.csv"
    return write_meld_csv(path, meld_rows(DIALOGUES))


@pytest.fixture(scope="session")
def meld_dev_csv(tmp_path_factory) -> Path:
    """MELD's dev file layout: the same dialogues under other ids, repeated to 62 utterances."""
    path = tmp_path_factory.mktemp("meld_csv") / "dev_sent_emo.csv"
    return write_meld_csv(path, meld_rows(DIALOGUES * 2, first_dialogue_id=100))


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
