"""Probe, audio, log-mel and frame sampling on generated media; every MediaError code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mlcore import testmedia
from mlcore.config import PreprocessConfig
from mlcore.media import (
    MEDIA_ERROR_CODES,
    MEL_FLOOR_DB,
    DecodeFailedError,
    DurationMismatchError,
    MediaError,
    MediaInfo,
    MediaLimits,
    MediaTimeoutError,
    clip_tensors,
    decode_fps,
    decode_window_frames,
    frames_to_tensor,
    load_audio,
    load_checked_audio,
    log_mel,
    probe,
    sample_frames,
    sample_times,
)

PRE = PreprocessConfig()


def test_probe_reads_a_talking_clip(talking_clip):
    info = probe(talking_clip)
    assert info.width == 320
    assert info.height == 240
    assert info.fps == 25.0
    assert info.has_audio
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert 8.0 < info.duration < 15.0


def test_probe_reports_a_missing_audio_stream_without_failing(silent_clip):
    info = probe(silent_clip)
    assert not info.has_audio
    assert info.audio_codec is None


def _code(path: Path, limits: MediaLimits = MediaLimits()) -> str:  # noqa: B008
    with pytest.raises(MediaError) as caught:
        probe(path, limits)
    message = str(caught.value)
    assert message and str(path.parent) not in message  # human message, no server paths
    return caught.value.code


def test_random_bytes_are_not_media(tmp_path):
    assert _code(testmedia.make_random_bytes(tmp_path / "noise.mp4")) == "not_media"


def test_a_text_file_named_mp4_is_not_media(tmp_path):
    assert _code(testmedia.make_text_file(tmp_path / "notes.mp4")) == "not_media"


def test_a_missing_or_empty_file_is_not_media(tmp_path):
    assert _code(tmp_path / "absent.mp4") == "not_media"
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert _code(tmp_path / "empty.mp4") == "not_media"


def test_audio_only_has_no_video_stream(tmp_path):
    assert _code(testmedia.make_audio_only(tmp_path / "voice.m4a")) == "no_video_stream"


def test_zero_duration(tmp_path):
    assert _code(testmedia.make_zero_duration(tmp_path / "empty-video.mp4")) == "zero_duration"


def test_too_long(talking_clip):
    assert _code(talking_clip, MediaLimits(max_duration_s=2)) == "too_long"


def test_resolution_too_large_in_either_orientation(talking_clip):
    assert _code(talking_clip, MediaLimits(max_width=200, max_height=150)) == (
        "resolution_too_large"
    )
    # 320x240 fits a 240x320 (portrait) limit: orientation does not matter.
    assert probe(talking_clip, MediaLimits(max_width=240, max_height=320)).width == 320


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_file(talking_clip, tmp_path, keep):
    cut = testmedia.make_truncated_copy(talking_clip, tmp_path / "cut.mp4", keep=keep)
    assert _code(cut) == "truncated"


def test_truncated_file_without_faststart(tmp_path):
    """moov at the end (FFmpeg's default layout): a cut loses the index entirely."""
    whole = tmp_path / "whole.mp4"
    testmedia._run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=2",
         "-c:v", "libx264", "-preset", "ultrafast", str(whole)]
    )  # fmt: skip
    assert probe(whole).duration == pytest.approx(2.0, abs=0.1)
    cut = testmedia.make_truncated_copy(whole, tmp_path / "cut.mp4", keep=0.6)
    assert _code(cut) == "truncated"


def test_an_index_without_media_data_is_refused(talking_clip, tmp_path):
    """ftyp + moov promising seconds of audio and video, and an empty mdat: not a silent video."""
    empty = testmedia.make_index_only(talking_clip, tmp_path / "empty.mp4")
    assert empty.stat().st_size < 10_000
    with pytest.raises(MediaError) as caught:
        probe(empty)
    assert caught.value.code == "no_media_data"
    assert "empty.mp4" in str(caught.value)


def test_an_audio_track_without_data_is_an_error_not_silence(talking_clip, tmp_path):
    """The worker's own guard, should such a file get past the upload check."""
    empty = testmedia.make_index_only(talking_clip, tmp_path / "empty.mp4")
    info = MediaInfo(3.0, 320, 240, 25.0, True, "h264", "aac", container="mov")
    with pytest.raises(MediaError) as caught:
        load_checked_audio(empty, info, PRE.sample_rate)
    assert caught.value.code == "no_media_data"


def test_the_first_audio_stream_is_the_one_decoded(tmp_path):
    """The probe reports the first audio stream; the decode must use that one too, not
    FFmpeg's pick (the stream with the most channels)."""
    path = testmedia.make_many_audio_streams(tmp_path / "many.mp4", streams=3)
    info = probe(path)
    audio = load_audio(path, 16_000, container=info.container)
    spectrum = np.abs(np.fft.rfft(audio[:16_000]))
    assert abs(int(np.argmax(spectrum)) - 220) <= 2  # Hz: the first stream's tone, not 880


