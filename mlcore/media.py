"""Media input: probe a file, decode its audio once, log-mel windows, sample video frames.

Everything goes through FFmpeg (ffmpeg-python). Training (MELD clips via `clip_tensors`) and
inference (utterance windows of one long video) use the same functions, so the model always sees
the same preprocessing. All numbers come from `PreprocessConfig`.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
import torch

from mlcore.config import PreprocessConfig

log = logging.getLogger(__name__)

# --- Errors ---


class MediaError(Exception):
    """A file the analysis cannot use. `code` is machine-readable, the message is for people;
    `detail` is FFmpeg's own text, for the log (it is logged here, never shown to users)."""

    code = "media_error"

    def __init__(self, message: str, *, code: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code
        if detail:
            log.warning("%s [ffmpeg: %s]", message, detail)


class NotMediaError(MediaError):
    code = "not_media"


class NoVideoStreamError(MediaError):
    code = "no_video_stream"


class ZeroDurationError(MediaError):
    code = "zero_duration"


class TooLongError(MediaError):
    code = "too_long"


class ResolutionTooLargeError(MediaError):
    code = "resolution_too_large"


class TruncatedMediaError(MediaError):
    code = "truncated"


class DecodeFailedError(MediaError):
    code = "decode_failed"


class UnsupportedContainerError(MediaError):
    code = "unsupported_container"


class DurationMismatchError(MediaError):
    code = "duration_mismatch"


class MediaTimeoutError(MediaError):
    code = "media_timeout"


class NoMediaDataError(MediaError):
    code = "no_media_data"


MEDIA_ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        NotMediaError,
        NoVideoStreamError,
        ZeroDurationError,
        TooLongError,
        ResolutionTooLargeError,
        TruncatedMediaError,
        DecodeFailedError,
        UnsupportedContainerError,
        DurationMismatchError,
        MediaTimeoutError,
        NoMediaDataError,
    )
)


# --- Safe FFmpeg invocation ---

# The only demuxers FFmpeg may use: single-file containers that never open another file or URL.
# Playlists (hls, dash), concat/ffconcat, image sequences, tee, subtitle and text "formats" would
# let an upload make the server read its own files, so they are refused by name, before FFmpeg
# follows anything. mov's external data references stay off (FFmpeg's enable_drefs default).
ALLOWED_DEMUXERS: tuple[str, ...] = (
    "mov",  # mp4, mov, m4v, 3gp
    "matroska",  # mkv, webm
    "avi",
    "mpegts",
    "flv",
    "ogg",
    "asf",  # wmv
    "mpeg",  # MPEG program stream (.mpg, .vob)
    "wav",  # audio-only: refused later with a clear "no video stream"
    "mp3",
)
SUPPORTED_CONTAINERS = "MP4/MOV, MKV/WebM, AVI, MPEG-TS, FLV, Ogg, WMV or MPEG-PS"
# Wall-clock bounds for FFmpeg children, so a pathological file can never hang a web request or
# a worker: probing reads headers only; decoding gets a base plus the media's own length.
PROBE_TIMEOUT_S = 30.0
DECODE_TIMEOUT_BASE_S = 60.0


def decode_timeout_s(media_seconds: float) -> float:
    """Generous on 2 cores: decoding runs 20-100x faster than real time."""
    return DECODE_TIMEOUT_BASE_S + max(media_seconds, 0.0)


def _file_url(path: str | Path) -> str:
    # `file:` stops FFmpeg from reading a name as another protocol ("concat:a|b", "http:...").
    return f"file:{Path(path).resolve()}"


def _input_options(container: str | None) -> dict[str, str]:
    """Input options for every FFmpeg/ffprobe call: no protocol but the one local file, only the
    allowed demuxers, and the probed demuxer forced when known (no second guess at decode)."""
    options = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}
    if container:
        options["f"] = container
    return options


def _safe_input(path: str | Path, container: str | None, **options: str):
    return ffmpeg.input(_file_url(path), **_input_options(container), **options)


def _run_ffmpeg(node, path: Path, timeout_s: float, what: str) -> bytes:
    """Run an ffmpeg-python graph to stdout with a timeout; FFmpeg errors become MediaErrors."""
    command = node.global_args("-nostdin", "-v", "error").compile()
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaTimeoutError(
            f"{path.name}: decoding the {what} took longer than {timeout_s:.0f} s"
        ) from exc
    if done.returncode != 0:
        raise DecodeFailedError(
            f"{path.name}: the {what} could not be decoded (the file is damaged or uses a codec "
            "we do not read)",
            detail=_tail(done.stderr, path),
        )
    return done.stdout


