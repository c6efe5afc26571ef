"""``dabai-kiosk say TEXT --out FILE.wav``: synthesize Mandarin text to a WAV file.

The main CLI wires it in with :func:`add_say_arguments` and :func:`run_say`; it also runs alone:
``python -m kiosk.cli_speech 请您佩戴口罩 --out mask.wav --pinyin``.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from .speech.tts import EspeakVoice, TTSError, VoiceUnavailable


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
) -> int:
    """Synthesize ``text`` into the WAV file ``out``. Returns 0, 2 when the voice is not
    installed, 1 when synthesis fails; errors are printed to stderr."""
    if backend not in ("auto", "espeak", "espeak-ng"):
        print(f"error: unknown TTS backend {backend!r} (known: espeak-ng)", file=sys.stderr)
        return 2
    try:
        tts = EspeakVoice(binary=espeak, voice=voice, speed=speed, pitch=pitch,
                          amplitude=amplitude, word_gap=word_gap)
    except VoiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if show_pinyin:
        print(tts.to_pinyin(text))
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


def add_say_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the ``say`` subcommand."""
    parser.add_argument("text", help="Mandarin text, e.g. 请您佩戴口罩 (digits, 3-201, Latin letters are fine)")
    parser.add_argument("--out", "-o", required=True, help="WAV file to write")
    parser.add_argument("--backend", default="espeak-ng", help="TTS backend (default: espeak-ng)")
    parser.add_argument("--espeak", default="espeak-ng", help="espeak-ng program (name or path)")
    parser.add_argument("--voice", default="cmn-latn-pinyin", help="espeak-ng voice (default: cmn-latn-pinyin)")
    parser.add_argument("--speed", type=int, default=165, help="syllables per minute, 80-450 (default 165)")
    parser.add_argument("--pitch", type=int, default=50, help="0-99 (default 50)")
    parser.add_argument("--amplitude", type=int, default=100, help="0-200 (default 100)")
    parser.add_argument("--word-gap", type=int, default=0, help="extra pause between syllables, x10 ms")
    parser.add_argument("--pinyin", action="store_true", help="also print the pinyin given to espeak-ng")


def run_say(args: argparse.Namespace) -> int:
    """Run ``say`` from parsed arguments."""
    return cmd_say(args.text, args.out, backend=args.backend, espeak=args.espeak, voice=args.voice,
                   speed=args.speed, pitch=args.pitch, amplitude=args.amplitude,
                   word_gap=args.word_gap, show_pinyin=args.pinyin)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="dabai-kiosk say", description=__doc__.splitlines()[0])
    add_say_arguments(parser)
    return run_say(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
