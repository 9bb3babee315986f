"""The Analyzer end to end on generated clips, the summary, and checkpoint refusals."""

from __future__ import annotations

import json
import math
import re
import subprocess

import pytest
import torch

from mlcore import inference, testmedia
from mlcore.checkpoint import CheckpointError, load_checkpoint
from mlcore.inference import (
    NO_AUDIO_WARNING,
    STAGES,
    Analyzer,
    UntrainedModelError,
    UtteranceResult,
    overall_progress,
    resolve_checkpoint,
    summarize,
)
from mlcore.labels import EMOTIONS, SENTIMENTS
from mlcore.media import MediaError, probe
from mlcore.tests.conftest import SENTENCES, SPOKEN_WORDS


def test_utterances_carry_the_transcript(talking_run):
    utterances = talking_run.result.utterances
    assert utterances
    heard = set(re.findall(r"[a-z']+", " ".join(u.text for u in utterances).lower()))
    assert len(set(SPOKEN_WORDS) - heard) <= 1
    assert [u.index for u in utterances] == list(range(len(utterances)))


def test_probabilities_sum_to_one_and_labels_are_the_argmax(talking_run):
    for u in talking_run.result.utterances:
        assert list(u.emotion_scores) == list(EMOTIONS)
        assert list(u.sentiment_scores) == list(SENTIMENTS)
        assert math.isclose(sum(u.emotion_scores.values()), 1.0, abs_tol=1e-5)
        assert math.isclose(sum(u.sentiment_scores.values()), 1.0, abs_tol=1e-5)
        assert u.emotion == max(u.emotion_scores, key=u.emotion_scores.get)
        assert u.sentiment == max(u.sentiment_scores, key=u.sentiment_scores.get)


def test_utterance_times_lie_inside_the_video(talking_run, talking_clip):
    duration = probe(talking_clip).duration
    result = talking_run.result
    assert result.duration == pytest.approx(duration)
    previous_end = 0.0
    for u in result.utterances:
        assert 0.0 <= u.start < u.end <= duration
        assert u.start >= previous_end - 1e-6
        previous_end = u.end


def test_summary_is_duration_weighted(talking_run):
    summary = talking_run.result.summary
    assert summary["speech_detected"] is True
    assert summary["utterance_count"] == len(talking_run.result.utterances)
    for key, labels in (("emotion", EMOTIONS), ("sentiment", SENTIMENTS)):
        distribution = summary[f"{key}_distribution"]
        assert list(distribution) == list(labels)
        assert math.isclose(sum(distribution.values()), 1.0, abs_tol=1e-6)
        shares = summary[f"{key}_shares"]
        assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6)
        assert summary[f"dominant_{key}"] == max(shares, key=shares.get)


def _utterance(start: float, end: float, emotion: str, sentiment: str) -> UtteranceResult:
    return UtteranceResult(
        index=0,
        start=start,
        end=end,
        text="x",
        emotion=emotion,
        emotion_scores={e: float(e == emotion) for e in EMOTIONS},
        sentiment=sentiment,
        sentiment_scores={s: float(s == sentiment) for s in SENTIMENTS},
    )


def test_summarize_weights_by_duration():
    summary = summarize(
        [
            _utterance(0, 1, "joy", "positive"),
            _utterance(1, 2, "joy", "positive"),
            _utterance(2, 8, "anger", "negative"),  # longer than both others together
        ]
    )
    assert summary["dominant_emotion"] == "anger"
    assert summary["dominant_sentiment"] == "negative"
    assert summary["emotion_distribution"]["anger"] == pytest.approx(0.75)
    assert summary["speech_duration"] == pytest.approx(8.0)


