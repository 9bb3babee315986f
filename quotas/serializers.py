"""Shapes of the usage endpoint (read from quotas.services.UsageSummary)."""

from rest_framework import serializers


class LimitsSerializer(serializers.Serializer):
    analyses = serializers.IntegerField(help_text="Monthly analyses, extras included.")
    video_seconds = serializers.IntegerField(help_text="Monthly seconds of video.")
    max_file_bytes = serializers.IntegerField()
    max_duration_s = serializers.FloatField()
    requests_per_minute = serializers.IntegerField()
    extra_analyses = serializers.IntegerField(help_text="Granted for this period only.")


class AmountsSerializer(serializers.Serializer):
    analyses = serializers.IntegerField()
    video_seconds = serializers.FloatField()


class UsageSerializer(serializers.Serializer):
    plan = serializers.CharField()
    limits = LimitsSerializer()
    used = AmountsSerializer()
    remaining = AmountsSerializer()
    period_start = serializers.DateTimeField()
    resets_at = serializers.DateTimeField(help_text="Start of next month (UTC).")
