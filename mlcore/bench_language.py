"""Benchmark of the transcription and language choices, printed as figures.

    python -m mlcore.bench_language [--skip-english] [--skip-languages] [--languages de es]

1. English: word error rate and real-time factor of Whisper tiny.en (the English model) and base
   (the multilingual one) on real read speech with reference transcripts: Debian's
   `pocketsphinx-testdata` (5 LibriVox clips, 5 "cards" clips). Also the cost of language
   identification per 30 s window of speech, the price English videos pay for it.
2. Other languages: espeak-ng speaks 4 obviously positive and 4 obviously negative sentences per
   language (the same meaning in each language). Each sentence becomes its own video and goes
   through `Analyzer.analyze` exactly as the product runs it (shipped checkpoint, face and voice
   off): language identification accuracy, how many were read through translation, and whether
   the language model's sentiment matches the sentence's polarity. English through the same path
   is the reference. Each language's 4 sentences also make one video, and two German sentences
   then two Spanish ones a longer one (~16 s): their per-stage time (wall and CPU seconds: process
   time, stable when other work shares the machine) and real-time factor (RTF: analysis seconds
   over video seconds), and each one-sentence video's RTF.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")

# (positive, positive, negative, negative) per espeak-ng voice; the same meaning in each language.
SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "I am so happy today, this is wonderful news.",
        "Thank you so much, I really love this gift.",
        "I am really angry, this was a terrible day.",
        "I hate this, everything went wrong and I feel awful.",
    ),
    "de": (
        "Ich bin heute sehr glücklich, das sind wunderbare Neuigkeiten.",
        "Vielen Dank, ich liebe dieses Geschenk wirklich.",
        "Ich bin wirklich wütend, das war ein furchtbarer Tag.",
        "Ich hasse das, alles ist schiefgegangen und ich fühle mich schrecklich.",
    ),
    "fr": (
        "Je suis très heureux aujourd'hui, c'est une merveilleuse nouvelle.",
        "Merci beaucoup, j'adore vraiment ce cadeau.",
        "Je suis vraiment en colère, c'était une journée horrible.",
        "Je déteste ça, tout s'est mal passé et je me sens très mal.",
    ),
    "es": (
        "Estoy muy feliz hoy, son noticias maravillosas.",
        "Muchas gracias, me encanta este regalo.",
        "Estoy muy enfadado, fue un día terrible.",
        "Odio esto, todo salió mal y me siento fatal.",
    ),
    "it": (
        "Sono molto felice oggi, è una notizia meravigliosa.",
        "Grazie mille, adoro davvero questo regalo.",
        "Sono davvero arrabbiato, è stata una giornata terribile.",
        "Odio tutto questo, è andato tutto storto e mi sento malissimo.",
    ),
    "pt": (
        "Estou muito feliz hoje, são notícias maravilhosas.",
        "Muito obrigado, eu adoro este presente.",
        "Estou muito zangado, foi um dia terrível.",
        "Odeio isto, correu tudo mal e sinto-me péssimo.",
    ),
    "nl": (
        "Ik ben vandaag heel blij, dit is geweldig nieuws.",
        "Heel erg bedankt, ik ben echt dol op dit cadeau.",
        "Ik ben echt boos, het was een vreselijke dag.",
        "Ik haat dit, alles ging mis en ik voel me ellendig.",
    ),
}
POLARITY = ("positive", "positive", "negative", "negative")


def reference_clips() -> list[tuple[Path, str]]:
    """(wav, reference transcript) for the pocketsphinx-testdata clips with transcripts."""
    clips = []
    for folder, listing in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (POCKETSPHINX / folder / listing).read_text().splitlines():
            match = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
            if match:
                clips.append((POCKETSPHINX / folder / f"{match[2]}.wav", match[1].strip()))
    return clips


def normalize_words(text: str) -> str:
    """Lower case, no punctuation, "Mr." spelled as the references spell it."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"\bmr\b\.?", "mister", text)
    return " ".join(re.sub(r"[^a-z' ]", " ", text).split())