def test_the_dominant_label_is_the_one_with_most_speaking_time():
    # Five neutral utterances and one disgust: averaged probabilities can favour other labels,
    # the summary names what the transcript shows.
    def leaning(start: float, label: str, lean: dict[str, float]) -> UtteranceResult:
        u = _utterance(start, start + 1, label, "neutral")
        u.emotion_scores = dict.fromkeys(EMOTIONS, 0.0) | lean
        return u

    spread = {"neutral": 0.34, "anger": 0.33, "sadness": 0.33}
    summary = summarize(
        [leaning(i, "neutral", spread) for i in range(5)]
        + [leaning(5, "disgust", {"disgust": 1.0})]
    )
    assert summary["dominant_emotion"] == "neutral"
    assert summary["emotion_shares"]["neutral"] == pytest.approx(5 / 6)
    assert summary["emotion_shares"]["disgust"] == pytest.approx(1 / 6)
    assert summary["emotion_distribution"]["neutral"] < 0.34  # the average names no majority


def test_the_headline_is_stated_only_where_the_time_and_the_confidence_support_it():
    def sure(start: float, label: str, p: float) -> UtteranceResult:
        u = _utterance(start, start + 1, label, "neutral")
        u.emotion_scores = dict.fromkeys(EMOTIONS, (1 - p) / 6) | {label: p}
        return u

    clear = summarize([sure(i, "joy", 0.8) for i in range(3)])["emotion_headline"]
    assert clear == {"label": "joy", "verdict": "clear", "share": 1.0, "mean_confidence": 0.8}
    weak = summarize([sure(i, "disgust", 0.39) for i in range(3)])["emotion_headline"]
    assert (weak["label"], weak["verdict"]) == ("disgust", "unclear")
    mixed = summarize([sure(0, "joy", 0.9), sure(1, "anger", 0.9), sure(2, "fear", 0.9)])
    assert mixed["emotion_headline"]["verdict"] == "mixed"
    assert mixed["dominant_emotion"] in ("joy", "anger", "fear")  # still the most time


def test_summarize_nothing_says_no_speech():
    summary = summarize([])
    assert summary["speech_detected"] is False
    assert "no speech" in summary["message"].lower()
    assert summary["dominant_emotion"] is None


def test_progress_reports_every_stage_in_order(talking_run):
    stages = [stage for stage, _ in talking_run.progress]
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == list(STAGES)
    assert all(0.0 <= f <= 1.0 for _, f in talking_run.progress)
    for stage in STAGES:
        fractions = [f for s, f in talking_run.progress if s == stage]
        assert fractions == sorted(fractions)
        assert fractions[-1] == 1.0


def test_overall_progress_rises_from_zero_to_one_across_the_real_callbacks(talking_run):
    overall = [overall_progress(stage, fraction) for stage, fraction in talking_run.progress]
    assert overall == sorted(overall)
    assert overall[0] == 0.0 and overall[-1] == pytest.approx(1.0)
    assert overall_progress("no-such-stage", 0.5) == 0.0
    assert overall_progress("transcribe", 7.0) == overall_progress("transcribe", 1.0)


def test_result_metadata_and_json(talking_run):
    result = talking_run.result
    assert result.model_version == "untrained-test"
    assert result.modalities_used == ["text", "audio", "video"]
    assert result.has_audio is True
    assert any("untrained" in w for w in result.warnings)
    assert set(result.timings) == set(STAGES) - {"done"} | {"total"}
    assert result.timings["total"] >= result.timings["transcribe"] > 0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["utterances"][0]["emotion_scores"].keys() == set(EMOTIONS)


def test_a_video_without_audio_is_analysed_with_a_warning(analyzer, silent_clip):
    result = analyzer.analyze(silent_clip)
    assert result.has_audio is False
    assert NO_AUDIO_WARNING in result.warnings
    assert "audio" not in result.modalities_used
    assert result.utterances == []
    assert result.summary["speech_detected"] is False


def test_a_video_without_speech_has_zero_utterances(analyzer, no_speech_clip):
    result = analyzer.analyze(no_speech_clip)
    assert result.has_audio is True
    assert result.utterances == []
    assert result.summary["speech_detected"] is False
    assert "no speech" in result.summary["message"].lower()
    assert NO_AUDIO_WARNING not in result.warnings


