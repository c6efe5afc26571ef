"""``dabai-kiosk listen WAV… [--json]``: what the speech path hears in recordings.

Each file goes through the microphone's own code (WAV source → resampling to 16 kHz → Silero
VAD → utterances → recognizer → intent) as fast as the CPU allows, and gives one line:
``{"wav", "intent", "text", "segments": [[start_s, end_s], …], "ms", …}``. Without a recognizer
the VAD still runs: ``"text": null`` and a ``"note"`` saying so. A file that cannot be used gives
an ``"error"`` line; the others are still processed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from kiosk.audio.sources import WavFileSource
from kiosk.audio.vad import VadModelMissing, create_vad, describe_vad
from kiosk.audio.wavfile import AudioFileError
from kiosk.cli.common import Add, home_of
from kiosk.speech.intent import IntentMatcher, parse_phrases
from kiosk.speech.listen import SpeechPipeline, listen_through, matcher_from_config, segmenter_settings
from kiosk.speech.recognizers import Recognizer, RecognizerUnavailable, create_recognizer


def listen_file(path: str, vad: Any, recognizer: Optional[Recognizer], matcher: IntentMatcher,
                settings: Any = None, early_intent: bool = True) -> Dict[str, Any]:
    """One WAV file through the speech path; a dict ready for JSON (never raises for bad audio)."""
    out: Dict[str, Any] = {"wav": path, "intent": None, "text": None, "segments": [], "ms": 0.0}
    t0 = time.perf_counter()
    try:
        source = WavFileSource(path)
    except AudioFileError as exc:
        out["error"] = str(exc)
        out["ms"] = round((time.perf_counter() - t0) * 1000.0, 1)
        return out
    vad.reset()
    pipeline = SpeechPipeline(vad, recognizer, matcher, settings, early_intent=early_intent)
    results = listen_through(pipeline, source.chunks())
    ms = (time.perf_counter() - t0) * 1000.0
    out["segments"] = [[r.start_s, r.end_s] for r in results]
    if recognizer is not None:
        texts = [r.text for r in results if r.text]
        hit = next((r for r in results if r.intent), None)
        out["intent"] = hit.intent if hit else None
        out["text"] = hit.text if hit else (" ".join(texts) if texts else "")
        out["keyword"] = hit.keyword if hit else None
        out["recognizer"] = recognizer.name
    out["ms"] = round(ms, 1)
    out["duration_s"] = round(source.duration, 3)
    out["rate"] = source.device_rate
    out["channels"] = source.channels
    out["vad"] = describe_vad(vad)
    out["vad_rtf"] = round(pipeline.stats.vad_rtf, 4)
    out["utterances"] = [r.as_dict() for r in results]
    peak = float(np.max(np.abs(source.frames))) if source.frames.size else 0.0
    clipped = float(np.mean(np.abs(source.frames) >= 0.999))
    if peak < 1e-4:
        out["warning"] = "silent recording (peak {:.1e})".format(peak)
    elif clipped > 0.001:
        out["warning"] = "clipped recording: {:.1%} of samples at full scale".format(clipped)
    if not results and "warning" not in out:
        out["note_vad"] = "no speech found"
    return out


def listen_files(paths: List[str], as_json: bool, listen: Any, models_dir: Path, backend: Optional[str] = None,
               model: Optional[str] = None, vad_kind: Optional[str] = None) -> int:
    """Run ``listen`` on ``paths``; returns 0 when every file could be read, 1 otherwise, 2 when
    the VAD cannot be built."""
    try:
        vad = create_vad(vad_kind or listen.vad, listen.vad_model, fallback=False)
    except (VadModelMissing, ValueError) as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    note = None
    recognizer: Optional[Recognizer] = None
    keywords = parse_phrases(listen.enter_phrases) + parse_phrases(listen.help_phrases)
    try:
        recognizer = create_recognizer(backend or listen.recognizer, model if model is not None else listen.model,
                                       models_dir, keywords, threads=listen.threads)
    except RecognizerUnavailable as exc:
        note = "{}; VAD segments only".format(exc)
        if not as_json:
            print("note: {}".format(note), file=sys.stderr)
    matcher = matcher_from_config(listen)
    settings = segmenter_settings(listen)
    failed = 0
    for path in paths:
        res = listen_file(path, vad, recognizer, matcher, settings, listen.early_intent)
        if note and "error" not in res:
            res["note"] = note
        failed += "error" in res
        if as_json:
            print(json.dumps(res, ensure_ascii=False), flush=True)
        elif "error" in res:
            print("{}: error: {}".format(path, res["error"]), flush=True)
        else:
            segs = " ".join("{:.2f}-{:.2f}s".format(a, b) for a, b in res["segments"]) or "no speech"
            extra = "  ({})".format(res["warning"]) if "warning" in res else ""
            print("{}: intent={} text={} segments: {}  [{:.0f} ms]{}".format(
                path, res["intent"], res["text"] if res["text"] is not None else "-", segs, res["ms"], extra), flush=True)
    if recognizer is not None:
        recognizer.close()
    return 1 if failed else 0


def cmd_listen(args: argparse.Namespace) -> int:
    from kiosk.config import load_config

    home = home_of(args)
    config = load_config(home.config)
    return listen_files(args.wavs, args.json, config.listen, home.models, backend=args.recognizer, model=args.model,
                        vad_kind=args.vad)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("listen", cmd_listen, "what the speech path hears in WAV files: segments, transcript, intent")
    p.add_argument("wavs", nargs="+", metavar="WAV", help="recordings (any rate, channels, 8-32-bit or float)")
    p.add_argument("--json", action="store_true", help="one JSON line per file")
    p.add_argument("--recognizer", choices=("auto", "sherpa-kws", "sherpa-asr", "nemo", "dabai-kws", "none"),
                   help="recognizer backend (default: listen.recognizer)")
    p.add_argument("--model", help="recognizer model folder or .nemo file (default: listen.model)")
    p.add_argument("--vad", choices=("silero", "energy"), help="voice activity detector (default: listen.vad)")
