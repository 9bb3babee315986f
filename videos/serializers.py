from __future__ import annotations

from rest_framework import serializers

from videos.models import AnalysisJob, Utterance, Video


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


class UtteranceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Utterance
        fields = (
            "index",
            "start",
            "end",
            "text",
            "emotion",
            "emotion_scores",
            "sentiment",
            "sentiment_scores",
        )


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class AnalysisSerializer(serializers.ModelSerializer):
    """A job as the API shows it; results only once it succeeded."""

    video = VideoSerializer(read_only=True)
    error = serializers.SerializerMethodField()
    utterances = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

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
            "stage_timings",
            "warnings",
            "video",
            "summary",
            "utterances",
        )

    def get_url(self, job: AnalysisJob) -> str:
        request = self.context.get("request")
        path = f"/api/v1/analyses/{job.pk}"
        return request.build_absolute_uri(path) if request else path

    def get_error(self, job: AnalysisJob) -> dict | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def get_utterances(self, job: AnalysisJob) -> list[dict] | None:
        if job.status != "succeeded" or not self.context.get("with_results", False):
            return None
        return UtteranceSerializer(job.utterances.all(), many=True).data


class AnalysisCreateSerializer(serializers.Serializer):
    # Empty files reach the service, which refuses them with the code `empty_file`.
    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="The video (multipart)."
    )
    upload_id = serializers.UUIDField(required=False, help_text="From POST /api/v1/uploads.")


class DirectUploadRequestSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
