"""Rows for tests and benchmarks: a stored video without running the upload checks."""

from __future__ import annotations

from django.core.files.base import ContentFile

from videos.models import Video


def make_stored_video(owner, data: bytes = b"not video", **fields) -> Video:
    """A saved `Video` whose file holds `data` (not media by default: a job on it fails at probe,
    cheaply). `fields` override the metadata the upload checks would have filled in."""
    metadata = {
        "original_name": "clip.mp4",
        "size": len(data),
        "sha256": "0" * 64,
        "duration": 3.0,
        "width": 320,
        "height": 240,
        "has_audio": True,
    }
    video = Video(owner=owner, **(metadata | fields))
    video.file.save("source", ContentFile(data), save=False)
    video.save()
    return video