# --- Probe ---


@dataclass(frozen=True)
class MediaLimits:
    """What the service accepts. Resolution limits apply to either orientation (portrait too)."""

    max_duration_s: float = 1800
    max_width: int = 3840
    max_height: int = 2160


@dataclass(frozen=True)
class MediaInfo:
    duration: float  # seconds
    width: int  # as displayed (after any rotation FFmpeg applies when decoding)
    height: int
    fps: float
    has_audio: bool
    video_codec: str
    audio_codec: str | None
    container: str = ""  # the demuxer FFmpeg recognised (one of ALLOWED_DEMUXERS); forced later
    audio_streams: int = 0  # how many audio streams; the first is the one analysed
    video_duration: float | None = None  # the picture's own length, when the file says
    audio_duration: float | None = None  # the first audio stream's length, when the file says


# ISO BMFF (MP4/MOV/M4A/3GP) top-level boxes; a file starting with one of these is an MP4 family
# file, so a structural problem in it means a cut-short file rather than "not media".
_MP4_TOP_LEVEL = {
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"moof", b"mfra",
    b"meta", b"styp", b"sidx", b"emsg", b"prft", b"junk", b"pnot",
}  # fmt: skip


def _mp4_is_truncated(path: Path) -> bool | None:
    """Walk the top-level boxes: True if one claims to run past the end of the file (an upload
    or download cut short), False if they fit, None if this is not an MP4-family file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        first = True
        while offset + 8 <= size:
            f.seek(offset)
            box_size, box_type = struct.unpack(">I4s", f.read(8))
            if box_type not in _MP4_TOP_LEVEL:
                return None if first else False  # unknown trailing data: leave it to FFmpeg
            if box_size == 1:  # 64-bit size follows
                if offset + 16 > size:
                    return True
                (box_size,) = struct.unpack(">Q", f.read(8))
            elif box_size == 0:  # box runs to the end of the file
                return False
            if box_size < 8:
                return None if first else False
            if offset + box_size > size:
                return True
            offset += box_size
            first = False
    return None if first else offset < size


def _video_stream(streams: list[dict]) -> dict | None:
    for stream in streams:
        # Cover art in audio files shows up as a one-frame "video" stream: not a video.
        if stream.get("codec_type") == "video" and not stream.get("disposition", {}).get(
            "attached_pic"
        ):
            return stream
    return None


def _fraction(value: str | None) -> float:
    if not value or value in {"0/0", "N/A"}:
        return 0.0
    num, _, den = value.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _seconds(entry: dict | None) -> float | None:
    """The `duration` ffprobe reports for a format or stream entry, when it has a usable one."""
    try:
        return float(entry["duration"]) if entry else None
    except (KeyError, TypeError, ValueError):
        return None


def _duration(probed: dict, video: dict | None) -> float:
    for source in (probed.get("format"), video):
        seconds = _seconds(source)
        if seconds is not None:
            return seconds
    return 0.0


def _display_size(video: dict) -> tuple[int, int]:
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    rotation = int(float(video.get("tags", {}).get("rotate", 0) or 0))
    for side_data in video.get("side_data_list", []):
        rotation = int(float(side_data.get("rotation", rotation) or 0))
    return (height, width) if rotation % 180 else (width, height)


def _tail(stderr: bytes | None, path: Path) -> str:
    """FFmpeg's last message, without the server-side directory (messages reach users)."""
    text = (stderr or b"").decode(errors="replace").strip()
    last = text.splitlines()[-1] if text else "no details"
    return last.replace(_file_url(path), path.name).replace(str(path.resolve()), path.name)


