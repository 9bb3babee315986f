"""A corpus of malformed inputs, generated here: each is refused at upload with a code or ends as
a failed job with a reason, and the real worker stays up and handles the next good job."""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

import pytest
from django.urls import reverse

from mlcore import testmedia
from quotas.models import UsageRecord
from videos.models import AnalysisJob

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-v", "error", *args], check=True, capture_output=True)


def _overwrite(source: Path, path: Path, offset: int, length: int) -> Path:
    data = bytearray(source.read_bytes())
    data[offset : offset + length] = bytes((i * 37) % 256 for i in range(length))
    path.write_bytes(bytes(data))
    return path


def build_corpus(base: Path, good: Path) -> dict[str, Path]:
    corpus: dict[str, Path] = {}

    def add(name: str, path: Path) -> None:
        corpus[name] = path

    (base / "empty.mp4").write_bytes(b"")
    add("empty", base / "empty.mp4")
    add("random_bytes", testmedia.make_random_bytes(base / "random.mp4"))
    (base / "fake_ftyp.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(4096))
    add("mp4_header_then_zeros", base / "fake_ftyp.mp4")
    add("text_named_mp4", testmedia.make_text_file(base / "notes.mp4"))
    (base / "page.mp4").write_text("<!doctype html><html><body>video</body></html>")
    add("html_named_mp4", base / "page.mp4")
    (base / "archive.mp4").write_bytes(gzip.compress(good.read_bytes()[:10000]))
    add("gzip_named_mp4", base / "archive.mp4")
    for keep in (0.05, 0.5, 0.95):
        add(
            f"truncated_{keep}",
            testmedia.make_truncated_copy(good, base / f"cut{keep}.mp4", keep=keep),
        )
    add("corrupt_header", _overwrite(good, base / "badhead.mp4", 0, 64))
    add("corrupt_middle", _overwrite(good, base / "badmid.mp4", good.stat().st_size // 2, 4096))
    add("audio_only", testmedia.make_audio_only(base / "voice.mp4"))
    testmedia.make_speech_wav("Just a voice.", base / "voice.wav")
    (base / "voice_wav.mp4").write_bytes((base / "voice.wav").read_bytes())
    add("wav_named_mp4", base / "voice_wav.mp4")
    add("zero_duration", testmedia.make_zero_duration(base / "zero.mp4"))
    add("video_only", testmedia.make_talking_clip(base / "mute.mp4", ["unused"], with_audio=False))
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=4096x2304:d=0.2",
        "-c:v",
        "mpeg4",
        str(base / "huge.mp4"),
    )
    add("huge_dimensions", base / "huge.mp4")
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:d=1", "-frames:v", "1", str(base / "still.png"))
    (base / "still_png.mp4").write_bytes((base / "still.png").read_bytes())
    add("png_named_mp4", base / "still_png.mp4")
    (base / "subs.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nHello\n")
    _ffmpeg("-i", str(base / "subs.srt"), "-c:s", "srt", str(base / "subs_only.mkv"))
    add("subtitles_only", base / "subs_only.mkv")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=s=160x120:d=40", "-f", "lavfi",
        "-i", "anullsrc=r=16000:cl=mono", "-t", "40", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", "-shortest", str(base / "silence.mp4"),
    )  # fmt: skip
    add("long_silence", base / "silence.mp4")
    _ffmpeg("-i", str(good), "-c", "copy", "-f", "matroska", str(base / "mkv_named.mp4"))
    add("mkv_with_mp4_extension", base / "mkv_named.mp4")
    # Indirection: files that would make FFmpeg read other files on the server.
    secret = testmedia.make_secret_media(base / "server-secret.ts")
    add("hls_playlist_file_url", testmedia.make_hls_playlist(base / "holiday.mp4", secret))
    add("ffconcat_list", testmedia.make_ffconcat_list(base / "trip.mp4", secret))
    add("lying_duration", testmedia.make_lying_duration(base / "joined.mp4", secret))
    # An index (ftyp + moov) with no media data behind it: 3 kB promising seconds of video.
    add("index_only", testmedia.make_index_only(good, base / "moov_only.mp4"))
    add("eight_audio_streams", testmedia.make_many_audio_streams(base / "dubbed.mp4", streams=8))
    add("audio_longer_than_video", testmedia.make_long_audio(base / "long_audio.mp4"))
    return corpus


def _wait(job_ids: list[str], timeout_s: float = 400) -> dict[str, AnalysisJob]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = {str(j.pk): j for j in AnalysisJob.objects.filter(pk__in=job_ids)}
        if all(j.is_finished for j in jobs.values()):
            return jobs
        time.sleep(1)
    raise AssertionError({str(j.pk): j.status for j in AnalysisJob.objects.all()})


def test_malformed_corpus(postgres, celery_worker, api, media_root, talking_clip, tmp_path):
    corpus = build_corpus(tmp_path, talking_clip)
    assert len(corpus) == 26
    refused, queued, messages = {}, {}, {}
    for name, path in corpus.items():
        with path.open("rb") as fh:
            response = api.post(reverse("api-analyses"), {"file": fh}, format="multipart")
        assert response.status_code in (202, 400), (name, response.status_code, response.content)
        body = response.json()
        if response.status_code == 400:
            assert body["error"]["code"] and body["error"]["message"], name
            refused[name] = body["error"]["code"]
            messages[name] = body["error"]["message"]
        else:
            queued[name] = body["id"]

    # The clearly broken inputs never reach the queue.
    for name in (
        "empty",
        "random_bytes",
        "text_named_mp4",
        "html_named_mp4",
        "audio_only",
        "wav_named_mp4",
        "zero_duration",
        "huge_dimensions",
        "subtitles_only",
    ):
        assert name in refused, (name, queued.get(name))
    assert refused["hls_playlist_file_url"] == "unsupported_container"
    assert refused["ffconcat_list"] == "unsupported_container"
    assert refused["index_only"] == "no_media_data"
    # Refusals name the user's file (never our temp file) and keep FFmpeg's text in the log.
    assert not any("upload-" in m for m in messages.values()), messages

    # Whatever was accepted ends: failed with a reason, or succeeded (valid content).
    jobs = _wait(list(queued.values()))
    for name, job_id in queued.items():
        job = jobs[job_id]
        assert job.status in ("succeeded", "failed"), (name, job.status)
        if job.status == "failed":
            assert job.error_code and job.error_message, name
    assert jobs[queued["video_only"]].status == "succeeded"
    assert any("audio" in w.lower() for w in jobs[queued["video_only"]].warnings)
    # Probed as 6 s (and charged so), decodes to 30 s: refused after a bounded decode, refunded.
    lying = jobs[queued["lying_duration"]]
    assert (lying.status, lying.error_code) == ("failed", "duration_mismatch")
    silence = jobs[queued["long_silence"]]
    assert silence.status == "succeeded" and silence.utterances.count() == 0
    # Several audio streams: the first is analysed; audio past the picture's end still counts.
    dubbed = jobs[queued["eight_audio_streams"]]
    assert dubbed.status == "succeeded"
    assert "8 audio tracks; the first one" in " ".join(dubbed.warnings)
    long_audio = jobs[queued["audio_longer_than_video"]]
    assert long_audio.status == "succeeded" and long_audio.video.duration > 10
    assert "runs longer than the picture" in " ".join(long_audio.warnings)
    assert "sound" in " ".join(u.text.lower() for u in long_audio.utterances.all())

    # Charged: one record per accepted job, none for a refusal; every failed job refunded.
    records = {str(r.job_id): r for r in UsageRecord.objects.all()}
    assert set(records) == set(queued.values())
    for job_id, job in jobs.items():
        assert (records[job_id].refunded_at is not None) == (job.status == "failed"), job_id

    # The worker is still up: a good video right after is analysed.
    with talking_clip.open("rb") as fh:
        good_id = api.post(reverse("api-analyses"), {"file": fh}, format="multipart").json()["id"]
    assert _wait([good_id])[good_id].status == "succeeded"
    print({"refused": refused, "queued": {n: jobs[i].status for n, i in queued.items()}})