def test_decode_failed_when_ffmpeg_cannot_decode(silent_clip):
    with pytest.raises(DecodeFailedError) as caught:
        load_audio(silent_clip)  # no audio stream to decode
    assert caught.value.code == "decode_failed"


def test_error_codes_are_distinct_and_complete():
    assert len(set(MEDIA_ERROR_CODES)) == len(MEDIA_ERROR_CODES)
    assert set(MEDIA_ERROR_CODES) == {
        "not_media",
        "no_video_stream",
        "zero_duration",
        "too_long",
        "resolution_too_large",
        "truncated",
        "decode_failed",
        "unsupported_container",
        "duration_mismatch",
        "media_timeout",
        "no_media_data",
    }
    assert MediaError("custom", code="x").code == "x"


def test_load_audio_is_16k_mono_float(talking_clip):
    audio = load_audio(talking_clip)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert len(audio) / 16_000 == pytest.approx(probe(talking_clip).duration, abs=0.1)
    assert 0.05 < np.abs(audio).max() <= 1.0
    assert len(load_audio(talking_clip, max_seconds=2.0)) == 32_000


def test_log_mel_shape_range_and_padding():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16_000 * 20).astype(np.float32) * 0.1
    short = log_mel(audio, 1.0, 2.0, PRE)
    assert short.shape == (PRE.n_mels, PRE.mel_steps)
    assert short.dtype == np.float32
    assert short.max() == pytest.approx(0.0)  # dB relative to the peak: the log step is there
    assert short.min() >= MEL_FLOOR_DB
    # 1 s is ~32 steps: the rest is padding at the silence floor.
    assert np.all(short[:, 40:] == MEL_FLOOR_DB)
    assert np.all(short[:, :30] > MEL_FLOOR_DB)
    long = log_mel(audio, 0.0, 20.0, PRE)  # cropped to 300 steps = 9.6 s
    assert long.shape == (PRE.n_mels, PRE.mel_steps)
    assert np.all(long[:, -1] > MEL_FLOOR_DB)


def test_log_mel_matches_librosa():
    import librosa

    audio = np.random.default_rng(1).standard_normal(16_000 * 2).astype(np.float32)
    reference = librosa.power_to_db(
        librosa.feature.melspectrogram(y=audio, sr=16_000, n_fft=1024, hop_length=512, n_mels=64),
        ref=np.max,
        top_db=80.0,
    )
    ours = log_mel(audio, 0.0, 2.0, PRE)
    width = reference.shape[1]
    np.testing.assert_allclose(ours[:, :width], reference, atol=1e-3)


def test_log_mel_of_silence_or_nothing_is_the_floor():
    silence = np.zeros(16_000 * 3, dtype=np.float32)
    assert np.all(log_mel(silence, 0.0, 3.0, PRE) == MEL_FLOOR_DB)
    assert np.all(log_mel(silence, 5.0, 6.0, PRE) == MEL_FLOOR_DB)


def test_sample_times_spread_evenly_across_the_window():
    times = sample_times(2.0, 4.0, 4)
    assert times.tolist() == [2.25, 2.75, 3.25, 3.75]


def test_frames_come_from_the_right_times(tmp_path):
    clip = testmedia.make_frame_counter_clip(tmp_path / "counter.mp4", seconds=4.0, fps=25)
    info = probe(clip)
    pre = PreprocessConfig(num_frames=4, frame_size=32)
    windows = [(2.0, 3.6), (0.0, 1.0)]  # out of order on purpose
    frames = decode_window_frames(clip, windows, pre, info)
    assert frames.shape == (2, 4, 32, 32, 3)
    assert frames.dtype == np.uint8
    read = frames[..., 0].astype(float).mean(axis=(2, 3)) / 2  # brightness 2n -> frame n
    rate = decode_fps(info, 4)
    assert rate == 8.0  # 4 frames a window need no more than 8 fps
    for row, (start, end) in zip(read, windows, strict=True):
        seconds = row / 25  # when the frame read back was shown
        assert np.abs(seconds - sample_times(start, end, 4)).max() <= 1 / rate
        assert np.all(np.diff(row) > 0)


def test_sample_frames_shape_and_normalisation(talking_clip):
    info = probe(talking_clip)
    frames = sample_frames(talking_clip, [(0.0, 1.0), (2.0, 5.0), (6.0, 8.0)], PRE, info)
    assert frames.shape == (3, 3, PRE.num_frames, PRE.frame_size, PRE.frame_size)
    assert frames.dtype == torch.float32
    assert -3.0 < frames.mean().item() < 3.0
    assert frames.min() >= (0 - max(PRE.video_mean)) / min(PRE.video_std) - 1e-4
    assert frames.max() <= (1 - min(PRE.video_mean)) / min(PRE.video_std) + 1e-4
    assert frames[0, :, 0].std() > 0.1  # a real picture, not padding


