"""What the job page says, as plain functions: shares of speaking time, key moments, the job's
outcome, and utterances the language model did not label. Then the rendered page for each case."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mlcore.labels import EMOTIONS, SENTIMENTS
from videos import presentation
from videos.models import AnalysisJob, JobStatus, Utterance
from videos.testing import make_stored_video


def _scores(labels: tuple[str, ...], top: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(labels) - 1)
    return {label: (p if label == top else rest) for label in labels}


def _u(
    index: int,
    emotion: str = "neutral",
    sentiment: str = "neutral",
    *,
    p: float = 0.8,
    seconds: float = 2.0,
    text: str = "",
    **fields,
) -> Utterance:
    """An utterance every `seconds`; emotion "" = the language model gave no label."""
    return Utterance(
        index=index,
        start=index * seconds,
        end=(index + 1) * seconds,
        text=text or f"utterance {index}",
        emotion=emotion,
        emotion_scores=_scores(EMOTIONS, emotion, p) if emotion else None,
        sentiment=sentiment if emotion else "",
        sentiment_scores=_scores(SENTIMENTS, sentiment, p) if emotion else None,
        **fields,
    )


# --- Shares of speaking time ---


def test_five_neutral_and_one_disgust_read_as_such():
    """The issue's case: the shares are the labels' time, never averaged probabilities."""
    utterances = [_u(i) for i in range(5)] + [_u(5, "disgust", "negative", p=0.55)]
    shares = presentation.speaking_time_shares(utterances, "emotion", EMOTIONS)
    assert [(s.label, s.percent) for s in shares] == [("disgust", 17), ("neutral", 83)]
    assert presentation.dominant_share(shares).label == "neutral"
    sentiments = presentation.speaking_time_shares(utterances, "sentiment", SENTIMENTS)
    assert [(s.label, s.percent) for s in sentiments] == [("negative", 17), ("neutral", 83)]


def test_shares_weigh_by_duration_and_keep_unlabelled_time_apart():
    utterances = [
        _u(0, "joy", "positive", seconds=6.0),
        Utterance(index=1, start=6.0, end=8.0, text="hola", emotion="", sentiment=""),
    ]
    shares = presentation.speaking_time_shares(utterances, "emotion", EMOTIONS)
    assert [(s.label, s.text, s.percent) for s in shares] == [
        ("joy", "joy", 75),
        ("", "no text label", 25),
    ]
    only_unlabelled = presentation.speaking_time_shares(utterances[1:], "emotion", EMOTIONS)
    assert presentation.dominant_share(only_unlabelled) is None
    assert presentation.speaking_time_shares([], "emotion", EMOTIONS) == []


def test_combined_shares_read_the_combined_block():
    with_face = _u(0, combined={"emotion": "joy", "sentiment": "positive"})
    without = _u(1, combined=None)
    shares = presentation.speaking_time_shares([with_face, without], "combined.emotion", EMOTIONS)
    assert [(s.text, s.percent) for s in shares] == [("joy", 50), ("no text label", 50)]


# --- Key moments ---


def test_key_moments_pick_the_extremes_and_the_biggest_shifts():
    utterances = [
        _u(0, "neutral", "neutral"),
        _u(1, "joy", "positive", p=0.7, text="Great news!"),
        _u(2, "joy", "positive", p=0.9, text="The best day."),
        _u(3, "neutral", "neutral"),
        _u(4, "anger", "negative", p=0.6, text="This is unacceptable."),
        _u(5, "neutral", "neutral", p=0.45),
    ]
    moments = presentation.key_moments(utterances)
    assert [(m.kind, m.index) for m in moments] == [
        ("positive", 2),
        ("negative", 4),
        # Shifts onto 1 (neutral -> joy) and 3 (joy -> neutral) are the biggest left, in time
        # order; the change onto 4 is told on the negative moment itself.
        ("shift", 1),
        ("shift", 3),
    ]
    positive, negative, first_shift, _ = moments
    assert positive.quote == "The best day." and positive.confidence == pytest.approx(0.9)
    assert positive.before == "" and positive.source == "words" and not positive.weak
    assert negative.before == "neutral" and negative.emotion == "anger"
    assert (first_shift.before, first_shift.emotion, first_shift.start) == ("neutral", "joy", 2.0)
    assert first_shift.confidence == pytest.approx(0.7) and first_shift.shift > 0.5


def test_a_neutral_talk_has_no_key_moments():
    assert presentation.key_moments([_u(i) for i in range(4)]) == []
    assert presentation.key_moments([]) == []


def test_a_label_change_between_two_unsure_readings_is_not_a_shift():
    """Both about 30% sure: the top label flips, the distributions barely move."""
    a = _u(0, "neutral", "neutral", p=0.3)
    b = _u(1, "sadness", "neutral", p=0.3)
    assert presentation.key_moments([a, b]) == []


def test_a_weak_guess_is_no_key_moment():
    # The headline's and the transcript's faded labels: under WEAK_CONFIDENCE, not a moment.
    assert presentation.key_moments([_u(0, "joy", "positive", p=0.4)]) == []
    (moment,) = presentation.key_moments([_u(0, "joy", "positive", p=0.6)])
    assert not moment.weak and moment.confidence == pytest.approx(0.6)


def test_a_repeated_line_read_the_same_way_is_one_moment():
    utterances = [
        _u(0, "neutral", "neutral", text="Fine."),
        _u(1, "anger", "negative", text="Get out."),
        _u(2, "neutral", "neutral", text="Fine."),
        _u(3, "anger", "negative", text="Get out."),
    ]
    shifts = [m for m in presentation.key_moments(utterances) if m.kind == "shift"]
    assert len({(m.quote, m.emotion) for m in shifts}) == len(shifts)


def test_the_headline_says_mixed_or_unclear_unless_the_label_is_supported():
    clear = [_u(i, "joy", "positive", p=0.8) for i in range(3)]
    assert presentation.headline_fact(clear, "emotion")["verdict"] == "clear"
    weak = [_u(i, "disgust", "negative", p=0.39) for i in range(3)]
    unclear = presentation.headline_fact(weak, "emotion")
    assert (unclear["verdict"], unclear["label"], unclear["percent_sure"]) == (
        "unclear",
        "disgust",
        39,
    )
    spread = [_u(0, "joy", "positive", p=0.9), _u(1, "anger", "negative", p=0.9),
              _u(2, "sadness", "negative", p=0.9)]  # fmt: skip
    mixed = presentation.headline_fact(spread, "emotion")
    assert mixed["verdict"] == "mixed" and len(mixed["top"]) == 3
    assert presentation.headline_fact([_u(0, "", "")], "emotion") is None


def test_unlabelled_utterances_fall_back_to_combined_then_face_and_never_crash():
    face_joy = {"emotion": "joy", "scores": _scores(EMOTIONS, "joy", 0.9), "coverage": 1.0}
    combined_anger = {
        "emotion": "anger",
        "emotion_scores": _scores(EMOTIONS, "anger", 0.7),
        "sentiment": "negative",
        "sentiment_scores": _scores(SENTIMENTS, "negative", 0.8),
        "channels": ["face"],
    }
    utterances = [
        _u(0, "", face=face_joy),  # the face only
        _u(1, "", combined=combined_anger),  # the fusion
        _u(2, "", face={"emotion": None, "scores": None, "coverage": 0.0}),  # nothing read
    ]
    moments = presentation.key_moments(utterances)
    assert [(m.kind, m.index, m.source) for m in moments] == [
        ("positive", 0, "face"),
        ("negative", 1, "combined"),
    ]
    assert moments[1].before == "joy"  # the change from the face's joy onto the fused anger
    assert presentation.reading(utterances[2]) is None


def test_rows_and_chart_data_for_an_unlabelled_utterance():
    u = _u(0, "", face={"emotion": "fear", "scores": _scores(EMOTIONS, "fear", 0.4)})
    (row,) = presentation.utterance_rows([u])
    assert not row.has_text_label and row.emotion_confidence == 0.0
    assert row.face_emotion == "fear" and row.face_weak
    chart = presentation._chart_utterance(u)
    assert chart["emotion"] == "" and chart["polarity"] is None
    assert chart["face_emotion"] == "fear"


def test_rows_and_chart_data_carry_the_voice_reading_and_what_combined_fused():
    voice = {"emotion": "anger", "emotion_scores": _scores(EMOTIONS, "anger", 0.8), "arousal": 0.9}
    combined = {
        "emotion": "anger",
        "emotion_scores": _scores(EMOTIONS, "anger", 0.45),
        "sentiment": "negative",
        "channels": ["text", "voice"],
    }
    (row,) = presentation.utterance_rows([_u(0, voice=voice, combined=combined)])
    assert row.voice_emotion == "anger" and not row.voice_weak and row.voice_arousal == 0.9
    assert row.combined_adds and row.combined_weak and row.combined_channels == "words + voice"
    chart = presentation._chart_utterance(_u(0, voice=voice))
    assert chart["voice_emotion"] == "anger" and chart["voice_confidence"] == 0.8
    (words_only,) = presentation.utterance_rows([_u(0, combined=combined | {"channels": ["text"]})])
    assert not words_only.combined_adds and words_only.voice_emotion is None


# --- The job's outcome and the page ---


@pytest.fixture
def make_job(user, media_root):
    def make(status: str = JobStatus.SUCCEEDED, utterances=(), **fields) -> AnalysisJob:
        video = make_stored_video(user, b"video bytes", original_name="talk.mp4", duration=12.0)
        job = AnalysisJob.objects.create(video=video, owner=user, status=status, **fields)
        for u in utterances:
            u.job = job
            u.save()
        return job

    return make


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code", "utterances", "kind", "badge"),
    [
        ("running", "", [], "running", "Running"),
        ("canceled", "", [], "canceled", "Canceled"),
        ("failed", "truncated", [], "damaged", "Damaged file"),
        ("failed", "internal_error", [], "failed", "Failed"),
        ("succeeded", "", [], "no_speech", "No speech found"),
        ("succeeded", "", [_u(0, "")], "unlabelled", "No text labels"),
        ("succeeded", "", [_u(0), _u(1, "")], "analysed", "Succeeded"),
    ],
)
def test_job_outcome(make_job, status, code, utterances, kind, badge):
    job = make_job(status, error_code=code)
    outcome = presentation.job_outcome(job, utterances)
    assert (outcome.kind, outcome.badge) == (kind, badge)
    assert outcome.downloads == (kind in {"analysed", "unlabelled"})
    assert (outcome.badge_class == "status-succeeded") == (kind == "analysed")


@pytest.mark.django_db
def test_no_speech_page_is_not_a_green_success(client, user, make_job):
    job = make_job(
        summary={"speech_detected": False, "message": "No speech detected.", "face": None},
        stage="done",
        progress=100,
    )
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert 'class="status status-empty" id="job-status">No speech found<' in page
    assert 'id="no-speech"' in page and "nothing to download" in page
    assert reverse("job-results-csv", args=[job.pk]) not in page
    assert reverse("job-results-json", args=[job.pk]) not in page
    assert "status-succeeded" not in page and 'id="key-moments"' not in page


@pytest.mark.django_db
def test_damaged_file_page_says_so(client, user, make_job):
    job = make_job(
        JobStatus.FAILED,
        error_code="decode_failed",
        error_message="talk.mp4: the audio could not be decoded (the file is damaged...)",
    )
    client.force_login(user)
    page = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert ">Damaged file<" in page and "This file is damaged" in page
    assert "the audio could not be decoded" in page and "Export or copy the video again" in page
    assert reverse("job-results-csv", args=[job.pk]) not in page


@pytest.mark.django_db
def test_results_page_summary_moments_and_unlabelled_lines(client, user, make_job):
    utterances = [_u(i) for i in range(4)] + [
        _u(4, "disgust", "negative", p=0.55, text="That is revolting."),
        Utterance(index=5, start=10.0, end=12.0, text="Bonjour à tous.", emotion="", sentiment=""),
    ]
    job = make_job(
        utterances=utterances,
        stage="done",
        progress=100,
        summary={
            "speech_detected": True,
            "speech_duration": 12.0,
            # Averaged probabilities: shown only under their own name.
            "emotion_distribution": {
                **dict.fromkeys(EMOTIONS, 0.05),
                "neutral": 0.46,
                "disgust": 0.24,
            },
            "sentiment_distribution": {"negative": 0.33, "neutral": 0.6, "positive": 0.07},
        },
    )
    client.force_login(user)
    response = client.get(reverse("job-detail", args=[job.pk]))
    page = response.content.decode()
    # Shares of speaking time: neutral 8 s of 12, disgust 2 s, 2 s unlabelled.
    shares = [(s.text, s.percent) for s in response.context["emotion_shares"]]
    assert shares == [("disgust", 17), ("neutral", 67), ("no text label", 17)]
    top = page.split('id="dominant-emotion">')[1].split("</span></span>")[0]
    assert "neutral" in top and ">67%<" in page.split('id="dominant-emotion">')[1]
    assert "Emotion: share of the speaking time" in page
    assert "Average probabilities" in page  # the averages, named as such
    # Key moments: the negative one, with its quote and the click target.
    assert 'id="key-moments"' in page and "Most negative moment" in page
    assert 'href="#utterance-4" data-start="8.000"' in page and "That is revolting." in page
    # The transcript labels what the badges are, and says when the words have no label.
    assert '<span class="kind">Emotion:</span> neutral' in page
    assert '<span class="kind">Sentiment:</span> negative' in page
    assert "no text label" in page and 'id="utterance-5"' in page
    assert ">Succeeded<" in page and reverse("job-results-csv", args=[job.pk]) in page
    data = response.context["chart_data"]
    assert data["utterances"][5]["polarity"] is None and data["weak_below"] == 0.5


@pytest.mark.django_db
def test_analysis_rate_from_recent_jobs(make_job):
    assert presentation.analysis_rate() == presentation.DEFAULT_ANALYSIS_RATE
    for total in (1.2, 2.4, 6.0):  # 0.1, 0.2, 0.5 s per second of a 12 s video
        make_job(stage_timings={"total": total})
    make_job(JobStatus.FAILED, stage_timings={"total": 100.0})  # not a finished analysis
    assert presentation.analysis_rate() == pytest.approx(0.2)


@pytest.mark.django_db
def test_dashboard_marks_a_result_without_speech(client, user, make_job):
    make_job(summary={"speech_detected": False, "message": "No speech detected."})
    client.force_login(user)
    page = client.get(reverse("dashboard")).content.decode()
    assert '<span class="status status-empty" data-role="status">No speech found</span>' in page
