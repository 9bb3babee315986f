"""Videos, their analysis jobs and the per-utterance results."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


def video_upload_path(instance: Video, filename: str) -> str:
    """Stored name from our own id; the user's file name is never used as a path."""
    return f"videos/{instance.owner_id}/{instance.id}/source"


class Video(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="videos"
    )
    file = models.FileField(upload_to=video_upload_path, max_length=500)
    original_name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    duration = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    has_audio = models.BooleanField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self) -> str:
        return self.original_name


class DirectUpload(models.Model):
    """A presigned direct-to-S3 upload slot; becomes a Video once verified."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=500, unique=True)
    original_name = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


class AnalysisJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    stage = models.CharField(max_length=32, default="queued")
    progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    stage_timings = models.JSONField(default=dict, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # Which channels ran, with which model, and why one did not (mlcore.inference.Analyzer).
    channels = models.JSONField(default=dict, blank=True)
    # The face channel over the whole video: one entry per sampled frame (time, faces, box, scores).
    face_track = models.JSONField(default=list, blank=True)
    # The video's main spoken language (Whisper language ID) and its probability; "" / null:
    # no speech, or a result from before language detection.
    language = models.CharField(max_length=16, blank=True)
    language_probability = models.FloatField(null=True, blank=True)
    # Who speaks when (mlcore.speakers): per speaker its talk time and what each channel read
    # (`speaker_summaries`), the turns (start, end, speaker), and the names the owner gave them
    # ({"1": "Ann"}; a speaker without one is "Speaker N").
    speakers = models.JSONField(default=list, blank=True)
    speaker_turns = models.JSONField(default=list, blank=True)
    speaker_names = models.JSONField(default=dict, blank=True)
    # The Celery message that owns the run, and when that run last reported: together they tell
    # a redelivery of the owning message (take over) from a duplicate (leave it to the owner).
    task_id = models.CharField(max_length=64, blank=True)
    # POSTed a signed summary when the job ends (webhooks app); "" for none.
    callback_url = models.CharField(max_length=2000, blank=True)
    # "Run again": the canceled or failed job this one repeats (same video, charged anew).
    rerun_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-queued_at",)
        indexes = [models.Index(fields=["owner", "status"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.video} [{self.status}]"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def named_speakers(self) -> list[dict]:
        """The speakers with the names their owner gave them (else "Speaker N")."""
        names = self.speaker_names or {}
        return [s | {"name": names.get(str(s["id"])) or s["name"]} for s in self.speakers or []]


class Utterance(models.Model):
    job = models.ForeignKey(AnalysisJob, on_delete=models.CASCADE, related_name="utterances")
    index = models.PositiveIntegerField()
    start = models.FloatField()
    end = models.FloatField()
    # What the language model read: the transcript, or its English translation (`translated`).
    text = models.TextField()
    # The words as spoken, when `text` is a translation; "" otherwise.
    original_text = models.TextField(blank=True)
    translated = models.BooleanField(default=False)
    language = models.CharField(max_length=16, blank=True)
    language_probability = models.FloatField(null=True, blank=True)
    # The language model's labels; "" / null: it gave none (speech it cannot read, see `language`).
    emotion = models.CharField(max_length=16, blank=True)
    emotion_scores = models.JSONField(null=True, blank=True)
    sentiment = models.CharField(max_length=16, blank=True)
    sentiment_scores = models.JSONField(null=True, blank=True)
    # The other channels (mlcore.inference.UtteranceResult); null in results from before them.
    face = models.JSONField(null=True, blank=True)
    voice = models.JSONField(null=True, blank=True)
    combined = models.JSONField(null=True, blank=True)
    # 1, 2, ... (AnalysisJob.speakers); null: speakers off, or a result from before them.
    speaker = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ("job", "index")
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="unique_utterance_index")
        ]

    def __str__(self) -> str:
        return f"{self.index}: {self.text[:40]}"
