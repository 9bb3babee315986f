"""MELD (Poria et al., ACL 2019) as model input: annotations, dialogue context and, optionally,
the raw clips (`dia{Dialogue_ID}_utt{Utterance_ID}.mp4`, as in MELD's raw release).

Text goes through `mlcore.text` and media through `mlcore.media`, the same functions inference
uses, so the model reads at inference what it read at training.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from mlcore.config import PreprocessConfig
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.media import (
    MEL_FLOOR_DB,
    MediaError,
    MediaInfo,
    load_audio,
    log_mel,
    probe,
    sample_frames,
)
from mlcore.text import conversation_contexts, encode_texts

REPO_ROOT = Path(__file__).resolve().parents[1]
SPLITS: tuple[str, ...] = ("train", "dev", "test")
# Some MELD clips are mis-cut to minutes; an utterance is seconds long. Only the first
# `DEFAULT_MAX_CLIP_S` of a clip are read.
DEFAULT_MAX_CLIP_S = 30.0


def meld_dir() -> Path:
    """`$MELD_DIR`, else `../shared/meld` beside the repository root."""
    override = os.environ.get("MELD_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "meld"


def split_csv(split: str, directory: str | Path | None = None) -> Path:
    """Path of `{split}_sent_emo.csv` in `directory` (default: `meld_dir()`)."""
    if split not in SPLITS:
        raise ValueError(f"unknown MELD split {split!r}; expected one of {SPLITS}")
    return Path(directory or meld_dir()) / f"{split}_sent_emo.csv"


# --- Text encoding debris ---

# Every character cp1252 (or latin-1, for cp1252's five holes) decodes a byte 0x80-0xFF to,
# mapped back to that byte: UTF-8 text wrongly decoded as cp1252 is a run of these.
_BYTE_CHAR: dict[int, str] = {
    b: bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0x100)
}
_CP1252_BYTE: dict[str, int] = {chr(b): b for b in _BYTE_CHAR} | {
    c: b for b, c in _BYTE_CHAR.items()
}
_HIGH_RUN = re.compile("[" + re.escape("".join(_CP1252_BYTE)) + "]+")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
# Typographic punctuation -> ASCII: Whisper transcripts (the text at inference) use ASCII quotes.
_ASCII_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": " - ",
        "\u2026": "...",
        "\u00a0": " ",
        "\ufffd": "",
    }
)
# What is left of a non-breaking space ("\xc2\xa0") whose second byte was already turned into a
# plain space.
_STRAY_A_CIRCUMFLEX = re.compile("\u00c2(?=\\s|$)")
_SPACES = re.compile(r"\s+")


def _undo_mojibake(run: re.Match[str]) -> str:
    """Bytes that form UTF-8 are decoded as UTF-8; the others ("Adiós", a lone "\\x92") stay,
    as their cp1252 characters."""
    decoded = bytes(_CP1252_BYTE[c] for c in run.group(0)).decode("utf-8", "surrogateescape")
    return _ESCAPED_BYTE.sub(lambda m: _BYTE_CHAR[ord(m.group(0)) - 0xDC00], decoded)


def clean_text(text: str) -> str:
    """Repair MELD's text encoding debris, the one place this is done.

    - UTF-8 read as cp1252 ("donâ€™t", "Soâ€¦", "Â ") is re-encoded and decoded as UTF-8;
    - stray cp1252 bytes read as latin-1 ("don\\x92t") become their cp1252 characters;
    - typographic quotes, dashes and ellipses become ASCII, as Whisper writes them;
    - whitespace is collapsed.
    """
    text = _HIGH_RUN.sub(_undo_mojibake, text)
    text = _STRAY_A_CIRCUMFLEX.sub("", text)
    text = text.translate(_ASCII_PUNCTUATION)
    return _SPACES.sub(" ", text).strip()


# --- Annotations ---


@dataclass(frozen=True)
class MeldUtterance:
    dialogue_id: int
    utterance_id: int
    text: str
    speaker: str
    emotion: int  # index into mlcore.labels.EMOTIONS
    sentiment: int  # index into mlcore.labels.SENTIMENTS
    context: str  # utterances around it in the dialogue, via mlcore.text.conversation_contexts

    @property
    def clip_name(self) -> str:
        return f"dia{self.dialogue_id}_utt{self.utterance_id}.mp4"


def _read_csv_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old MELD copies are cp1252: latin-1 keeps every byte as one character, and clean_text
        # maps the cp1252 ones (\x92 -> ') like the rest of the debris.
        return data.decode("latin-1")


def _label(value: str, labels: Sequence[str], what: str, path: Path, line: int) -> int:
    value = value.strip().lower()
    if value not in labels:
        raise ValueError(f"{path.name} line {line}: unknown {what} {value!r}")
    return labels.index(value)


def read_meld_csv(
    path: str | Path, context_utterances: int = 0, context_following: int = 0
) -> list[MeldUtterance]:
    """All rows of a MELD annotation CSV, in file order, text cleaned, with dialogue context:
    the previous `context_utterances` and the next `context_following` utterances of the same
    dialogue (by Utterance_ID). Speaker names are deliberately not in the context: inference
    (Whisper) has none."""
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_read_csv_text(path), newline=""))
    raw = []
    for line, row in enumerate(reader, start=2):
        raw.append(
            (
                int(row["Dialogue_ID"]),
                int(row["Utterance_ID"]),
                clean_text(row["Utterance"]),
                row["Speaker"].strip(),
                _label(row["Emotion"], EMOTIONS, "emotion", path, line),
                _label(row["Sentiment"], SENTIMENTS, "sentiment", path, line),
            )
        )
    contexts = _dialogue_contexts(
        [(d, u, text) for d, u, text, *_ in raw], context_utterances, context_following
    )
    return [
        MeldUtterance(d, u, text, speaker, emotion, sentiment, contexts[d, u])
        for d, u, text, speaker, emotion, sentiment in raw
    ]


def _dialogue_contexts(
    lines: Iterable[tuple[int, int, str]], context_utterances: int, context_following: int = 0
) -> dict[tuple[int, int], str]:
    """(dialogue, utterance) -> its context: the utterances around it in the dialogue."""
    preprocess = PreprocessConfig(
        context_utterances=context_utterances, context_following=context_following
    )
    dialogues: dict[int, list[tuple[int, str]]] = {}
    for dialogue, utterance, text in lines:
        dialogues.setdefault(dialogue, []).append((utterance, text))
    contexts: dict[tuple[int, int], str] = {}
    for dialogue, turns in dialogues.items():
        turns.sort()
        around = conversation_contexts([text for _, text in turns], preprocess)
        for (utterance, _), context in zip(turns, around, strict=True):
            contexts[dialogue, utterance] = context
    return contexts


def with_texts(
    utterances: Sequence[MeldUtterance],
    texts: Sequence[str],
    context_utterances: int,
    context_following: int = 0,
) -> list[MeldUtterance]:
    """The utterances with other texts (e.g. transcripts of the spoken lines), labels kept and
    dialogue context rebuilt from the new texts, as `read_meld_csv` builds it."""
    if len(texts) != len(utterances):
        raise ValueError("one text per utterance")
    contexts = _dialogue_contexts(
        [(u.dialogue_id, u.utterance_id, t) for u, t in zip(utterances, texts, strict=True)],
        context_utterances,
        context_following,
    )
    return [
        replace(u, text=t, context=contexts[u.dialogue_id, u.utterance_id])
        for u, t in zip(utterances, texts, strict=True)
    ]


# --- Dataset ---


@dataclass(frozen=True)
class _Clip:
    path: Path
    info: MediaInfo
    seconds: float  # read from 0 to here: min(duration, max_clip_s)


def _probe_clip(path: Path, max_clip_s: float) -> _Clip | str:
    """The clip, or why it is skipped ("missing" or a MediaError code)."""
    if not path.is_file():
        return "missing"
    try:
        info = probe(path)
    except MediaError as exc:
        return exc.code
    return _Clip(path, info, min(info.duration, max_clip_s))


class MeldDataset(Dataset):
    """MELD utterances as dicts for `MeldCollator`.

    Text-only (`clips_dir=None`) needs only the CSV. With a clip folder, every clip is probed up
    front: missing or unreadable ones are skipped and counted in `skipped` (never a crash), and
    one that fails to decode later is counted by the collator as `dropped`.
    """

    def __init__(
        self,
        utterances: Sequence[MeldUtterance],
        preprocess: PreprocessConfig,
        *,
        clips_dir: str | Path | None = None,
        modalities: Sequence[str] = ("text",),
        max_clip_s: float = DEFAULT_MAX_CLIP_S,
        probe_threads: int = 8,
        spoken_texts: Sequence[str | None] | None = None,
    ) -> None:
        self.preprocess = preprocess
        # Per utterance, its reading through speech (None: not transcribed): the transcript and
        # a context built from the neighbours' transcripts (their subtitles where they have none).
        spoken: list[tuple[str, str] | None] = [None] * len(utterances)
        if spoken_texts is not None:
            if len(spoken_texts) != len(utterances):
                raise ValueError("one spoken text (or None) per utterance")
            heard = with_texts(
                utterances,
                [u.text if s is None else s for u, s in zip(utterances, spoken_texts, strict=True)],
                preprocess.context_utterances,
                preprocess.context_following,
            )
            spoken = [
                None if s is None else (h.text, h.context)
                for s, h in zip(spoken_texts, heard, strict=True)
            ]
        self.load_audio = "audio" in modalities
        self.load_video = "video" in modalities
        if (self.load_audio or self.load_video) and clips_dir is None:
            raise ValueError(f"modalities {tuple(modalities)} need a clip folder")
        self.skipped: Counter[str] = Counter()
        self.skipped_names: list[str] = []
        self.clips: list[_Clip] | None = None
        if clips_dir is None:
            self.utterances = list(utterances)
            self.spoken = spoken
            return
        paths = [Path(clips_dir) / u.clip_name for u in utterances]
        # ffprobe is a subprocess: threads overlap the waits (10k MELD clips in a minute or two).
        with ThreadPoolExecutor(max_workers=probe_threads) as pool:
            probed = list(pool.map(lambda p: _probe_clip(p, max_clip_s), paths))
        self.utterances, self.clips, self.spoken = [], [], []
        for utterance, clip, said in zip(utterances, probed, spoken, strict=True):
            if isinstance(clip, str):
                self.skipped[clip] += 1
                self.skipped_names.append(utterance.clip_name)
            else:
                self.utterances.append(utterance)
                self.clips.append(clip)
                self.spoken.append(said)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict:
        utterance = self.utterances[index]
        item = {
            "index": index,
            "text": utterance.text,
            "context": utterance.context,
            "spoken": self.spoken[index],
            "emotion": utterance.emotion,
            "sentiment": utterance.sentiment,
        }
        if self.clips is None:
            return item
        clip = self.clips[index]
        try:
            item.update(self._media(clip))
        except MediaError:
            return {"index": index, "failed": utterance.clip_name}
        return item

    def _media(self, clip: _Clip) -> dict:
        """mlcore.media's clip pipeline (as `clip_tensors`), read only up to `clip.seconds`."""
        media: dict = {}
        if self.load_audio and clip.info.has_audio:
            audio = load_audio(
                clip.path,
                self.preprocess.sample_rate,
                max_seconds=clip.seconds,
                container=clip.info.container,
            )
            mel = log_mel(audio, 0.0, clip.seconds, self.preprocess)
            media["mel"] = torch.from_numpy(mel).unsqueeze(0)
        if self.load_video:
            window = [(0.0, clip.seconds)]
            media["frames"] = sample_frames(clip.path, window, self.preprocess, clip.info)[0]
        return media

    def skip_report(self) -> dict:
        return {"skipped": dict(self.skipped), "skipped_examples": self.skipped_names[:20]}

    def label_counts(self, task: str) -> np.ndarray:
        classes = EMOTIONS if task == "emotion" else SENTIMENTS
        counts = np.zeros(len(classes), dtype=np.int64)
        for utterance in self.utterances:
            counts[getattr(utterance, task)] += 1
        return counts

    def token_lengths(self, tokenizer) -> list[int]:
        """Tokens per example as the model will read them (for length bucketing)."""
        lengths = []
        for lo in range(0, len(self), 1024):
            chunk = self.utterances[lo : lo + 1024]
            encoded = encode_texts(
                tokenizer, [u.text for u in chunk], [u.context for u in chunk], self.preprocess
            )
            lengths.extend(encoded["attention_mask"].sum(1).tolist())
        return lengths