def _run_ffprobe(path: Path, args: list[str], container: str | None = None):
    """ffprobe on the file with the same restrictions as every decode, bounded in time."""
    command = ["ffprobe", "-v", "error", *args]
    for key, value in _input_options(container).items():
        command += [f"-{key}", value]
    try:
        return subprocess.run(
            [*command, _file_url(path)], capture_output=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise MediaTimeoutError(
            f"{path.name}: reading the file's structure took longer than {PROBE_TIMEOUT_S:.0f} s"
        ) from exc


def _ffprobe(path: Path) -> dict:
    """ffprobe's JSON for the file (format and streams)."""
    done = _run_ffprobe(path, ["-of", "json", "-show_format", "-show_streams"])
    if done.returncode != 0:
        if b"not on whitelist" in done.stderr:
            raise UnsupportedContainerError(
                f"{path.name} is not a video container we read (playlists, concat lists, images "
                f"and text are refused); send {SUPPORTED_CONTAINERS}"
            )
        raise _ProbeFailed(_tail(done.stderr, path))
    return json.loads(done.stdout or b"{}")


def _has_packet(path: Path, stream_index: int, container: str) -> bool:
    """Whether the stream's first packet can be read. An index (MP4 moov) probes fine without
    any media data behind it; reading one packet tells, in ~30 ms whatever the file's size."""
    args = ["-of", "csv=p=0", "-select_streams", str(stream_index)]
    args += ["-read_intervals", "%+#1", "-show_entries", "packet=size"]
    return bool(_run_ffprobe(path, args, container).stdout.strip())


class _ProbeFailed(Exception):
    pass


def probe(path: str | Path, limits: MediaLimits = MediaLimits()) -> MediaInfo:  # noqa: B008
    """ffprobe the file and check it against `limits`. Raises a `MediaError` subclass.

    A file without an audio stream is fine (`has_audio=False`): the analysis then runs without
    the audio branch and says so.
    """
    path = Path(path)
    if not path.is_file():
        raise NotMediaError(f"{path.name}: no such file")
    if path.stat().st_size == 0:
        raise NotMediaError(f"{path.name} is empty")
    truncated = _mp4_is_truncated(path)
    if truncated:
        raise TruncatedMediaError(
            f"{path.name} is incomplete: the file ends before its data does "
            "(an upload or copy was cut short)"
        )
    try:
        probed = _ffprobe(path)
    except _ProbeFailed as exc:
        detail = str(exc)
        if truncated is False:  # a well-formed MP4 box layout that FFmpeg still cannot read
            raise TruncatedMediaError(
                f"{path.name} is damaged and cannot be read", detail=detail
            ) from exc
        raise NotMediaError(
            f"{path.name} is not a video file we can read; send {SUPPORTED_CONTAINERS}",
            detail=detail,
        ) from exc
    info = _check(path.name, probed, limits)
    if not _has_packet(path, int(_video_stream(probed["streams"])["index"]), info.container):
        raise NoMediaDataError(
            f"{path.name} holds no video data, only its index (an export or copy that did not "
            "finish); export the video again and upload the complete file"
        )
    return info


def _check(name: str, probed: dict, limits: MediaLimits) -> MediaInfo:
    fmt = probed.get("format", {})
    container = str(fmt.get("format_name", "")).split(",")[0]
    if container not in ALLOWED_DEMUXERS:  # the whitelist already refused it; never trust one check
        raise UnsupportedContainerError(
            f"{name} is a {container or 'unknown'} file; send {SUPPORTED_CONTAINERS}"
        )
    streams = probed.get("streams", [])
    video = _video_stream(streams)
    audio_streams = [s for s in streams if s.get("codec_type") == "audio"]
    audio = audio_streams[0] if audio_streams else None
    duration = _duration(probed, video)
    if duration <= 0:
        raise ZeroDurationError(f"{name} has zero duration: there is nothing to analyse")
    if video is None:
        raise NoVideoStreamError(f"{name} has no video stream (audio-only or data file)")
    if duration > limits.max_duration_s:
        raise TooLongError(
            f"{name} lasts {duration:.0f} s; the limit is {limits.max_duration_s:.0f} s"
        )
    width, height = _display_size(video)
    long_limit = max(limits.max_width, limits.max_height)
    short_limit = min(limits.max_width, limits.max_height)
    if max(width, height) > long_limit or min(width, height) > short_limit:
        raise ResolutionTooLargeError(
            f"{name} is {width}x{height}; the limit is {limits.max_width}x{limits.max_height}"
        )
    if width <= 0 or height <= 0:
        raise NotMediaError(f"{name} has a video stream without a picture size")
    return MediaInfo(
        duration=duration,
        width=width,
        height=height,
        fps=_fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate")),
        has_audio=audio is not None,
        video_codec=str(video.get("codec_name", "unknown")),
        audio_codec=str(audio.get("codec_name", "unknown")) if audio else None,
        container=container,
        audio_streams=len(audio_streams),
        video_duration=_seconds(video),
        audio_duration=_seconds(audio),
    )


# --- Audio ---


def load_audio(
    path: str | Path,
    sample_rate: int = 16_000,
    *,
    max_seconds: float | None = None,
    container: str | None = None,
) -> np.ndarray:
    """The audio track as float32 mono at `sample_rate`, decoded once per video (only the first
    `max_seconds` if given: a file can never decode to more than its bound, whatever it claims).

    FFmpeg resamples and downmixes; video is not decoded (`-vn`). 30 min at 16 kHz is ~115 MB.
    `container` forces the demuxer `probe` found. Of several audio streams, the first is used.
    """
    path = Path(path)
    options = {"t": f"{max_seconds:.3f}"} if max_seconds else {}
    # The first audio stream, the one `probe` reports (FFmpeg's own pick may be another).
    node = _safe_input(path, container, **options)["a:0"].output(
        "pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, vn=None
    )
    out = _run_ffmpeg(node, path, decode_timeout_s(max_seconds or 1800.0), "audio")
    return np.frombuffer(out, dtype=np.float32).copy()


# How much longer than its probed duration a file's audio may decode before it counts as a lie
# (container durations are approximate; concatenated streams can hide minutes behind seconds).
DURATION_SLACK_S = 2.0
DURATION_SLACK_RATIO = 0.05


def decode_bound_s(info: MediaInfo) -> float:
    """The most audio decoded for a file probed as `info`: its duration plus slack."""
    return info.duration + max(DURATION_SLACK_S, DURATION_SLACK_RATIO * info.duration)


def load_checked_audio(path: str | Path, info: MediaInfo, sample_rate: int) -> np.ndarray:
    """`load_audio` bounded by the probed (and charged) duration: memory never exceeds what the
    upload check allowed, and audio running past the bound is refused as a lying duration."""
    bound = decode_bound_s(info)
    # One second past the bound is enough to tell "longer than declared" without decoding it all.
    audio = load_audio(path, sample_rate, max_seconds=bound + 1.0, container=info.container)
    if len(audio) == 0:  # a declared audio track without data is a broken file, not silence
        raise NoMediaDataError(
            f"{Path(path).name} declares an audio track but holds no audio data; export the "
            "video again and upload the complete file"
        )
    if len(audio) > bound * sample_rate:
        raise DurationMismatchError(
            f"{Path(path).name} declares {info.duration:.1f} s but its audio runs longer "
            f"(more than {bound:.1f} s); re-export the video as one file and upload it again"
        )
    return audio


# log_mel's value for silence and padding: the dynamic range kept below the utterance's peak.
MEL_FLOOR_DB = -80.0


@functools.lru_cache(maxsize=4)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)