def test_bad_media_raises_media_error(analyzer, tmp_path):
    with pytest.raises(MediaError) as caught:
        analyzer.analyze(testmedia.make_random_bytes(tmp_path / "x.mp4"))
    assert caught.value.code == "not_media"


def test_branches_the_model_lacks_get_no_features(text_checkpoint, talking_clip, monkeypatch):
    """A text-only model: no frames decoded, no mel computed."""

    def forbidden(*args, **kwargs):
        raise AssertionError("computed a feature the model does not use")

    monkeypatch.setattr(inference, "decode_window_frames", forbidden)
    monkeypatch.setattr(inference, "log_mel", forbidden)
    result = Analyzer(text_checkpoint, allow_untrained=True).analyze(talking_clip)
    assert result.modalities_used == ["text"]
    assert result.utterances


def test_an_untrained_checkpoint_is_refused_by_default(text_checkpoint):
    with pytest.raises(UntrainedModelError, match="untrained"):
        Analyzer(text_checkpoint)
    assert issubclass(UntrainedModelError, CheckpointError)


def test_a_missing_default_checkpoint_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "DEFAULT_CHECKPOINT", tmp_path / "default.pt")
    with pytest.raises(CheckpointError, match="Train one"):
        resolve_checkpoint(None)
    with pytest.raises(CheckpointError, match="Train one"):
        Analyzer()


def _tampered(source, target, change) -> str:
    payload = torch.load(source, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, target)
    return str(target)


def test_a_wrong_format_version_is_refused(text_checkpoint, tmp_path):
    path = _tampered(text_checkpoint, tmp_path / "v99.pt", lambda p: p.update(format_version=99))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(path)


def test_wrong_labels_are_refused(text_checkpoint, tmp_path):
    def drop_surprise(payload):
        payload["labels"]["emotion"] = [e for e in EMOTIONS if e != "surprise"]

    path = _tampered(text_checkpoint, tmp_path / "labels.pt", drop_surprise)
    with pytest.raises(CheckpointError, match="labels"):
        Analyzer(path, allow_untrained=True)


def test_a_missing_modality_is_refused(text_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="no audio, video branch"):
        load_checkpoint(text_checkpoint, require_modalities=("text", "audio", "video"))

    def claim_audio(payload):
        payload["config"]["modalities"] = ["text", "audio"]

    path = _tampered(text_checkpoint, tmp_path / "claims-audio.pt", claim_audio)
    with pytest.raises(CheckpointError, match="lacks weights"):
        load_checkpoint(path)


def test_not_a_checkpoint_is_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Analyzer(junk)


# --- The face and voice channels, and fusion ---


def test_a_test_pattern_reads_words_and_voice_but_no_face(talking_run):
    result = talking_run.result
    assert result.channels_used == ["text", "voice", "combined"]
    assert result.channels["face"]["frames"] >= result.duration  # >= 1 sampled frame a second
    assert "no face" in result.channels["face"]["note"].lower()
    for u in result.utterances:
        assert u.face["coverage"] == 0.0 and u.face["emotion"] is None
        assert u.voice["pitch_median_hz"] and u.voice["loudness_dbfs"] < 0
        # espeak-ng's voice is synthetic: measured, but no emotion is read from it.
        assert u.voice["emotion"] is None and "synthetic" in u.voice["emotion_note"]
        assert u.combined["channels"] == ["text"]
        assert u.combined["emotion_scores"] == u.emotion_scores
    assert result.summary["voice"]["pitch_median_hz"] > 0
    assert "dominant_emotion" not in result.summary["voice"]
    note = result.channels["voice"]["note"]
    assert f"{len(result.utterances)} of {len(result.utterances)} utterances" in note