_PUNCTUATION = re.compile(r"[.,!?;:]+")


def drop_punctuation(text: str, rng: np.random.Generator, p: float) -> str:
    """Each run of punctuation removed with probability `p` (an augmentation towards what a
    transcript may omit); words are never touched."""
    if p <= 0:
        return text
    return _PUNCTUATION.sub(lambda m: "" if rng.random() < p else m.group(0), text)


_EXCLAMATION = re.compile(r"!")


def transcript_style(
    text: str, rng: np.random.Generator, exclamation_p: float, punctuation_p: float
) -> str:
    """A training utterance written more like a transcript, at random: with probability
    `exclamation_p` every `!` becomes `.` (Whisper wrote 2 in 1,109 spoken MELD dev lines whose
    subtitles hold ~400), then each punctuation run is dropped with probability
    `punctuation_p`."""
    if exclamation_p > 0 and rng.random() < exclamation_p:
        text = _EXCLAMATION.sub(".", text)
    return drop_punctuation(text, rng, punctuation_p)


class MeldCollator:
    """Items -> one batch: text tokenized by `mlcore.text.encode_texts` (padded to the batch's
    longest), log-mels (1, n_mels, steps) and frames (3, T, H, W) stacked. Items that failed to
    decode are dropped and counted in `batch["dropped"]`. Training batches may be written more
    like transcripts at random first: a line read as its transcript through speech (with
    probability `transcript_p`, where the item has one), else its subtitle passed through
    `transcript_style`; dev and inference never are."""

    def __init__(
        self,
        tokenizer,
        preprocess: PreprocessConfig,
        *,
        punctuation_dropout: float = 0.0,
        exclamation_dropout: float = 0.0,
        transcript_p: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.punctuation_dropout = punctuation_dropout
        self.exclamation_dropout = exclamation_dropout
        self.transcript_p = transcript_p
        self.rng = np.random.default_rng(seed)

    def __call__(self, items: Sequence[dict]) -> dict:
        good = [item for item in items if "failed" not in item]
        batch: dict = {"dropped": len(items) - len(good), "size": len(good)}
        if not good:
            return batch
        texts, contexts = zip(*(self._reading(item) for item in good), strict=True)
        batch["text"] = dict(
            encode_texts(
                self.tokenizer,
                list(texts),
                list(contexts),
                self.preprocess,
            )
        )
        batch["index"] = torch.tensor([item["index"] for item in good])
        batch["emotion"] = torch.tensor([item["emotion"] for item in good])
        batch["sentiment"] = torch.tensor([item["sentiment"] for item in good])
        batch["audio"] = self._mels(good)
        frames = [item.get("frames") for item in good]
        batch["video"] = torch.stack(frames) if all(f is not None for f in frames) else None
        return batch

    @property
    def augments(self) -> bool:
        """Whether training text may differ from the subtitle (no per-example cache then)."""
        return max(self.transcript_p, self.punctuation_dropout, self.exclamation_dropout) > 0

    def _reading(self, item: dict) -> tuple[str, str]:
        """The (utterance, context) the model reads for an item in this batch."""
        if not self.augments:
            return item["text"], item["context"]
        if item.get("spoken") is not None and self.rng.random() < self.transcript_p:
            return item["spoken"]
        text = transcript_style(
            item["text"], self.rng, self.exclamation_dropout, self.punctuation_dropout
        )
        return text, item["context"]

    def _mels(self, items: Sequence[dict]) -> torch.Tensor | None:
        mels = [item.get("mel") for item in items]
        if all(m is None for m in mels):
            return None
        # A clip without an audio stream reads as silence: log_mel's floor everywhere.
        shape = (1, self.preprocess.n_mels, self.preprocess.mel_steps)
        return torch.stack([m if m is not None else torch.full(shape, MEL_FLOOR_DB) for m in mels])


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar token length (little padding: faster on CPU), in a random order that
    depends only on (seed, epoch), so a resumed run sees the same batches.

    Shuffled indices are cut into pools of `pool_batches` batches, each sorted by length and split.
    A last batch of one is merged into the one before (BatchNorm cannot train on one example).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return _split(order.tolist(), self.batch_size)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        pool = self.batch_size * self.pool_batches
        batches: list[list[int]] = []
        for lo in range(0, n, pool):
            chunk = order[lo : lo + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(_split(chunk.tolist(), self.batch_size))
        rng.shuffle(batches)
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def _split(indices: list[int], size: int) -> list[list[int]]:
    batches = [indices[i : i + size] for i in range(0, len(indices), size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def subsample(
    utterances: Sequence[MeldUtterance], limit: int | None, seed: int
) -> list[MeldUtterance]:
    """A seeded random `limit` of the utterances (all when limit is None), for quick trials.
    Context is kept: it was built from the whole dialogue before sampling."""
    if limit is None or limit >= len(utterances):
        return list(utterances)
    keep = np.random.default_rng(seed).choice(len(utterances), size=limit, replace=False)
    return [utterances[i] for i in sorted(keep)]


def count_labels(utterances: Iterable[MeldUtterance], task: str) -> Counter[str]:
    classes = EMOTIONS if task == "emotion" else SENTIMENTS
    return Counter(classes[getattr(u, task)] for u in utterances)
