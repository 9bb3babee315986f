from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mlcore.labels import used_channels
from videos.models import AnalysisJob, Utterance, Video
from videos.presentation import queue_status
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery


class VideoSerializer(serializers.ModelSerializer):
    class Meta:
        model = Video
        fields = (
            "id",
            "original_name",
            "size",
            "sha256",
            "duration",
            "width",
            "height",
            "has_audio",
            "created",
        )


def _scores(help_text: str) -> serializers.DictField:
    return serializers.DictField(
        child=serializers.FloatField(), required=False, allow_null=True, help_text=help_text
    )


class FaceAggregateSerializer(serializers.Serializer):
    """The face channel over one utterance's time span."""

    frames = serializers.IntegerField(help_text="Sampled frames inside the utterance.")
    coverage = serializers.FloatField(help_text="Share of those frames that showed a face (0-1).")
    faces_seen = serializers.IntegerField(help_text="Most faces seen in one frame.")
    people = serializers.IntegerField(
        required=False, help_text="Different people (face tracks) seen in the utterance."
    )
    emotion = serializers.CharField(
        allow_null=True, help_text="Largest mean face-expression probability; null: no face."
    )
    scores = _scores("Mean face-expression probabilities over the frames with a face.")
    note = serializers.CharField(
        required=False,
        allow_null=True,
        help_text='Why no face was read: "no picture at this time" (the picture ended before '
        'the sound), "no face in the sampled frames", "faces too small to read (under 40 px)"; '
        "null when one was.",
    )


class VoiceSerializer(serializers.Serializer):
    """The voice channel over one utterance: measured prosody, and the voice-emotion model's
    reading (a model trained on acted speech, RAVDESS; null where it is off or could not read
    the voice: see emotion_note)."""

    pitch_median_hz = serializers.FloatField(allow_null=True)
    pitch_range_st = serializers.FloatField(
        allow_null=True, help_text="10th-90th percentile pitch span, semitones."
    )
    voiced_fraction = serializers.FloatField()
    loudness_dbfs = serializers.FloatField(allow_null=True, help_text="RMS of voiced frames.")
    speaking_rate_wps = serializers.FloatField(allow_null=True, help_text="Words per second.")
    pause_count = serializers.IntegerField(help_text="Gaps of 0.3 s or more between words.")
    pause_s = serializers.FloatField()
    relative_intensity = serializers.FloatField(
        allow_null=True,
        help_text="-1..1 against this video's own median loudness and pitch (see MODEL_CARD).",
    )
    emotion = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The voice-emotion model's label (trained on acted speech); null: no reading.",
    )
    emotion_scores = _scores("The voice-emotion model's probabilities over the 7 emotions.")
    arousal = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="0-1: probability that the voice is activated (anger, fear, joy, surprise) "
        "rather than calm (neutral, sadness).",
    )
    sentiment = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="Derived from the voice's emotions (MELD's emotion-sentiment co-occurrence).",
    )
    sentiment_scores = _scores("Sentiment probabilities derived from the voice's emotions.")
    emotion_note = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text='Why the voice gave no emotion reading ("no voice reading: too short", '
        '"... silent", "... clipped", "... the voice sounds synthetic (text-to-speech)"); '
        "empty when it did.",
    )


class CombinedSerializer(serializers.Serializer):
    """Late fusion of the words, the face and the voice (log-linear pooling, mlcore.fusion)."""

    emotion = serializers.CharField()
    emotion_scores = _scores("Fused emotion probabilities.")
    sentiment = serializers.CharField()
    sentiment_scores = _scores("Fused sentiment probabilities.")
    channels = serializers.ListField(child=serializers.CharField(), help_text="Channels fused.")
    face_weight = serializers.FloatField(help_text="The face's weight (setting x coverage).")
    voice_weight = serializers.FloatField(
        required=False, help_text="The voice's weight; 0: no voice reading."
    )
    text_weight = serializers.FloatField(required=False, help_text="The words' weight.")