def test_real_speech_gets_a_voice_emotion_fused_into_combined(analyzer, tmp_path):
    clip = testmedia.make_real_speech_clip(tmp_path / "real.mp4", testmedia.librivox_wavs()[:2])
    result = analyzer.analyze(clip)
    assert result.utterances and result.channels_used == ["text", "voice", "combined"]
    for u in result.utterances:
        assert u.voice["emotion"] in EMOTIONS and 0 <= u.voice["arousal"] <= 1
        assert math.isclose(sum(u.voice["emotion_scores"].values()), 1.0, abs_tol=1e-3)
        assert u.voice["sentiment"] in SENTIMENTS and u.voice["emotion_note"] == ""
        assert u.combined["channels"] == ["text", "voice"]
        assert u.combined["voice_weight"] == result.channels["combined"]["voice_weight"] > 0
        assert u.combined["emotion_scores"] != u.emotion_scores  # the voice moved the fusion
    voice = result.summary["voice"]
    assert voice["dominant_emotion"] in EMOTIONS and 0 <= voice["mean_arousal"] <= 1
    assert voice["read_utterance_count"] == len(result.utterances)
    assert result.channels["voice"]["emotion_model"].startswith("voice-emotion-whisper-tiny.en")
    assert "acted" in result.channels["voice"]["note"]


def test_a_talking_face_gets_face_voice_and_combined_per_utterance(analyzer, talking_face_clip):
    result = analyzer.analyze(talking_face_clip)
    assert result.channels_used == ["text", "face", "voice", "combined"]
    assert result.utterances
    for u in result.utterances:
        assert u.face["frames"] >= 3 and u.face["coverage"] >= 0.9
        assert u.face["emotion"] in EMOTIONS
        assert math.isclose(sum(u.face["scores"].values()), 1.0, abs_tol=1e-3)
        assert u.combined["channels"] == ["text", "face"]  # espeak-ng's voice is not read
        assert u.combined["emotion_scores"] != u.emotion_scores  # the face moved the fusion
        assert u.voice["speaking_rate_wps"] > 0
    face = result.summary["face"]
    assert face["frames_with_face"] >= 0.95 * face["frames"]
    assert result.summary["combined"]["dominant_emotion"] in EMOTIONS


def test_a_silent_face_video_gets_a_face_timeline(analyzer, silent_face_clip):
    result = analyzer.analyze(silent_face_clip)
    assert result.utterances == []
    assert result.channels_used == ["face"]
    track = result.face_track
    assert len(track) >= math.floor(result.duration)  # at least 1 frame a second
    assert sum(1 for f in track if f["scores"]) >= 0.95 * len(track)
    assert "face" in result.summary["message"].lower()
    assert result.summary["face"]["dominant_emotion"] in EMOTIONS


def test_channels_can_be_turned_off(text_checkpoint, talking_face_clip):
    result = Analyzer(text_checkpoint, allow_untrained=True, face=False, voice=False).analyze(
        talking_face_clip
    )
    assert result.channels_used == ["text", "combined"]
    assert "turned off" in result.channels["face"]["note"]
    assert "turned off" in result.channels["voice"]["note"]
    assert result.face_track == [] and result.summary["face"] is None
    assert all(u.face is None and u.voice is None for u in result.utterances)
    assert all(u.combined["channels"] == ["text"] for u in result.utterances)


def test_voice_emotion_can_be_turned_off_keeping_the_measures(text_checkpoint, talking_clip):
    result = Analyzer(
        text_checkpoint, allow_untrained=True, face=False, voice_emotion=False
    ).analyze(talking_clip)
    assert result.channels["voice"]["used"] and result.channels["voice"]["emotion_model"] is None
    assert "ANALYSIS_VOICE_EMOTION" in result.channels["voice"]["note"]
    for u in result.utterances:
        assert u.voice["pitch_median_hz"] and "emotion" not in u.voice
        assert u.combined["channels"] == ["text"]
    assert "dominant_emotion" not in result.summary["voice"]