def english_figures(threads: int) -> dict:
    import jiwer
    from faster_whisper.audio import decode_audio

    from mlcore import language as lang
    from mlcore.transcribe import load_whisper, transcribe

    clips = [(decode_audio(str(path)), ref) for path, ref in reference_clips()]
    seconds = sum(len(audio) for audio, _ in clips) / lang.SAMPLE_RATE
    out: dict = {"clips": len(clips), "audio_s": round(seconds, 1), "models": {}}
    for name in ("tiny.en", "base"):
        model = load_whisper(name, cpu_threads=threads)
        transcribe(clips[0][0], model, language="en")  # warm-up
        started = time.perf_counter()
        hypotheses = [
            normalize_words(" ".join(s.text for s in transcribe(audio, model, language="en")))
            for audio, _ in clips
        ]
        elapsed = time.perf_counter() - started
        references = [normalize_words(ref) for _, ref in clips]
        librivox = [i for i, (path, _) in enumerate(reference_clips()) if "librivox" in str(path)]
        out["models"][name] = {
            "wer": round(jiwer.wer(references, hypotheses), 4),
            "wer_librivox": round(
                jiwer.wer([references[i] for i in librivox], [hypotheses[i] for i in librivox]), 4
            ),
            "rtf": round(elapsed / seconds, 4),
        }
    base = load_whisper("base", cpu_threads=threads)
    started = time.perf_counter()
    spans = [span for audio, _ in clips for span in lang.identify_languages(audio, base)]
    elapsed = time.perf_counter() - started
    out["language_id"] = {
        "windows": len(spans),
        "s_per_window": round(elapsed / max(len(spans), 1), 3),
        "english": sum(1 for s in spans if s.language == "en"),
        "min_probability": round(min(s.probability for s in spans), 3) if spans else None,
    }
    return out


STAGES = ("language", "transcribe", "translate")
# The longer video: two German sentences, then two Spanish ones (~16 s).
MIXED = ("de", "de", "es", "es")