class ChannelReadingSerializer(serializers.Serializer):
    """One channel's dominant labels over a speaker's utterances."""

    emotion = serializers.CharField(allow_null=True)
    sentiment = serializers.CharField(required=False, allow_null=True)


class SpeakerVoiceSerializer(ChannelReadingSerializer):
    mean_arousal = serializers.FloatField(required=False, allow_null=True)
    pitch_median_hz = serializers.FloatField(required=False, allow_null=True)


class SpeakerFaceSerializer(serializers.Serializer):
    emotion = serializers.CharField()
    frames = serializers.IntegerField(help_text="Frames of the tied face read during the talk.")


class SpeakerSerializer(serializers.Serializer):
    """One voice told apart by mlcore.speakers (CAM++ embeddings, clustered)."""

    id = serializers.IntegerField(help_text="1, 2, ...: the `speaker` of utterances and turns.")
    name = serializers.CharField(
        help_text='The name given on the page or by PATCH, else "Speaker N".'
    )
    talk_s = serializers.FloatField(help_text="Seconds of speech in this speaker's turns.")
    share = serializers.FloatField(help_text="Share of all talk (0-1).")
    utterance_count = serializers.IntegerField()
    text = ChannelReadingSerializer(allow_null=True, help_text="The words' dominant labels.")
    face = SpeakerFaceSerializer(
        allow_null=True,
        help_text="The tied face track's dominant expression; null: no face tied to this voice.",
    )
    voice = SpeakerVoiceSerializer(allow_null=True)
    combined = ChannelReadingSerializer(allow_null=True)
    face_person = serializers.IntegerField(
        allow_null=True,
        help_text="The face track (face_track[].person) tied to this voice by co-occurrence; "
        "null where the evidence is not clear (face_note says why).",
    )
    face_note = serializers.CharField()


class QueueSerializer(serializers.Serializer):
    position = serializers.IntegerField(help_text="1: next; counts every user's queued jobs.")
    running = serializers.IntegerField(help_text="Analyses running now (workers busy).")
    estimate_s = serializers.IntegerField(
        help_text="About how many seconds until this analysis is done, from the measured rate of "
        "recent analyses over the video time ahead of it and its own."
    )


class SpeakerTurnSerializer(serializers.Serializer):
    start = serializers.FloatField()
    end = serializers.FloatField()
    speaker = serializers.IntegerField()


class SpeakerNamesSerializer(serializers.Serializer):
    """Names for speakers: {"1": "Ann", "2": "Ben"}; an empty name restores "Speaker N"."""

    names = serializers.DictField(
        child=serializers.CharField(max_length=60, allow_blank=True, trim_whitespace=True),
        help_text='Speaker id (as a string) -> name, e.g. {"1": "Ann"}.',
    )


class SightingSerializer(serializers.Serializer):
    """One face in a frame with several."""

    person = serializers.IntegerField(help_text="Face track id (same position over time).")
    box = serializers.ListField(child=serializers.FloatField())
    scores = _scores("Its expression probabilities; null: too small to read.")


class FaceFrameSerializer(serializers.Serializer):
    """One sampled frame of the face channel. Expression probabilities are smoothed over 1.5 s
    of the same person's frames."""

    time = serializers.FloatField()
    faces = serializers.IntegerField(help_text="Faces detected in the frame.")
    box = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="The main face (the most prominent one read): x0, y0, x1, y1 as fractions "
        "of the picture.",
    )
    scores = _scores("Face-expression probabilities of that face; null: no face read.")
    person = serializers.IntegerField(
        required=False, allow_null=True, help_text="The main face's track id."
    )
    too_small = serializers.IntegerField(
        required=False, help_text="Faces found but too small to read (under 40 px)."
    )
    people = SightingSerializer(
        many=True, required=False, help_text="Every face, when the frame has more than one."
    )


class BlankAsNullCharField(serializers.CharField):
    """Stored "" (no value) is shown as null."""

    def to_representation(self, value: str) -> str | None:
        return value or None