def test_music_without_words_gets_no_voice_reading(analyzer, tmp_path):
    result = analyzer.analyze(testmedia.make_music_clip(tmp_path / "music.mp4", seconds=6.0))
    assert result.utterances == [] and result.summary["voice"] is None
    assert result.channels["voice"]["used"] is False
    assert "No speech" in result.channels["voice"]["note"]


def test_the_file_itself_is_explained_in_warnings(tmp_path):
    """Which of several audio tracks was read, and audio that outlasts the picture."""
    from mlcore import testmedia
    from mlcore.inference import media_warnings

    dubbed = probe(testmedia.make_many_audio_streams(tmp_path / "dubbed.mp4", streams=3))
    assert dubbed.audio_streams == 3
    assert media_warnings(dubbed) == [
        "The video has 3 audio tracks; the first one (aac) was analysed."
    ]
    long_audio = probe(testmedia.make_long_audio(tmp_path / "long.mp4", video_s=2, audio_s=12))
    (warning,) = media_warnings(long_audio)
    assert "runs longer than the picture" in warning and "12.0 s" in warning
    assert media_warnings(probe(testmedia.make_frame_counter_clip(tmp_path / "plain.mp4"))) == []


@pytest.mark.parametrize("following", [0, 1])
def test_the_next_utterance_is_read_only_by_a_model_trained_with_it(tmp_path, following):
    """Context is built as training builds it (`conversation_contexts`): with
    `context_following`, what is said next changes how an utterance is read."""
    from mlcore.checkpoint import save_checkpoint
    from mlcore.config import ModelConfig, PreprocessConfig
    from mlcore.language import Reading
    from mlcore.model import MultimodalSentimentModel
    from mlcore.transcribe import Segment

    torch.manual_seed(0)
    preprocess = PreprocessConfig(context_utterances=1, context_following=following)
    model = MultimodalSentimentModel(ModelConfig(preprocess=preprocess))
    path = save_checkpoint(model, tmp_path / "context.pt", model_version="ctx", trained=False)
    analyzer = Analyzer(path, allow_untrained=True, language_model="", face=False, voice=False)
    assert analyzer.preprocess.context_following == following

    def first_reading(next_text: str) -> dict[str, float]:
        segments = [Segment(0.0, 2.0, "I got the job."), Segment(2.5, 4.0, next_text)]
        readings = [Reading(s.text) for s in segments]
        results = analyzer._classify(segments, readings, None, None, lambda _: None)
        return results[0].emotion_scores

    happy, sad = first_reading("That is wonderful news!"), first_reading("My dog died today.")
    changed = max(abs(happy[e] - sad[e]) for e in EMOTIONS)
    assert (changed > 1e-4) == bool(following)


def test_a_header_that_overstates_the_length_is_analysed_as_decoded(
    analyzer, talking_face_clip, tmp_path
):
    """A ~10 s file whose header says 590 s: the result lasts what decodes, says so, and has no
    face sample past the last frame (it used to report samples up to 589.75 s)."""
    from mlcore import testmedia

    lying = testmedia.make_overstated_duration(
        talking_face_clip, tmp_path / "lying.mkv", claimed_s=590.0
    )
    assert probe(lying).duration == pytest.approx(590.0)
    real = probe(talking_face_clip).duration
    result = analyzer.analyze(lying)
    assert result.duration == pytest.approx(real, abs=0.6)
    assert any("says it lasts 590.0 s" in w for w in result.warnings), result.warnings
    assert max(f["time"] for f in result.face_track) <= real + 0.1
    assert result.utterances and all(u.end <= result.duration for u in result.utterances)