def test_frames_to_tensor_uses_kinetics_mean_and_std():
    pixel = np.array(PRE.video_mean) * 255
    frames = np.broadcast_to(pixel.round().astype(np.uint8), (2, 4, 8, 8, 3))
    tensor = frames_to_tensor(np.ascontiguousarray(frames), PRE)
    assert tensor.shape == (2, 3, 4, 8, 8)
    assert tensor.abs().max() < 0.01


def test_windows_past_the_end_of_the_video_reuse_its_last_frame(talking_clip):
    info = probe(talking_clip)
    frames = decode_window_frames(
        talking_clip, [(info.duration - 0.5, info.duration + 5)], PRE, info
    )
    assert frames[0, -1].any()  # not left black


def test_clip_tensors_for_a_short_clip(talking_clip, silent_clip):
    mel, frames = clip_tensors(talking_clip, PRE)
    assert mel.shape == (1, PRE.n_mels, PRE.mel_steps)
    assert frames.shape == (3, PRE.num_frames, PRE.frame_size, PRE.frame_size)
    mel, frames = clip_tensors(silent_clip, PRE)
    assert mel is None
    assert frames.shape == (3, PRE.num_frames, PRE.frame_size, PRE.frame_size)


# --- Files that point FFmpeg elsewhere, or lie about their length ---


@pytest.fixture
def secret(tmp_path) -> Path:
    return testmedia.make_secret_media(tmp_path / "server-secret.ts")


def test_an_hls_playlist_reading_a_server_file_is_refused(tmp_path, secret):
    playlist = testmedia.make_hls_playlist(tmp_path / "holiday.mp4", secret)
    assert _code(playlist) == "unsupported_container"


def test_an_ffconcat_list_is_refused(tmp_path, secret):
    assert _code(testmedia.make_ffconcat_list(tmp_path / "trip.mp4", secret)) == (
        "unsupported_container"
    )


def test_a_still_image_is_refused(tmp_path):
    image = tmp_path / "still.mp4"
    testmedia._run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1",
         "-f", "image2pipe", "-c:v", "png", str(image)]
    )  # fmt: skip
    assert _code(image) == "unsupported_container"


def test_a_file_named_like_another_protocol_is_read_as_a_file(tmp_path, talking_clip):
    """FFmpeg reads "concat:a|b" as its concat protocol; we always pass file: URLs."""
    odd = tmp_path / "concat:x.mp4"
    odd.write_bytes(talking_clip.read_bytes())
    assert probe(odd).container == "mov"
    assert len(load_audio(odd)) > 16_000


def test_the_probed_demuxer_is_forced_when_decoding(secret, tmp_path):
    info = probe(secret)
    assert info.container == "mpegts"
    # The same bytes under a forced different demuxer do not decode: the choice is not re-made.
    with pytest.raises(DecodeFailedError):
        load_audio(secret, container="matroska")


def test_a_lying_duration_is_refused_after_a_bounded_decode(tmp_path, secret):
    joined = testmedia.make_lying_duration(tmp_path / "joined.mp4", secret, copies=5)
    info = probe(joined)
    assert info.duration < 7  # what the container claims, and what the quota is charged
    assert len(load_audio(joined)) / 16_000 > 29  # what an unbounded decode returns
    with pytest.raises(DurationMismatchError) as caught:
        load_checked_audio(joined, info, 16_000)
    assert "6.0 s" in str(caught.value) and str(tmp_path) not in str(caught.value)


def test_an_honest_file_passes_the_bounded_decode(talking_clip):
    info = probe(talking_clip)
    audio = load_checked_audio(talking_clip, info, 16_000)
    assert len(audio) / 16_000 == pytest.approx(info.duration, abs=0.2)


def test_ffmpeg_runs_are_bounded_in_time(talking_clip, monkeypatch):
    from mlcore import media

    info = probe(talking_clip)
    monkeypatch.setattr(media, "PROBE_TIMEOUT_S", 0.001)
    with pytest.raises(MediaTimeoutError):
        probe(talking_clip)
    monkeypatch.setattr(media, "DECODE_TIMEOUT_BASE_S", -1e6)  # any decode is already too late
    with pytest.raises(MediaTimeoutError):
        load_audio(talking_clip, max_seconds=5)
    with pytest.raises(MediaTimeoutError):
        decode_window_frames(talking_clip, [(0.0, 1.0)], PRE, info)
