from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from mlcore.config import PreprocessConfig, default_text_encoder_path
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.testmedia import make_frame_counter_clip
from mlcore.text import CONTEXT_SEPARATOR
from training.meld import (
    BucketBatchSampler,
    MeldCollator,
    MeldDataset,
    MeldUtterance,
    clean_text,
    count_labels,
    meld_dir,
    read_meld_csv,
    split_csv,
)
from training.tests.conftest import MELD_COLUMNS, write_meld_csv


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("You mustâ€™ve had your hands full.", "You must've had your hands full."),
        ("Soâ€¦ So", "So... So"),
        ("â€œGood-bye Phoebe.â€\x9d", '"Good-bye Phoebe."'),
        ("Itâ€™s uhâ€”Wait!", "It's uh - Wait!"),
        ("Â Hi there", "Hi there"),
        ("don\x92t", "don't"),  # cp1252 byte read as latin-1
        ("company’s “quote” – x…", 'company\'s "quote" - x...'),  # clean typographic -> ASCII
        ("Adiós, Nestlé", "Adiós, Nestlé"),  # real accents survive
        ("cafÃ©  au   lait", "café au lait"),
        ("plain text", "plain text"),
    ],
)
def test_clean_text_repairs_meld_encoding_debris(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_a_meld_file_is_read_whole_counted_and_cleaned(meld_train_csv, meld_dev_csv) -> None:
    train = read_meld_csv(meld_train_csv)
    dev = read_meld_csv(meld_dev_csv)
    assert (len(train), len(dev)) == (31, 62)
    assert count_labels(train, "emotion") == {
        "neutral": 9, "joy": 5, "sadness": 5, "anger": 4, "disgust": 3, "fear": 3, "surprise": 2,
    }  # fmt: skip
    assert count_labels(dev, "sentiment") == {"negative": 30, "neutral": 18, "positive": 14}
    # No mojibake or typographic punctuation is left after cleaning.
    assert "I can't believe it either." in [u.text for u in train]
    assert not [u.text for u in train + dev if any(c in u.text for c in "â€’“”…\x92Â")]


def test_meld_dir_follows_the_env_override(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MELD_DIR", str(tmp_path))
    assert meld_dir() == tmp_path
    assert split_csv("dev") == tmp_path / "dev_sent_emo.csv"
    with pytest.raises(ValueError, match="unknown MELD split"):
        split_csv("validation")


def _row(dialogue: int, utterance: int, text: str, emotion: str = "neutral") -> dict:
    sentiment = {"joy": "positive", "anger": "negative"}.get(emotion, "neutral")
    return dict.fromkeys(MELD_COLUMNS, "1") | {
        "Utterance": text,
        "Speaker": "Ross",
        "Emotion": emotion,
        "Sentiment": sentiment,
        "Dialogue_ID": str(dialogue),
        "Utterance_ID": str(utterance),
        "StartTime": "00:00:01,000",
        "EndTime": "00:00:02,000",
    }


def test_context_is_the_previous_utterances_of_the_same_dialogue(tmp_path) -> None:
    # Rows out of order, two dialogues: context follows Utterance_ID within a dialogue only.
    path = write_meld_csv(
        tmp_path / "train_sent_emo.csv",
        [
            _row(1, 2, "Third one.", "joy"),
            _row(1, 0, "Firstâ€¦"),
            _row(2, 0, "Other dialogue.", "anger"),
            _row(1, 1, "Second."),
            _row(1, 3, "Fourth."),
        ],
    )
    by_key = {(u.dialogue_id, u.utterance_id): u for u in read_meld_csv(path, 2)}
    assert by_key[1, 0].context == ""
    assert by_key[1, 1].context == "First..."
    # Most recent first, and only the last two.
    assert by_key[1, 3].context == CONTEXT_SEPARATOR.join(["Third one.", "Second."])
    assert by_key[2, 0].context == ""
    assert by_key[1, 2].emotion == EMOTIONS.index("joy")
    assert by_key[2, 0].sentiment == SENTIMENTS.index("negative")
    assert by_key[1, 3].clip_name == "dia1_utt3.mp4"
    # Without context, none is built; speaker names are never part of the text.
    utterances = read_meld_csv(path, 0)
    assert {u.context for u in utterances} == {""}
    assert not any("Ross" in u.text + u.context for u in read_meld_csv(path, 3))


def test_unknown_label_is_reported_with_its_line(tmp_path) -> None:
    path = write_meld_csv(tmp_path / "bad.csv", [_row(0, 0, "Hi."), _row(0, 1, "Hey.", "bored")])
    with pytest.raises(ValueError, match="line 3: unknown emotion 'bored'"):
        read_meld_csv(path)


def test_cp1252_csv_is_read_and_cleaned(tmp_path) -> None:
    path = write_meld_csv(tmp_path / "dev.csv", [_row(0, 0, "PLACEHOLDER")])
    path.write_bytes(path.read_bytes().replace(b"PLACEHOLDER", "It’s… fine".encode("cp1252")))
    assert read_meld_csv(path)[0].text == "It's... fine"


def test_missing_and_unreadable_clips_are_skipped_and_counted(meld_mini) -> None:
    utterances = read_meld_csv(meld_mini["train_csv"], 1)
    dataset = MeldDataset(
        utterances, PreprocessConfig(), clips_dir=meld_mini["train_clips"], modalities=("text",)
    )
    assert len(utterances) == meld_mini["train_rows"]
    assert len(dataset) == meld_mini["good_train_clips"]
    assert sum(dataset.skipped.values()) == 2
    assert dataset.skipped["missing"] == 1
    report = dataset.skip_report()
    assert len(report["skipped_examples"]) == 2
    assert all(name.endswith(("_utt90.mp4", "_utt91.mp4")) for name in report["skipped_examples"])


def test_clip_items_hold_mel_and_frames_of_the_configured_shape(meld_mini) -> None:
    preprocess = PreprocessConfig(num_frames=4, frame_size=32, context_utterances=1)
    utterances = read_meld_csv(meld_mini["dev_csv"], 1)
    dataset = MeldDataset(
        utterances,
        preprocess,
        clips_dir=meld_mini["dev_clips"],
        modalities=("text", "audio", "video"),
    )
    tokenizer = AutoTokenizer.from_pretrained(default_text_encoder_path())
    batch = MeldCollator(tokenizer, preprocess)([dataset[0], dataset[1], dataset[2]])
    assert batch["size"] == 3 and batch["dropped"] == 0
    assert batch["audio"].shape == (3, 1, preprocess.n_mels, preprocess.mel_steps)
    assert batch["video"].shape == (3, 3, 4, 32, 32)
    # Speech was heard: the spectrogram is not all floor (silence).
    assert batch["audio"].max() > batch["audio"].min()
    assert batch["text"]["input_ids"].shape[0] == 3


def test_clips_mis_cut_to_minutes_are_read_only_up_to_the_cap(tmp_path) -> None:
    # Frame n of this clip has brightness 2n: the frames sampled show which seconds were read.
    make_frame_counter_clip(tmp_path / "dia0_utt0.mp4", seconds=4.0, fps=25)
    utterance = MeldUtterance(0, 0, "Hi.", "Ross", 4, 1, "")
    preprocess = PreprocessConfig(num_frames=4, frame_size=32)
    capped = MeldDataset(
        [utterance], preprocess, clips_dir=tmp_path, modalities=("text", "video"), max_clip_s=1.0
    )
    whole = MeldDataset(
        [utterance], preprocess, clips_dir=tmp_path, modalities=("text", "video"), max_clip_s=30.0
    )

    def brightness(dataset: MeldDataset) -> np.ndarray:
        frames = dataset[0]["frames"]  # (3, T, H, W), normalised
        std = torch.tensor(preprocess.video_std).view(3, 1, 1, 1)
        mean = torch.tensor(preprocess.video_mean).view(3, 1, 1, 1)
        return ((frames * std + mean) * 255).mean(dim=(0, 2, 3)).numpy()

    assert capped.clips[0].seconds == pytest.approx(1.0)
    assert brightness(capped).max() < 2 * 25 + 4  # all within the first second (frame < 25)
    assert brightness(whole).max() > 2 * 75  # the uncapped read reaches past 3 s


def test_decode_failure_is_dropped_and_counted_by_the_collator() -> None:
    tokenizer = AutoTokenizer.from_pretrained(default_text_encoder_path())
    collate = MeldCollator(tokenizer, PreprocessConfig())
    good = {"index": 0, "text": "Hi.", "context": "", "emotion": 4, "sentiment": 1}
    batch = collate([good, {"index": 1, "failed": "dia1_utt1.mp4"}, dict(good, index=2)])
    assert (batch["size"], batch["dropped"]) == (2, 1)
    assert batch["index"].tolist() == [0, 2]
    assert collate([{"index": 1, "failed": "x.mp4"}]) == {"dropped": 1, "size": 0}


def test_bucket_sampler_covers_every_example_once_in_similar_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=1001).tolist()
    sampler = BucketBatchSampler(lengths, 16, seed=5, pool_batches=10)
    sampler.set_epoch(0)
    epoch0 = list(sampler)
    flat = [i for batch in epoch0 for i in batch]
    assert sorted(flat) == list(range(1001))
    assert min(len(b) for b in epoch0) >= 2  # never a batch of one (BatchNorm)
    assert len(sampler) == len(epoch0)
    # Sorted within pools: a batch spans far less than the whole length range.
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch0]
    assert np.mean(spreads) < 10
    # Same (seed, epoch) -> same batches (resume); another epoch -> another order.
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    ordered = list(BucketBatchSampler(lengths, 16, shuffle=False))
    assert [lengths[i] for b in ordered for i in b] == sorted(lengths)


def test_label_counts_match_the_rows() -> None:
    utterances = [
        MeldUtterance(0, i, "x", "", e, s, "") for i, (e, s) in enumerate([(0, 0), (4, 1), (4, 2)])
    ]
    dataset = MeldDataset(utterances, PreprocessConfig())
    assert dataset.label_counts("emotion").tolist() == [1, 0, 0, 0, 2, 0, 0]
    assert dataset.label_counts("sentiment").tolist() == [1, 1, 1]
    assert Counter(u.emotion for u in dataset.utterances) == {4: 2, 0: 1}