def test_a_picture_that_runs_past_the_sound_is_not_cut(analyzer, tmp_path):
    """Audio ending early is no overstated header when the picture goes on (the face channel
    decodes it): nothing is trimmed; and the reverse (sound past the picture) has no face
    samples where the picture has ended."""
    from mlcore import testmedia
    from mlcore.inference import decoded_length

    info = probe(testmedia.make_long_audio(tmp_path / "long.mp4", video_s=2, audio_s=12))
    assert decoded_length(info, audio_s=12.0, last_frame_s=1.5) is None
    assert decoded_length(info, audio_s=3.0, last_frame_s=11.5) is None
    assert decoded_length(info, audio_s=3.0, last_frame_s=1.5) == pytest.approx(3.0)
    result = analyzer.analyze(tmp_path / "long.mp4")
    assert result.duration == pytest.approx(info.duration)
    assert max(f["time"] for f in result.face_track) <= 2.1


def test_utterances_after_the_picture_ends_read_no_picture(analyzer, tmp_path):
    """Sound that goes on after the picture (real face, 4 s; speech, ~10 s): the utterances past
    the last frame get no face reading ("no picture"), and `combined` gives the face no weight
    there, instead of reading the last frame again."""
    from mlcore import face

    speech = tmp_path / "speech.wav"
    testmedia.make_speech_track(SENTENCES, speech, pause_s=0.8)
    clip = tmp_path / "face-then-sound.mp4"
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-i", str(testmedia.real_face_video()), "-i", str(speech),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
         str(clip)],
        check=True,
    )  # fmt: skip
    result = analyzer.analyze(clip)
    assert max(f["time"] for f in result.face_track) <= 4.1
    late = [u for u in result.utterances if u.start > 4.2]
    early = [u for u in result.utterances if u.end < 3.9]
    assert late and early
    for u in late:
        assert u.face["frames"] == 0 and u.face["coverage"] == 0.0
        assert u.face["scores"] is None and u.face["note"] == face.NO_PICTURE
        assert u.combined["face_weight"] == 0.0
    assert all(u.face["coverage"] > 0.5 and u.face["note"] is None for u in early)


def test_two_real_voices_are_told_apart_through_the_analyzer(analyzer, tmp_path):
    lines, cards = (
        testmedia.librivox_wavs(),
        sorted(testmedia.LIBRIVOX_DIR.parent.glob("cards/*.wav")),
    )
    order = [lines[0], cards[4], lines[2], cards[1], cards[2], lines[3]]
    clip = testmedia.make_real_speech_clip(tmp_path / "two.mp4", order, gap_s=0.8)
    result = analyzer.analyze(clip)
    assert result.channels["speakers"]["used"] and result.channels["speakers"]["count"] == 2
    assert [s["id"] for s in result.speakers] == [1, 2]
    assert sum(s["share"] for s in result.speakers) == pytest.approx(1.0, abs=1e-3)
    # Where each file lies in the clip (0.8 s after each), and whose voice it is.
    spans, cursor = [], 0.0
    for wav in order:
        length = testmedia.wav_duration(wav)
        spans.append((cursor, cursor + length, "cards" in str(wav)))
        cursor += length + 0.8
    speaker_of = {}
    for u in result.utterances:
        middle = (u.start + u.end) / 2
        card = next(is_card for start, end, is_card in spans if start - 0.4 <= middle <= end + 0.4)
        speaker_of.setdefault(card, set()).add(u.speaker)
    assert len(speaker_of[True]) == len(speaker_of[False]) == 1
    assert speaker_of[True] != speaker_of[False]
    turns = result.speaker_turns
    assert turns and all(t["start"] < t["end"] for t in turns)
    assert {t["speaker"] for t in turns} == {1, 2}
    assert result.timings["speakers"] > 0


def test_one_face_and_one_voice_are_tied(analyzer, talking_face_clip):
    result = analyzer.analyze(talking_face_clip)
    assert len(result.speakers) == 1
    speaker = result.speakers[0]
    assert speaker["face_person"] is not None and "co-occurrence" in speaker["face_note"]
    assert speaker["face"]["emotion"] in EMOTIONS