def timed_analysis(analyzer, clip: Path):
    """`analyzer.analyze(clip)`, and the CPU seconds (process time, every thread) per stage: from
    a stage's first progress report (its start) to its last (its end)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}

    def progress(stage: str, _fraction: float) -> None:
        now = time.process_time()
        first.setdefault(stage, now)
        last[stage] = now

    cpu_started = time.process_time()
    result = analyzer.analyze(clip, progress=progress)
    cpu = {stage: last[stage] - first[stage] for stage in first}
    cpu["total"] = time.process_time() - cpu_started
    return result, cpu


def stage_figures(result, cpu: dict[str, float]) -> dict:
    """Wall and CPU seconds per stage, and each one's real-time factor (over the video's length)."""
    seconds = max(result.duration, 1e-3)
    return {
        "video_s": round(result.duration, 1),
        "rtf": round(result.timings["total"] / seconds, 3),
        "cpu_rtf": round(cpu["total"] / seconds, 3),
        "stage_s": {k: round(result.timings.get(k, 0.0), 2) for k in STAGES},
        "stage_cpu_s": {k: round(cpu.get(k, 0.0), 2) for k in STAGES},
        "stage_rtf": {k: round(result.timings.get(k, 0.0) / seconds, 3) for k in STAGES},
    }


def mixed_figures(analyzer, workdir: Path) -> dict:
    """Two German sentences, then two Spanish: the longer non-English clip."""
    from mlcore import testmedia

    sentences = [SENTENCES[v][i] for i, v in enumerate(MIXED)]
    clip = testmedia.make_talking_clip(workdir / "mixed.mp4", sentences, voices=MIXED)
    result, cpu = timed_analysis(analyzer, clip)
    return {
        **stage_figures(result, cpu),
        "languages": [u.language for u in result.utterances],
        "expected": list(MIXED),
        "text": " | ".join(u.text for u in result.utterances),
    }


def language_figures(workdir: Path, voices: list[str] | None = None) -> dict:
    from mlcore import testmedia
    from mlcore.inference import Analyzer

    analyzer = Analyzer(face=False, voice=False)
    out = {}
    for voice, sentences in SENTENCES.items():
        if voices and voice not in voices:
            continue
        rows = []
        for i, (sentence, polarity) in enumerate(zip(sentences, POLARITY, strict=True)):
            clip = testmedia.make_talking_clip(
                workdir / f"{voice}-{i}.mp4", [sentence], voice=voice
            )
            result = analyzer.analyze(clip)
            rtf = result.timings["total"] / max(result.duration, 1e-3)
            labelled = [u for u in result.utterances if u.sentiment_scores]
            polarity_score = (
                statistics.fmean(
                    u.sentiment_scores["positive"] - u.sentiment_scores["negative"]
                    for u in labelled
                )
                if labelled
                else None
            )
            rows.append(
                {
                    "language": result.language,
                    "probability": result.language_probability,
                    "translated": any(u.translated for u in result.utterances),
                    "labelled": bool(labelled),
                    "polarity_ok": polarity_score is not None
                    and (polarity_score > 0) == (polarity == "positive"),
                    "text": " | ".join(u.text for u in result.utterances),
                    "rtf": round(rtf, 3),
                }
            )
        whole, cpu = timed_analysis(
            analyzer,
            testmedia.make_talking_clip(workdir / f"{voice}-all.mp4", sentences, voice=voice),
        )
        out[voice] = {
            "sentences": len(rows),
            "lid_correct": sum(1 for r in rows if r["language"] == voice),
            "lid_mean_probability": round(
                statistics.fmean(r["probability"] or 0.0 for r in rows), 3
            ),
            "video_language": whole.language,
            "video_probability": whole.language_probability,
            "labelled": sum(1 for r in rows if r["labelled"]),
            "translated": sum(1 for r in rows if r["translated"]),
            "sentiment_kept": sum(1 for r in rows if r["polarity_ok"]),
            **stage_figures(whole, cpu),
            "rows": rows,
        }
    if not voices or set(MIXED) & set(voices):
        out["de+es"] = mixed_figures(analyzer, workdir)
    return out


def _stages(m: dict) -> str:
    parts = [
        f"{k} {m['stage_s'][k]} s / {m['stage_cpu_s'][k]} CPU s (RTF {m['stage_rtf'][k]:.3f})"
        for k in STAGES
    ]
    return "; ".join(parts)


def report(english: dict | None, languages: dict | None) -> str:
    lines = []
    if english:
        lines.append(
            f"English read speech: {english['clips']} clips, {english['audio_s']} s "
            "(pocketsphinx-testdata)"
        )
        for name, m in english["models"].items():
            lines.append(
                f"  whisper {name:8s} WER {m['wer']:.1%} (LibriVox {m['wer_librivox']:.1%})  "
                f"RTF {m['rtf']:.3f}"
            )
        lid = english["language_id"]
        lines.append(
            f"  language ID (base): {lid['english']}/{lid['windows']} windows English, "
            f"lowest p {lid['min_probability']}, {lid['s_per_window']} s per window"
        )
    if languages:
        lines.append(
            "Other languages (espeak-ng, 4 sentences each, one video per sentence, product path):"
        )
        lines.append("  lang  LID ok  mean p  whole-video  labelled  translated  sentiment kept")
        mixed = languages.pop("de+es", None)
        for voice, m in languages.items():
            lines.append(
                f"  {voice:4s}  {m['lid_correct']}/{m['sentences']}     "
                f"{m['lid_mean_probability']:.2f}"
                f"    {m['video_language']} {m['video_probability'] or 0:.2f}      "
                f"{m['labelled']}/{m['sentences']}       {m['translated']}/{m['sentences']}"
                f"         {m['sentiment_kept']}/{m['sentences']}"
            )
            lines.append(
                f"      whole video {m['video_s']} s: RTF {m['rtf']:.3f}, CPU RTF "
                f"{m['cpu_rtf']:.3f} (face and voice off); one-sentence videos: RTF "
                f"{statistics.fmean(r['rtf'] for r in m['rows']):.3f} mean, "
                f"{max(r['rtf'] for r in m['rows']):.3f} max"
            )
            lines.append(f"        {_stages(m)}")
            for row in m["rows"]:
                lines.append(
                    f"      [{row['language']} {row['probability'] or 0:.2f}, "
                    f"RTF {row['rtf']:.2f}] {row['text'][:80]}"
                )
        if mixed:
            pairs = zip(mixed["languages"], mixed["expected"], strict=False)
            right = sum(a == b for a, b in pairs)
            lines.append(
                f"  de then es, {mixed['video_s']} s: RTF {mixed['rtf']:.3f}, CPU RTF "
                f"{mixed['cpu_rtf']:.3f}; utterance languages {' '.join(mixed['languages'])} "
                f"({right}/{len(mixed['expected'])} as spoken)"
            )
            lines.append(f"        {_stages(mixed)}")
            lines.append(f"      {mixed['text'][:300]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-english", action="store_true")
    parser.add_argument("--skip-languages", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="Whisper CPU threads")
    parser.add_argument(
        "--languages", nargs="*", default=None, help="espeak-ng voices to run (default: all)"
    )
    args = parser.parse_args(argv)
    from mlcore.transcribe import default_cpu_threads

    threads = args.threads or default_cpu_threads()
    english = None if args.skip_english else english_figures(threads)
    languages = None
    if not args.skip_languages:
        with tempfile.TemporaryDirectory() as workdir:
            languages = language_figures(Path(workdir), args.languages)
    print(report(english, languages))
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