def log_mel(
    audio: np.ndarray, start_s: float, end_s: float, preprocess: PreprocessConfig
) -> np.ndarray:
    """Log-mel spectrogram of `audio[start_s:end_s]`, shape (n_mels, mel_steps), float32.

    librosa's mel spectrogram at `preprocess.sample_rate` (16 kHz) with n_fft=1024 (64 ms Hann
    window) and hop_length=512 (32 ms), power 2, 64 mel bands (Slaney); then power_to_db
    relative to the utterance's peak (0 dB is its loudest bin, the floor -80 dB: loudness-
    independent across recordings). Padded with the -80 dB floor (silence) or cropped to 300
    steps = the first 9.6 s.

    Same numbers as `librosa.feature.melspectrogram`, with the filter bank cached and the
    product kept off the BLAS thread pool (librosa's path runs ~10x slower on a busy machine).
    """
    import librosa

    sr = preprocess.sample_rate
    steps = preprocess.mel_steps
    first = max(0, int(round(start_s * sr)))
    # Only the samples that fit into `steps` frames: a long utterance costs no more than 9.6 s.
    last = min(len(audio), int(round(end_s * sr)), first + (steps - 1) * preprocess.hop_length)
    out = np.full((preprocess.n_mels, steps), MEL_FLOOR_DB, dtype=np.float32)
    segment = audio[first:last]
    if segment.size == 0 or not np.any(segment):
        return out
    spectrum = librosa.stft(
        segment, n_fft=preprocess.n_fft, hop_length=preprocess.hop_length, pad_mode="constant"
    )
    power = np.abs(spectrum) ** 2
    # einsum without `optimize` is numpy's own loop: a multi-threaded BLAS call for a matrix
    # this small costs ~20x more on a busy 2-core machine (threads spin waiting for each other).
    mel = np.einsum("mf,ft->mt", _mel_basis(sr, preprocess.n_fft, preprocess.n_mels), power)
    db = librosa.power_to_db(mel, ref=np.max, top_db=-MEL_FLOOR_DB)
    width = min(steps, db.shape[1])
    out[:, :width] = db[:, :width]
    return out