def test_speakers_can_be_turned_off(text_checkpoint, talking_clip):
    analyzer = Analyzer(text_checkpoint, allow_untrained=True, face=False, speakers=False)
    result = analyzer.analyze(talking_clip)
    assert result.speakers == [] and result.speaker_turns == []
    assert all(u.speaker is None for u in result.utterances)
    assert not result.channels["speakers"]["used"]
    assert "ANALYSIS_SPEAKERS" in result.channels["speakers"]["note"]


def _shot_reverse_shot(path, first: list, second: list) -> tuple[float, float]:
    """A video of two real voices, each talking while "its" face is on screen: the carphone
    face on the left while the `first` WAVs play, mirrored on the right during the `second`."""
    face = testmedia.real_face_video()
    lengths = [sum(testmedia.wav_duration(w) + 0.5 for w in group) for group in (first, second)]
    wavs = [*first, *second]
    audio = "".join(f"[{i + 1}:a]aresample=16000,apad=pad_dur=0.5[a{i}];" for i in range(len(wavs)))
    joined = "".join(f"[a{i}]" for i in range(len(wavs)))
    graph = (
        f"[0:v]split[l][r];[l]trim=duration={lengths[0]},setpts=PTS-STARTPTS,"
        "pad=528:144:0:0[left];"
        f"[r]hflip,trim=duration={lengths[1]},setpts=PTS-STARTPTS,pad=528:144:352:0[right];"
        "[left][right]concat=n=2:v=1:a=0[v];"
        f"{audio}{joined}concat=n={len(wavs)}:v=0:a=1[a]"
    )
    inputs = ["-stream_loop", "-1", "-i", str(face)]
    for wav in wavs:
        inputs += ["-i", str(wav)]
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", *inputs, "-filter_complex", graph, "-map", "[v]",
         "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return lengths[0], lengths[1]


def test_each_voice_is_tied_to_the_face_on_screen_while_it_talks(analyzer, tmp_path):
    lines, cards = (
        testmedia.librivox_wavs(),
        sorted(testmedia.LIBRIVOX_DIR.parent.glob("cards/*.wav")),
    )
    clip = tmp_path / "two-shots.mp4"
    first_s, _ = _shot_reverse_shot(clip, [lines[0], lines[2]], [cards[4], cards[1], cards[2]])
    result = analyzer.analyze(clip)
    assert [s["id"] for s in result.speakers] == [1, 2]
    tied = {s["id"]: s["face_person"] for s in result.speakers}
    assert None not in tied.values() and tied[1] != tied[2]
    # The reader (speaker 1, first) is tied to the face track seen on the left.
    left = {
        f["person"]
        for f in result.face_track
        if f["box"] and f["box"][0] < 0.5 and f["time"] < first_s
    }
    assert tied[1] in left and tied[2] not in left


def test_a_long_real_speech_video_loses_no_speech_at_the_windows_or_the_end(analyzer, tmp_path):
    # The LibriVox clips four times over (~100 s, four of Whisper's 30 s windows), 0.8 s apart.
    wavs = testmedia.librivox_wavs() * 4
    clip = testmedia.make_real_speech_clip(tmp_path / "long.mp4", wavs, gap_s=0.8)
    result = analyzer.analyze(clip)
    assert result.summary["untranscribed"] == {"seconds": 0.0, "spans": []}
    assert not [w for w in result.warnings if "no transcript" in w]
    last_speech_end = sum(testmedia.wav_duration(w) + 0.8 for w in wavs) - 0.8
    assert result.utterances[-1].end >= last_speech_end - 1.0
    assert result.utterances[-1].text.rstrip().endswith("himself.")  # the last clip's last word


def test_untranscribed_speech_is_told_with_where_it_is():
    text = inference.untranscribed_warning([(284.0, 300.0), (310.5, 312.0)])
    assert text.startswith("18 s of what sounded like speech got no transcript")
    assert "4:44-5:00, 5:10-5:12" in text
