"""`manage.py analyze VIDEO`: analyse one video from the command line (a thin shell over
mlcore.inference)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from mlcore.checkpoint import CheckpointError
from mlcore.inference import AnalysisResult, get_analyzer, overall_progress
from mlcore.media import MediaError
from mlcore.transcribe import WhisperModelError


class _RawStream:
    """The command's stderr for tqdm: Django's OutputWrapper would end every write with a
    newline, breaking the bar's carriage-return redraws."""

    def __init__(self, wrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return self.wrapper.isatty()


class StageBar:
    """One tqdm bar over the whole run, fed (stage, fraction of that stage) callbacks."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def __call__(self, stage: str, fraction: float) -> None:
        done = overall_progress(stage, fraction)
        self.bar.set_description(stage)
        self.bar.update(round(100 * done, 1) - self.bar.n)


class Command(BaseCommand):
    help = "Transcribe a video and classify each utterance's emotion and sentiment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("video", help="path to a video file")
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")
        parser.add_argument(
            "--checkpoint", default="", help="model checkpoint (default: MODEL_CHECKPOINT)"
        )
        parser.add_argument(
            "--whisper-model",
            default="",
            help="Whisper model directory or cached name (default: WHISPER_MODEL)",
        )
        parser.add_argument(
            "--whisper-device",
            choices=["cpu", "cuda", "auto"],
            default="",
            help="where Whisper runs (default: WHISPER_DEVICE, else cpu)",
        )
        parser.add_argument(
            "--no-face", action="store_true", help="skip the face channel (default: on)"
        )
        parser.add_argument(
            "--no-voice", action="store_true", help="skip the voice channel (default: on)"
        )
        parser.add_argument(
            "--allow-untrained",
            action="store_true",
            help="accept an untrained checkpoint (tests and benchmarks: predictions are random)",
        )

    def handle(self, *args, **options) -> None:
        checkpoint = options["checkpoint"] or settings.MODEL_CHECKPOINT or None
        whisper_model = options["whisper_model"] or settings.WHISPER_MODEL or None
        whisper_device = options["whisper_device"] or getattr(settings, "WHISPER_DEVICE", "cpu")
        try:
            analyzer = get_analyzer(
                checkpoint,
                whisper_model,
                options["allow_untrained"],
                whisper_device or "cpu",
                face=settings.ANALYSIS_FACE_CHANNEL and not options["no_face"],
                face_model=settings.ANALYSIS_FACE_MODEL,
                voice=settings.ANALYSIS_VOICE_CHANNEL and not options["no_voice"],
                voice_emotion=settings.ANALYSIS_VOICE_EMOTION,
                speakers=settings.ANALYSIS_SPEAKERS,
                face_weight=settings.FUSION_FACE_WEIGHT,
                text_weight=settings.FUSION_TEXT_WEIGHT,
                voice_weight=settings.FUSION_VOICE_WEIGHT,
                language_model=settings.WHISPER_LANGUAGE_MODEL or None,
                translate_speech=settings.ANALYSIS_TRANSLATE,
            )
            # The bar goes to stderr (only a terminal) so --json output stays parseable.
            stream = _RawStream(self.stderr)
            with tqdm(total=100, unit="%", file=stream, leave=False, disable=None) as bar:
                result = analyzer.analyze(options["video"], progress=StageBar(bar))
        except MediaError as exc:
            raise CommandError(f"{exc.code}: {exc}") from exc
        except (CheckpointError, WhisperModelError) as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(
                json.dumps(result.to_dict() | {"channels_used": result.channels_used}, indent=2)
            )
        else:
            self.stdout.write(format_result(result))


def format_result(result: AnalysisResult) -> str:
    lines = [
        f"model {result.model_version}, {result.duration:.1f} s, "
        f"channels: {', '.join(result.channels_used) or 'none'}"
    ]
    for name, channel in result.channels.items():
        what = channel.get("model") or channel.get("method") or channel.get("rule") or ""
        if channel.get("emotion_model"):
            what = f"{channel['emotion_model']} + {what}"
        note = f" ({channel['note']})" if channel.get("note") else ""
        lines.append(f"  {name}: {'used' if channel.get('used') else 'not used'} - {what}{note}")
    if result.language:
        lines.append(f"language: {result.language} ({result.language_probability:.0%})")
    lines += [f"warning: {w}" for w in result.warnings]
    for u in result.utterances:
        face = u.face or {}
        extra = []
        if face.get("emotion"):
            extra.append(f"face {face['emotion']} ({face['coverage']:.0%} of frames)")
        voice = u.voice or {}
        if voice.get("emotion"):
            extra.append(f"voice {voice['emotion']}, arousal {voice['arousal']:.2f}")
        elif voice.get("emotion_note"):
            extra.append(voice["emotion_note"])
        if voice.get("relative_intensity") is not None:
            extra.append(f"voice intensity {voice['relative_intensity']:+.2f}")
        if u.combined and u.combined["channels"] != ["text"]:
            extra.append(f"combined {u.combined['emotion']}/{u.combined['sentiment']}")
        if u.translated:
            extra.append(f"{u.language}: {u.original_text}")
        suffix = f"  [{'; '.join(extra)}]" if extra else ""
        labels = f"{u.emotion or '-':>8} {u.sentiment or '-':>8}"
        who = f"Speaker {u.speaker}: " if u.speaker else ""
        lines.append(f"[{u.start:7.2f}-{u.end:7.2f}] {labels}  {who}{u.text}{suffix}")
    summary = result.summary
    if summary["speech_detected"]:
        lines.append(
            f"overall (words): {summary['dominant_emotion']}, {summary['dominant_sentiment']} "
            f"({summary['utterance_count']} utterances)"
        )
    else:
        lines.append(summary["message"])
    voice = summary.get("voice") or {}
    if voice.get("dominant_emotion"):
        lines.append(
            f"voice: mostly {voice['dominant_emotion']}, mean arousal {voice['mean_arousal']:.2f} "
            f"({voice['read_utterance_count']} utterances read)"
        )
    if summary.get("combined"):
        lines.append(
            f"overall (combined): {summary['combined']['dominant_emotion']}, "
            f"{summary['combined']['dominant_sentiment']}"
        )
    for speaker in result.speakers:
        lines.append(format_speaker(speaker))
    face = summary.get("face")
    if face:
        lines.append(
            f"face: {face['frames_with_face']} of {face['frames']} sampled frames with a face"
            + (f", mostly {face['dominant_emotion']}" if face["dominant_emotion"] else "")
        )
    return "\n".join(lines)


def format_speaker(speaker: dict) -> str:
    """One line per speaker: talk time and what each channel read most."""
    read = [
        f"{channel} {speaker[channel]['emotion']}"
        for channel in ("text", "voice", "face", "combined")
        if speaker.get(channel) and speaker[channel].get("emotion")
    ]
    face = f", face track {speaker['face_person']}" if speaker["face_person"] is not None else ""
    return (
        f"{speaker['name']}: {speaker['talk_s']:.1f} s ({speaker['share']:.0%} of the talk), "
        f"{speaker['utterance_count']} utterances{face}; " + (", ".join(read) or "no reading")
    )