class UtteranceSerializer(serializers.ModelSerializer):
    text = serializers.CharField(
        help_text="What the language model read: the transcript, or its English translation "
        "when `translated` is true."
    )
    original_text = serializers.CharField(
        help_text="The words as spoken, when `text` is a translation; empty otherwise."
    )
    translated = serializers.BooleanField(
        help_text="True: the language model read Whisper's English translation of the speech."
    )
    language = BlankAsNullCharField(
        allow_null=True,
        help_text="Spoken language (Whisper language code, e.g. en, de); null: not identified.",
    )
    language_probability = serializers.FloatField(
        allow_null=True, help_text="Whisper's probability for that language (0-1)."
    )
    emotion = BlankAsNullCharField(
        allow_null=True,
        help_text="The language model's label (validated on MELD); null: no label (the language "
        "was uncertain, or not English with translation off: see channels.text.note).",
    )
    emotion_scores = _scores("The language model's emotion probabilities; null: no label.")
    sentiment = BlankAsNullCharField(
        allow_null=True, help_text="The language model's label (validated on MELD); null: none."
    )
    sentiment_scores = _scores("The language model's sentiment probabilities; null: no label.")
    face = FaceAggregateSerializer(allow_null=True, read_only=True)
    voice = VoiceSerializer(allow_null=True, read_only=True)
    combined = CombinedSerializer(allow_null=True, read_only=True)
    speaker = serializers.IntegerField(
        allow_null=True,
        read_only=True,
        help_text="Who speaks (the analysis' speakers[].id); null: speakers were not told apart.",
    )

    class Meta:
        model = Utterance
        fields = (
            "index",
            "start",
            "end",
            "text",
            "original_text",
            "translated",
            "language",
            "language_probability",
            "emotion",
            "emotion_scores",
            "sentiment",
            "sentiment_scores",
            "face",
            "voice",
            "combined",
            "speaker",
        )


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class WebhookAttemptSerializer(serializers.ModelSerializer):
    status_code = serializers.IntegerField(
        allow_null=True, help_text="The receiver's HTTP status; null: no answer (see error)."
    )

    class Meta:
        model = WebhookAttempt
        fields = ("number", "started_at", "duration_ms", "status_code", "error")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One callback (the job ended) and every attempt to deliver it."""

    status = serializers.ChoiceField(
        choices=DeliveryStatus.choices,
        help_text="pending (first attempt or a retry to come), delivered (2xx), failed "
        "(attempts used up, or the target was refused).",
    )
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "event",
            "url",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created",
            "delivered_at",
            "attempts",
        )


class AnalysisSerializer(serializers.ModelSerializer):
    """A job as the API shows it; results only once it succeeded."""

    video = VideoSerializer(read_only=True)
    error = serializers.SerializerMethodField()
    utterances = serializers.SerializerMethodField()
    face_track = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField()
    speakers = serializers.SerializerMethodField()
    speaker_turns = serializers.SerializerMethodField()
    channels_used = serializers.SerializerMethodField()
    language = BlankAsNullCharField(
        allow_null=True,
        read_only=True,
        help_text="The language spoken longest (Whisper language code); null: none identified.",
    )
    language_probability = serializers.FloatField(
        allow_null=True, read_only=True, help_text="Its mean probability (0-1)."
    )
    url = serializers.SerializerMethodField()
    callback_url = serializers.CharField(
        help_text='Where the signed job summary is POSTed when the job ends; "" for none.'
    )
    callback_deliveries = serializers.SerializerMethodField()
    rerun_of = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The canceled or failed analysis this one runs again."
    )

    class Meta:
        model = AnalysisJob
        fields = (
            "id",
            "url",
            "status",
            "stage",
            "progress",
            "error",
            "attempts",
            "model_version",
            "queued_at",
            "started_at",
            "finished_at",
            "rerun_of",
            "callback_url",
            "callback_deliveries",
            "stage_timings",
            "queue",
            "warnings",
            "language",
            "language_probability",
            "channels",
            "channels_used",
            "video",
            "summary",
            "utterances",
            "speakers",
            "speaker_turns",
            "face_track",
        )

    def get_url(self, job: AnalysisJob) -> str:
        request = self.context.get("request")
        path = f"/api/v1/analyses/{job.pk}"
        # Callbacks have no request: the configured public address, if any.
        return request.build_absolute_uri(path) if request else settings.SITE_URL + path

    @extend_schema_field(WebhookDeliverySerializer(many=True, allow_null=True))
    def get_callback_deliveries(self, job: AnalysisJob) -> list[dict] | None:
        """Each callback of this job and its attempts (GET /api/v1/analyses/{id} only)."""
        if not self.context.get("detail"):
            return None
        deliveries = job.webhook_deliveries.prefetch_related("attempts").order_by("created")
        return WebhookDeliverySerializer(deliveries, many=True).data

    def get_error(self, job: AnalysisJob) -> dict | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def _with_results(self, job: AnalysisJob) -> bool:
        return job.status == "succeeded" and self.context.get("with_results", False)

    @extend_schema_field(UtteranceSerializer(many=True, allow_null=True))
    def get_utterances(self, job: AnalysisJob) -> list[dict] | None:
        if not self._with_results(job):
            return None
        return UtteranceSerializer(job.utterances.all(), many=True).data

    @extend_schema_field(FaceFrameSerializer(many=True, allow_null=True))
    def get_face_track(self, job: AnalysisJob) -> list[dict] | None:
        """The face channel across the whole video, speech or not (with the results only)."""
        if not self._with_results(job):
            return None
        return FaceFrameSerializer(job.face_track or [], many=True).data

    @extend_schema_field(QueueSerializer(allow_null=True))
    def get_queue(self, job: AnalysisJob) -> dict | None:
        """While queued: its place in the queue and an estimate (null once it runs)."""
        return queue_status(job)

    @extend_schema_field(SpeakerSerializer(many=True, allow_null=True))
    def get_speakers(self, job: AnalysisJob) -> list[dict] | None:
        """Who speaks: per speaker its talk time and readings, with the owner's names."""
        if not self._with_results(job):
            return None
        return SpeakerSerializer(job.named_speakers(), many=True).data

    @extend_schema_field(SpeakerTurnSerializer(many=True, allow_null=True))
    def get_speaker_turns(self, job: AnalysisJob) -> list[dict] | None:
        """Who speaks when: stretches of speech with their speaker, in time order."""
        if not self._with_results(job):
            return None
        return SpeakerTurnSerializer(job.speaker_turns or [], many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_channels_used(self, job: AnalysisJob) -> list[str]:
        """Channels that produced output for this job: text, face, voice, combined."""
        return used_channels(job.channels)


def callback_url_field(**overrides: object) -> serializers.CharField:
    options = {
        "required": False,
        "allow_blank": True,
        "max_length": 2000,
        "help_text": "http(s) URL on a public address (checked, resolved: loopback, private, "
        "link-local and reserved addresses are refused with callback_url_forbidden). When the "
        "job ends (succeeded, failed or canceled) its summary is POSTed there, signed: "
        "X-Timestamp (unix seconds) and X-Signature: sha256=<hex HMAC-SHA256 of "
        "'<timestamp>.<body>' with your webhook secret, GET /api/v1/webhook-secret>; retried "
        "with exponential backoff on errors and non-2xx answers.",
        **overrides,
    }
    return serializers.CharField(**options)


class AnalysisCreateSerializer(serializers.Serializer):
    # Empty files reach the service, which refuses them with the code `empty_file`.
    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The video (multipart)."
    )
    upload_id = serializers.UUIDField(required=False, help_text="From POST /api/v1/uploads.")
    callback_url = callback_url_field()


class RerunSerializer(serializers.Serializer):
    callback_url = callback_url_field(
        help_text='Omit to keep the original analysis\'s callback_url; "" for none.'
    )


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The HMAC-SHA256 key of your callbacks' signatures.")
    created = serializers.DateTimeField(help_text="When it was made or last rotated.")


class DirectUploadRequestSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
