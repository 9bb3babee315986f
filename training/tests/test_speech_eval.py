"""Through-speech evaluation (espeak-ng -> Whisper -> model) on a handful of generated lines, and
the one text normalisation shared by training and inference."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from mlcore.checkpoint import save_checkpoint
from mlcore.config import ModelConfig, PreprocessConfig
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.model import MultimodalSentimentModel
from mlcore.text import conversation_contexts, encode_texts, normalize_for_model
from training import speech_eval
from training.evaluate import main as evaluate_main
from training.meld import (
    MeldCollator,
    MeldDataset,
    drop_punctuation,
    read_meld_csv,
    transcript_style,
    with_texts,
)
from training.tests.conftest import write_meld_csv

LINES = [
    # (dialogue, utterance, text, emotion, sentiment)
    (0, 0, "Oh my God!! You got the job!", "joy", "positive"),
    (0, 1, "Yes? Yes?! I did.....", "surprise", "positive"),
    (0, 2, "-- I am so sorry about your cat.", "sadness", "negative"),
    (1, 0, "Okay.", "neutral", "neutral"),
    (1, 1, "!!!", "neutral", "neutral"),  # nothing to speak
]


def _row(i: int, d: int, u: int, text: str, emotion: str, sentiment: str) -> dict:
    return {
        "Sr No.": i + 1, "Utterance": text, "Speaker": "A", "Emotion": emotion,
        "Sentiment": sentiment, "Dialogue_ID": d, "Utterance_ID": u, "Season": 1, "Episode": 1,
        "StartTime": "00:00:01,000", "EndTime": "00:00:02,000",
    }  # fmt: skip


@pytest.fixture(scope="module")
def lines_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "dev_sent_emo.csv"
    return write_meld_csv(path, [_row(i, *line) for i, line in enumerate(LINES)])


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        ModelConfig().resolved_text_encoder_path(), local_files_only=True
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = ModelConfig(text_trainable_layers=1, preprocess=PreprocessConfig(max_text_tokens=32))
    path = tmp_path_factory.mktemp("ckpt") / "text.pt"
    return save_checkpoint(
        MultimodalSentimentModel(config), path, model_version="test-text", trained=False
    )


# --- The one normalisation ---


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Oh my God!!", "Oh my God!!"),
        ("Yeah,, right!?", "Yeah, right!?"),
        ("-- No, no!", "No, no!"),
        ("Wait..... what?", "Wait... what?"),
        ("  Okay.\n Fine. ", "Okay. Fine."),
        ("Mr. Geller owes me 3.50", "Mr. Geller owes me 3.50"),
        ("", ""),
    ],
)
def test_normalize_for_model_writes_debris_as_transcripts_do(raw: str, normal: str) -> None:
    assert normalize_for_model(raw) == normal
    assert normalize_for_model(normal) == normal  # idempotent


@pytest.mark.parametrize(("context_utterances", "context_following"), [(0, 0), (2, 0), (1, 1)])
def test_training_and_inference_features_are_identical(
    lines_csv, tokenizer, context_utterances, context_following
) -> None:
    """The training collator (MELD rows) and the Analyzer's call (`encode_texts` on transcript
    texts with `conversation_contexts`) give the model the same tensors for the same text,
    and both read it normalised."""
    preprocess = PreprocessConfig(
        max_text_tokens=48,
        context_utterances=context_utterances,
        context_following=context_following,
    )
    rows = [
        u
        for u in read_meld_csv(lines_csv, context_utterances, context_following)
        if u.dialogue_id == 0
    ]
    dataset = MeldDataset(rows, preprocess)
    training = MeldCollator(tokenizer, preprocess)([dataset[i] for i in range(len(dataset))])
    # What mlcore.inference.Analyzer._classify does with one video's utterance texts.
    texts = [u.text for u in rows]
    contexts = conversation_contexts(texts, preprocess)
    inference = encode_texts(tokenizer, texts, contexts, preprocess)
    assert training["text"].keys() == dict(inference).keys()
    for key in inference:
        assert torch.equal(training["text"][key], inference[key]), key
    decoded = tokenizer.batch_decode(inference["input_ids"])
    assert not any("- -" in d for d in decoded)  # the leading "--" of a line is gone
    # The same as encoding the normalised texts: normalisation happens exactly once, inside.
    normal = encode_texts(
        tokenizer,
        [normalize_for_model(t) for t in texts],
        [normalize_for_model(c) for c in contexts],
        preprocess,
    )
    assert torch.equal(normal["input_ids"], inference["input_ids"])


def test_punctuation_dropout_touches_only_marks() -> None:
    rng = np.random.default_rng(0)
    text = "Oh, hi! How are you? Fine."
    assert drop_punctuation(text, rng, 0.0) == text
    assert drop_punctuation(text, rng, 1.0) == "Oh hi How are you Fine"
    some = drop_punctuation(text * 20, np.random.default_rng(1), 0.5)
    assert 0 < sum(some.count(m) for m in ",!?.") < sum((text * 20).count(m) for m in ",!?.")


def test_transcript_style_writes_exclamations_as_periods_at_random() -> None:
    text = "Hey! Oh, no!"
    rng = np.random.default_rng(0)
    assert transcript_style(text, rng, 0.0, 0.0) == text
    assert transcript_style(text, rng, 1.0, 0.0) == "Hey. Oh, no."
    outs = {transcript_style(text, np.random.default_rng(i), 0.5, 0.0) for i in range(20)}
    assert outs == {text, "Hey. Oh, no."}


def test_training_batches_are_augmented_only_when_asked(lines_csv, tokenizer) -> None:
    preprocess = PreprocessConfig(max_text_tokens=48)
    dataset = MeldDataset(read_meld_csv(lines_csv), preprocess)
    items = [dataset[i] for i in range(len(dataset))]
    plain = MeldCollator(tokenizer, preprocess)(items)["text"]["input_ids"]
    assert torch.equal(plain, MeldCollator(tokenizer, preprocess)(items)["text"]["input_ids"])
    augmented = MeldCollator(tokenizer, preprocess, exclamation_dropout=1.0)(items)
    assert "!" not in " ".join(tokenizer.batch_decode(augmented["text"]["input_ids"]))
    assert "!" in " ".join(tokenizer.batch_decode(plain))


# --- Speaking, transcribing, caching, scoring ---


def test_voice_and_speed_are_fixed_per_line_and_varied() -> None:
    picks = [speech_eval.speaking_for(d, u) for d in range(40) for u in range(5)]
    assert picks == [speech_eval.speaking_for(d, u) for d in range(40) for u in range(5)]
    assert {p.voice for p in picks} == set(speech_eval.VOICES)
    assert {p.words_per_minute for p in picks} == set(speech_eval.SPEEDS_WPM)
    assert speech_eval.spoken_text("-- Hello!") == "Hello!"
    assert speech_eval.spoken_text("...!") is None


def test_with_texts_keeps_labels_and_rebuilds_context(lines_csv) -> None:
    rows = read_meld_csv(lines_csv, 1)
    new = with_texts(rows, [f"t{i}" for i in range(len(rows))], 1)
    assert [u.emotion for u in new] == [u.emotion for u in rows]
    assert [u.context for u in new[:3]] == ["", "t0", "t1"]
    assert new[3].context == ""  # a new dialogue


def test_through_speech_transcribes_once_then_reads_the_cache(
    lines_csv, checkpoint, tmp_path, monkeypatch
) -> None:
    cache = tmp_path / "cache"
    first = speech_eval.through_speech_metrics(
        checkpoint, lines_csv, cache_dir=cache, progress=False
    )
    assert first["lines"] == len(LINES)
    assert first["transcription"]["transcribed"] == len(LINES)
    assert first["transcription"]["cached"] == 0
    entries = json.loads((cache / speech_eval.CACHE_FILE).read_text())
    transcripts = {k.split("|")[0]: v["transcript"] for k, v in entries.items()}
    assert len(entries) == len(LINES)
    assert all("|tiny.en|" in key for key in entries)
    assert "sorry" in transcripts["dia0_utt2"].lower()
    assert "cat" in transcripts["dia0_utt2"].lower()
    assert transcripts["dia1_utt1"] == ""  # nothing to speak
    assert first["transcription"]["punctuation_gold"]["!"] >= 5
    assert 0.0 <= first["transcription"]["word_error_rate"] < 0.5
    assert speech_eval.word_error_rate(["Oh, my God!", "!!!"], ["oh my god", ""]) == 0.0
    assert speech_eval.word_error_rate(["I am so sorry"], ["I am sorry"]) == 0.25
    for reading in ("gold_text", "through_speech"):
        for task in ("emotion", "sentiment"):
            assert 0.0 <= first[reading][task]["weighted_f1"] <= 1.0
            assert sum(map(sum, first[reading][task]["confusion_matrix"])) == len(LINES)

    # A rerun never speaks or transcribes: everything comes from the cache.
    def fail(*args, **kwargs):
        raise AssertionError("transcribed again")

    monkeypatch.setattr(speech_eval, "speak_and_transcribe", fail)
    again = speech_eval.through_speech_metrics(
        checkpoint, lines_csv, cache_dir=cache, progress=False
    )
    assert again["transcription"]["cached"] == len(LINES)
    assert again["transcription"]["transcribed"] == 0
    assert again["through_speech"] == first["through_speech"]
    assert again["gold_text"] == first["gold_text"]

    # The evaluate CLI reports both readings, from the same cache.
    out = tmp_path / "report"
    code = evaluate_main(
        [
            "--checkpoint", str(checkpoint), "--split-csv", str(lines_csv), "--out", str(out),
            "--speech", "--speech-cache", str(cache), "--speech-limit", "3",
        ]
    )  # fmt: skip
    assert code == 0
    stored = json.loads((out / "metrics.json").read_text())["through_speech"]
    assert stored["lines"] == 3
    assert stored["transcription"]["cached"] == 3
    assert set(stored["through_speech"]) == {"emotion", "sentiment"}


def test_flite_voices_are_a_second_evaluation_set_whisper_can_hear(tmp_path) -> None:
    flite = speech_eval.VOICE_SETS["flite"]
    assert not set(flite) & (set(speech_eval.VOICES) | set(speech_eval.TRAIN_VOICES))
    picks = {speech_eval.speaking_for(d, u, flite).voice for d in range(40) for u in range(5)}
    assert picks == set(flite)
    speech_eval._init_worker(None, 1)
    for voice, speed in zip(flite, speech_eval.SPEEDS_WPM, strict=False):
        entry = speech_eval.speak_and_transcribe(
            "I am so sorry about your cat.", speech_eval.Speaking(voice, speed)
        )
        heard = entry["transcript"].lower()
        assert "sorry" in heard and "cat" in heard, (voice, heard)
        assert 1.5 < entry["audio_s"] < 5.0  # the line plus its pauses, at the asked pace
    slow, fast = (
        speech_eval.speak_and_transcribe("One two three four five six.", speech_eval.Speaking(
            "flite:slt", wpm))["audio_s"]
        for wpm in (120, 200)
    )  # fmt: skip
    assert slow > fast * 1.3


def _utterance(start: float, end: float, emotion: str | None, sentiment: str = "neutral"):
    from mlcore.inference import UtteranceResult
    from mlcore.labels import EMOTIONS, SENTIMENTS

    emotions = None if emotion is None else {e: float(e == emotion) for e in EMOTIONS}
    sentiments = None if emotion is None else {s: float(s == sentiment) for s in SENTIMENTS}
    return UtteranceResult(0, start, end, "", emotion, emotions, sentiment, sentiments)


def test_each_line_takes_the_labels_of_the_utterances_over_it() -> None:
    utterances = [
        _utterance(0.0, 2.0, "joy", "positive"),
        _utterance(2.0, 3.0, "anger", "negative"),
        _utterance(5.0, 6.0, None),  # heard, but no label (e.g. language uncertain)
    ]
    windows = [(0.5, 2.2), (1.8, 3.0), None, (5.0, 6.0), (8.0, 9.0)]
    joy, anger = EMOTIONS.index("joy"), EMOTIONS.index("anger")
    positive, negative = SENTIMENTS.index("positive"), SENTIMENTS.index("negative")
    assert speech_eval.line_labels(utterances, windows) == [
        (joy, positive),  # 1.5 s of joy against 0.2 s of anger
        (anger, negative),  # 0.2 s of joy against 1.0 s of anger
        None,  # nothing spoken
        None,  # only an unlabelled utterance
        None,  # nothing heard
    ]


def test_a_whole_dialogue_is_one_video_the_product_analyses(lines_csv, tmp_path):
    # The Analyzer refuses untrained checkpoints: this random model is marked trained; only the
    # plumbing is checked here, not the labels.
    torch.manual_seed(0)
    config = ModelConfig(
        text_trainable_layers=1,
        preprocess=PreprocessConfig(max_text_tokens=32, context_utterances=1, context_following=1),
    )
    checkpoint = save_checkpoint(
        MultimodalSentimentModel(config), tmp_path / "c.pt", model_version="test", trained=True
    )
    lines = read_meld_csv(lines_csv)
    windows = speech_eval.dialogue_track(lines[:3], tmp_path / "d.wav")
    assert all(w is not None for w in windows)
    starts = [w[0] for w in windows]
    assert starts == sorted(starts) and starts[0] == pytest.approx(speech_eval.DIALOGUE_PAUSE_S)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start - end == pytest.approx(speech_eval.DIALOGUE_PAUSE_S, abs=1e-3)
    assert speech_eval.dialogue_track(lines[4:], tmp_path / "e.wav") == [None]

    metrics = speech_eval.dialogue_metrics(checkpoint, lines_csv, dialogues=5, progress=False)
    assert (metrics["dialogues"], metrics["lines"]) == (2, len(LINES))
    assert metrics["utterances"] >= 2  # the spoken lines were heard, possibly joined
    assert 1 <= metrics["unlabelled"] <= 2  # "!!!" has nothing to speak ("Okay." may be lost)
    assert sum(map(sum, metrics["emotion"]["confusion_matrix"])) == len(LINES)
    # The CLI puts it beside the gold text and the per-line transcripts of the same lines.
    out = tmp_path / "report"
    args = ["--checkpoint", str(checkpoint), "--split-csv", str(lines_csv), "--dialogues", "1"]
    assert speech_eval.main([*args, "--speech-cache", str(tmp_path / "c"), "--out", str(out)]) == 0
    one = json.loads((out / "speech_metrics.json").read_text())["dialogues"]
    assert (one["dialogues"], one["lines"]) == (1, 3)
    for name in ("end_to_end", "through_speech_same_lines", "gold_text_same_lines"):
        assert set(one[name]) == {"emotion", "sentiment"}


# --- Training on transcripts through speech ---


def test_training_voices_are_not_the_evaluation_voices() -> None:
    train_voices = speech_eval.VOICE_SETS["train"]
    assert not set(train_voices) & set(speech_eval.VOICES)
    picks = {
        speech_eval.speaking_for(d, u, train_voices).voice for d in range(40) for u in range(5)
    }
    assert picks == set(train_voices)


def test_transcribe_only_fills_the_cache_that_training_reads(lines_csv, tmp_path, capsys) -> None:
    from training.train import training_transcripts

    cache = tmp_path / "cache"
    args = [
        "--split-csv",
        str(lines_csv),
        "--transcribe-only",
        "train",
        "--speech-cache",
        str(cache),
    ]
    assert speech_eval.main(args) == 0
    assert f"{len(LINES)} lines: 0 cached, {len(LINES)} transcribed" in capsys.readouterr().out
    rows = read_meld_csv(lines_csv)
    spoken = speech_eval.cached_transcripts(rows, cache, voices=speech_eval.TRAIN_VOICES)
    assert "sorry" in spoken[2].lower()
    assert spoken[4] == ""  # nothing to speak
    keys = json.loads((cache / speech_eval.CACHE_FILE).read_text())
    assert {k.split("|")[1] for k in keys} <= set(speech_eval.TRAIN_VOICES)
    # Only the training voices were spoken: the evaluation's transcripts are not in the cache.
    assert speech_eval.cached_transcripts(rows, cache) == [None] * len(rows)
    assert training_transcripts(rows, cache) == spoken
    with pytest.raises(FileNotFoundError, match="--transcribe-only train"):
        training_transcripts(rows, tmp_path / "elsewhere")
    assert speech_eval.main(args) == 0  # a rerun makes nothing
    assert f"{len(LINES)} cached, 0 transcribed" in capsys.readouterr().out


def test_training_lines_are_read_as_their_transcripts_when_asked(lines_csv, tokenizer) -> None:
    preprocess = PreprocessConfig(max_text_tokens=48)
    rows = read_meld_csv(lines_csv)
    spoken = ["oh my god you got the job", None, "so sorry about your cat", "okay", ""]
    dataset = MeldDataset(rows, preprocess, spoken_texts=spoken)
    items = [dataset[i] for i in range(len(dataset))]

    def read(collator: MeldCollator) -> list[str]:
        ids = collator(items)["text"]["input_ids"]
        return tokenizer.batch_decode(ids, skip_special_tokens=True)

    subtitles = read(MeldCollator(tokenizer, preprocess))
    assert read(MeldCollator(tokenizer, preprocess, transcript_p=0.0)) == subtitles
    always = read(MeldCollator(tokenizer, preprocess, transcript_p=1.0))
    assert always[0] == "oh my god you got the job"
    assert always[1] == subtitles[1]  # no transcript: the subtitle
    assert always[2] == "so sorry about your cat"
    assert always[4] == "."  # an empty transcript reads as the model's empty input
    mixed = {
        tuple(read(MeldCollator(tokenizer, preprocess, transcript_p=0.5, seed=s))) for s in range(8)
    }
    assert len(mixed) > 2  # each line chosen at random, per batch
    with pytest.raises(ValueError, match="one spoken text"):
        MeldDataset(rows, preprocess, spoken_texts=spoken[:2])