# --- Video ---


def decode_fps(info: MediaInfo, num_frames: int) -> float:
    """Rate of the constant-rate stream sample times are matched against: the source rate, at
    most 2 x num_frames (num_frames distinct frames even across a 0.5 s window; utterances are
    merged to >= 1 s). Higher rates only cost scaling work and pipe bandwidth."""
    return min(info.fps or 25.0, 2.0 * num_frames)


def sample_times(start_s: float, end_s: float, num_frames: int) -> np.ndarray:
    """`num_frames` times evenly spread across [start_s, end_s): the centres of equal slices."""
    span = max(end_s - start_s, 0.0)
    return start_s + (np.arange(num_frames) + 0.5) * span / num_frames


class _StderrDrain(threading.Thread):
    """Reads FFmpeg's stderr while we read stdout, so a chatty FFmpeg can never block on a full
    pipe; keeps the tail for error messages."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.tail = b""

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read(4096), b""):
            self.tail = (self.tail + chunk)[-4096:]


def iter_frames_at(
    path: str | Path,
    info: MediaInfo,
    times: np.ndarray,
    *,
    fps: float,
    width: int,
    height: int,
    crop: bool = False,
    skip_noref: bool = False,
    repeat_last: bool = True,
    progress: Callable[[float], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices into `times`, uint8 RGB frame (height, width, 3)) for every decoded frame that is
    the nearest to one or more of `times` (seconds), in time order, from ONE FFmpeg decode.

    FFmpeg emits a constant `fps` stream, so frame k shows ~time t0 + k/fps, scaled to
    width x height (`crop`: the short side scaled and the rest centre-cropped, no distortion);
    only the frames wanted are kept, so memory never holds the video. `skip_noref` skips
    decoding non-reference frames (~1/3 less work on H.264 with B-frames; a sample may show a
    neighbour tens of milliseconds off). Times past the last decodable frame come last, with
    that frame (`repeat_last`; otherwise they are never yielded: the picture does not reach
    them). The decode is killed past `decode_timeout_s`. `progress(fraction)` follows the
    sample times.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return
    # Seek to just before the first time; decode no further than the last.
    t0 = max(0.0, float(times.min()) - 1.0)
    span = float(times.max()) - t0 + 1.0
    # FFmpeg's fps filter rounds: output frame k is the source frame nearest time t0 + k/fps.
    wanted = np.rint((times - t0) * fps).astype(np.int64).clip(min=0)
    order = np.argsort(wanted, kind="stable")
    sorted_wanted = wanted[order]
    options = {"skip_frame": "noref"} if skip_noref else {}
    video = _safe_input(path, info.container or None, ss=f"{t0:.3f}", t=f"{span:.3f}", **options)
    video = video.video.filter("fps", fps=fps)
    if crop:
        video = video.filter(
            "scale", width, height, force_original_aspect_ratio="increase", flags="area"
        ).filter("crop", width, height)
    else:
        video = video.filter("scale", width, height, flags="area")
    stream = video.output("pipe:", format="rawvideo", pix_fmt="rgb24").global_args(
        "-nostdin", "-v", "error", "-an", "-sn", "-dn"
    )
    process = stream.run_async(pipe_stdout=True, pipe_stderr=True)
    drain = _StderrDrain(process.stderr)
    drain.start()
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        process.kill()

    # A watchdog, since the pipe is read frame by frame: kill FFmpeg if it outlives its bound.
    watchdog = threading.Timer(decode_timeout_s(span), _kill)
    watchdog.start()
    frame_bytes = width * height * 3
    next_needed, frame_index, frame = 0, -1, None
    try:
        while next_needed < len(sorted_wanted):
            data = process.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            frame_index += 1
            frame = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)
            first = next_needed
            while next_needed < len(sorted_wanted) and sorted_wanted[next_needed] <= frame_index:
                next_needed += 1
            if next_needed > first:
                yield order[first:next_needed], frame
                if progress is not None:
                    progress(next_needed / len(sorted_wanted))
    finally:
        process.stdout.close()
        returncode = process.wait()
        watchdog.cancel()
        drain.join(timeout=5)
    if timed_out.is_set():
        raise MediaTimeoutError(
            f"{Path(path).name}: decoding the video took longer than {decode_timeout_s(span):.0f} s"
        )
    if frame is None or (next_needed < len(sorted_wanted) and returncode != 0):
        detail = drain.tail.decode(errors="replace").strip() or f"ffmpeg exit code {returncode}"
        raise DecodeFailedError(
            f"{Path(path).name}: the video could not be decoded (the file is damaged or uses a "
            "codec we do not read)",
            detail=detail,
        )
    if next_needed < len(sorted_wanted) and repeat_last:  # a video track shorter than the audio
        yield order[next_needed:], frame


def decode_window_frames(
    path: str | Path,
    windows: Sequence[tuple[float, float]],
    preprocess: PreprocessConfig,
    info: MediaInfo,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """uint8 RGB frames (N, T, S, S, 3) for each (start, end) window, T = num_frames and
    S = frame_size, from ONE decode of the video (`iter_frames_at`, centre-cropped squares):
    memory is N*T*S*S*3 bytes (~37 KB a frame at 112)."""
    size, count = preprocess.frame_size, preprocess.num_frames
    out = np.zeros((len(windows), count, size, size, 3), dtype=np.uint8)
    if not windows:
        return out
    times = np.stack([sample_times(s, e, count) for s, e in windows]).reshape(-1)  # N*T
    flat_out = out.reshape(-1, size, size, 3)
    fps = decode_fps(info, count)
    frames = iter_frames_at(
        path, info, times, fps=fps, width=size, height=size, crop=True, progress=progress
    )
    for indices, frame in frames:
        flat_out[indices] = frame
    return out


def frames_to_tensor(frames: np.ndarray, preprocess: PreprocessConfig) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) -> float32 (..., 3, T, H, W) in [0,1], Kinetics-normalised."""
    tensor = torch.from_numpy(frames).to(torch.float32).div_(255.0)
    tensor = tensor.movedim(-1, -4)  # channels before time
    shape = (3,) + (1,) * 3
    mean = torch.tensor(preprocess.video_mean).view(shape)
    std = torch.tensor(preprocess.video_std).view(shape)
    return tensor.sub_(mean).div_(std)


def sample_frames(
    path: str | Path,
    windows: Sequence[tuple[float, float]],
    preprocess: PreprocessConfig,
    info: MediaInfo,
) -> torch.Tensor:
    """(N, 3, T, H, W) float tensor: `num_frames` RGB frames evenly spread across each window,
    `frame_size` square, Kinetics-normalised. One decode of the video for all windows."""
    return frames_to_tensor(decode_window_frames(path, windows, preprocess, info), preprocess)


def clip_tensors(
    path: str | Path, preprocess: PreprocessConfig
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """A whole short clip (one utterance, MELD-style) as model input:
    mel (1, n_mels, mel_steps) or None when the clip has no audio, and frames (3, T, H, W)."""
    info = probe(path)
    mel = None
    if info.has_audio:
        audio = load_checked_audio(path, info, preprocess.sample_rate)
        mel = torch.from_numpy(log_mel(audio, 0.0, info.duration, preprocess)).unsqueeze(0)
    frames = sample_frames(path, [(0.0, info.duration)], preprocess, info)[0]
    return mel, frames


def frame_size(info: MediaInfo, max_side: int) -> tuple[int, int]:
    """(width, height) of the displayed picture with its long side scaled down to `max_side`
    (never up): the aspect ratio is kept, so faces are not squashed."""
    scale = min(1.0, max_side / max(info.width, info.height))
    return max(1, round(info.width * scale)), max(1, round(info.height * scale))


def decode_frames_at(
    path: str | Path,
    info: MediaInfo,
    times: Sequence[float],
    max_side: int,
    *,
    rate: float = 8.0,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """uint8 RGB frames (N, H, W, 3), the picture as displayed (FFmpeg applies any rotation) at
    `frame_size(info, max_side)`, showing each of `times` (seconds), from ONE decode at a
    constant `rate` (at most the source rate), non-reference frames skipped. For a few frames
    (tests, crops); a long video is read frame by frame with `iter_frames_at`."""
    width, height = frame_size(info, max_side)
    out = np.zeros((len(times), height, width, 3), dtype=np.uint8)
    fps = min(info.fps or 25.0, rate)
    frames = iter_frames_at(
        path,
        info,
        np.asarray(times, dtype=np.float64),
        fps=fps,
        width=width,
        height=height,
        skip_noref=True,
        progress=progress,
    )
    for indices, frame in frames:
        out[indices] = frame
    return out
