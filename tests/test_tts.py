"""Speaking: pinyin conversion, espeak-ng voice, prompt cache, sinks and the speaker thread."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_espeak

from kiosk.speech import (
    PROMPTS,
    Audio,
    AudioDeviceUnavailable,
    EspeakVoice,
    NullSink,
    PromptCache,
    SounddeviceSink,
    Speaker,
    Voice,
    VoiceUnavailable,
    WavFileSink,
    greeting,
    resample,
)
from kiosk.speech.pinyin import int_to_hanzi, numbers_to_hanzi, to_pinyin

# ----------------------------------------------------------------------------------- pinyin

@pytest.mark.parametrize("text, expected", [
    ("请您佩戴口罩", "qing3 nin2 pei4 dai4 kou3 zhao4"),
    ("你好，我是大白。请出示通行二维码",
     "ni3 hao3, wo3 shi4 da4 bai2. qing3 chu1 shi4 tong1 xing2 er4 wei2 ma3"),
    ("请说：你好大白，请让我进入小区", "qing3 shuo1, ni3 hao3 da4 bai2, qing3 rang4 wo3 jin4 ru4 xiao3 qu1"),
    ("请正确佩戴口罩，遮住口鼻", "qing3 zheng4 que4 pei4 dai4 kou3 zhao4, zhe1 zhu4 kou3 bi2"),
    ("二维码无效", "er4 wei2 ma3 wu2 xiao4"),
    ("二维码已过期", "er4 wei2 ma3 yi3 guo4 qi1"),
    ("二维码尚未生效", "er4 wei2 ma3 shang4 wei4 sheng1 xiao4"),
    ("二维码已注销，请联系物业", "er4 wei2 ma3 yi3 zhu4 xiao1, qing3 lian2 xi4 wu4 ye4"),
    ("未登记住户，请联系物业", "wei4 deng1 ji4 zhu4 hu4, qing3 lian2 xi4 wu4 ye4"),
    ("住户已停用，请联系物业", "zhu4 hu4 yi3 ting2 yong4, qing3 lian2 xi4 wu4 ye4"),
    ("二维码不属于本小区", "er4 wei2 ma3 bu4 shu3 yu2 ben3 xiao3 qu1"),
    ("操作超时，请重新开始", "cao1 zuo4 chao1 shi2, qing3 chong2 xin1 kai1 shi3"),
    ("您好，张三，欢迎回家，二维码有效请您通过",
     "nin2 hao3, zhang1 san1, huan1 ying2 hui2 jia1, er4 wei2 ma3 you3 xiao4 qing3 nin2 tong1 guo4"),
])
def test_prompt_pinyin(text: str, expected: str) -> None:
    assert to_pinyin(text) == expected


def test_every_prompt_converts_to_plain_pinyin() -> None:
    for text in PROMPTS:
        py = to_pinyin(text)
        assert all(ord(c) < 128 for c in py), (text, py)
        words = py.replace(",", "").replace(".", "").split()
        assert all(w[-1] in "12345" for w in words), (text, py)
        assert len(words) == sum(1 for c in text if "\u4e00" <= c <= "\u9fff")


def test_polyphones_use_phrase_dictionary() -> None:
    assert "tong1 xing2" in to_pinyin("通行")
    assert "yin2 hang2" in to_pinyin("银行")
    assert "chong2 xin1" in to_pinyin("重新")
    assert "zhong4 yao4" in to_pinyin("重要")


def test_bu_yi_tone_change() -> None:
    assert to_pinyin("不是") == "bu2 shi4"
    assert to_pinyin("不属于") == "bu4 shu3 yu2"
    assert to_pinyin("一个") == "yi2 ge4"
    assert to_pinyin("第一") == "di4 yi1"


def test_unit_numbers_are_read_as_numbers() -> None:
    assert numbers_to_hanzi("3-201") == "三杠二零一"
    assert to_pinyin("3-201") == "san1 gang4 er4 ling2 yi1"
    assert to_pinyin("请到3-201室") == "qing3 dao4 san1 gang4 er4 ling2 yi1 shi4"
    assert numbers_to_hanzi("12-1102") == "一二杠一一零二"


def test_counts_decimals_times_percent() -> None:
    assert [int_to_hanzi(n) for n in (0, 10, 11, 20, 101, 110, 1005, 10086, 100000)] == [
        "零", "十", "十一", "二十", "一百零一", "一百一十", "一千零五", "一万零八十六", "十万"]
    assert numbers_to_hanzi("12.5") == "十二点五"
    assert numbers_to_hanzi("50%") == "百分之五十"
    assert numbers_to_hanzi("8:05") == "八点零五分"
    assert numbers_to_hanzi("2024年") == "二零二四年"
    assert numbers_to_hanzi("13800138000") == "一三八零零一三八零零零"
    assert to_pinyin("100") == "yi4 bai3"
    assert to_pinyin("第1名") == "di4 yi1 ming2"


def test_latin_passes_through_and_punctuation_pauses() -> None:
    assert to_pinyin("QR码") == "QR ma3"
    assert to_pinyin("。。你好！！") == "ni3 hao3!"
    assert to_pinyin("") == ""


# ----------------------------------------------------------------------------------- audio

def test_wav_roundtrip_and_streamed_header() -> None:
    a = Audio(np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16), 16000)
    b = Audio.from_wav_bytes(a.to_wav_bytes())
    assert b.same_as(a)
    # espeak-ng --stdout writes placeholder sizes (0x7ffff000); the parser must cope.
    raw = bytearray(a.to_wav_bytes())
    raw[4:8] = (0x7FFFF024).to_bytes(4, "little")
    raw[40:44] = (0x7FFFF000).to_bytes(4, "little")
    assert Audio.from_wav_bytes(bytes(raw)).same_as(a)


def test_resample_lengths() -> None:
    x = (np.sin(np.arange(22050) / 10.0) * 10000).astype(np.int16)
    assert len(resample(x, 22050, 48000)) == 48000
    assert len(resample(x, 22050, 16000)) == 16000
    assert resample(x, 22050, 22050) is x


# ----------------------------------------------------------------------------------- espeak

def test_missing_espeak_is_voice_unavailable(tmp_path: Path) -> None:
    with pytest.raises(VoiceUnavailable, match="espeak-ng not found: apt-get install espeak-ng"):
        EspeakVoice(binary=str(tmp_path / "no" / "espeak-ng"))
    with pytest.raises(VoiceUnavailable, match="espeak-ng not found"):
        EspeakVoice(binary="espeak-ng-definitely-not-installed")


@needs_espeak
def test_missing_voice_is_voice_unavailable() -> None:
    with pytest.raises(VoiceUnavailable, match="no voice"):
        EspeakVoice(voice="xx-no-such-voice")


@needs_espeak
def test_espeak_speaks_a_prompt() -> None:
    voice = EspeakVoice()
    audio = voice.synthesize("请您佩戴口罩")
    assert audio.samples.dtype == np.int16 and audio.rate in (16000, 22050, 24000)
    # 6 syllables at 165 per minute ≈ 2.2 s; allow a wide band.
    assert 1.0 < audio.duration < 5.0, audio.duration
    assert audio.peak > 3000
    rms = float(np.sqrt(np.mean(audio.samples.astype(np.float64) ** 2)))
    assert rms > 300
    longer = voice.synthesize("你好，我是大白。请出示通行二维码")
    assert longer.duration > audio.duration + 1.0
    assert len(voice.synthesize("。").samples) == 0


@needs_espeak
def test_speed_changes_duration() -> None:
    slow = EspeakVoice(speed=120).synthesize("二维码已过期")
    fast = EspeakVoice(speed=240).synthesize("二维码已过期")
    assert slow.duration > fast.duration * 1.4


@needs_espeak
def test_cli_say_writes_wav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.cli import main

    home = ["--home", str(tmp_path / "home")]
    out = tmp_path / "mask.wav"
    assert main(home + ["say", "请您佩戴口罩", "--out", str(out), "--voice", "espeak"]) == 0
    audio = Audio.load(str(out))
    assert audio.duration > 1.0 and audio.peak > 3000
    assert main(home + ["say", "请到3-201", "--out", str(tmp_path / "b.wav"), "--voice", "espeak"]) == 0
    assert Audio.load(str(tmp_path / "b.wav")).duration > 1.0
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no espeak-ng on PATH: the voice is not installed
    assert main(home + ["say", "你好", "--out", str(tmp_path / "c.wav"), "--voice", "espeak"]) == 2
    assert not (tmp_path / "c.wav").exists()


# ----------------------------------------------------------------------------------- cache

class CountingVoice(Voice):
    """A deterministic fake voice: a tone whose length depends on the text."""

    name = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay

    @property
    def params(self) -> str:
        return "v1"

    def synthesize(self, text: str) -> Audio:
        self.calls += 1
        time.sleep(self.delay)
        n = 1600 * max(1, len(text))
        return Audio((np.sin(np.arange(n) * 0.3) * 8000).astype(np.int16), 16000)


def test_cache_memory_and_disk(tmp_path: Path) -> None:
    voice = CountingVoice(delay=0.05)
    cache = PromptCache(voice, str(tmp_path / "tts"))
    first = cache.get("请您佩戴口罩")
    assert voice.calls == 1
    path = cache.path_for("请您佩戴口罩")
    assert path is not None and os.path.isfile(path)
    assert os.path.basename(path) == cache.key("请您佩戴口罩") + ".wav" and len(cache.key("x")) == 64
    assert not [f for f in os.listdir(str(tmp_path / "tts")) if f.endswith(".part")]
    t0 = time.perf_counter()
    again = cache.get("请您佩戴口罩")
    assert time.perf_counter() - t0 < 0.005
    assert again.same_as(first) and voice.calls == 1 and cache.hits == 1
    # A new process (new cache object) reads the disk instead of synthesizing.
    cache2 = PromptCache(voice, str(tmp_path / "tts"))
    assert "请您佩戴口罩" in cache2
    assert cache2.get("请您佩戴口罩").same_as(first) and voice.calls == 1 and cache2.disk_hits == 1


def test_cache_memory_is_bounded_in_bytes_and_keeps_the_fixed_prompts(tmp_path: Path) -> None:
    voice = CountingVoice()
    each = 1600 * 10 * 2  # a 10-character text: 16,000 int16 samples
    cache = PromptCache(voice, str(tmp_path), max_memory_bytes=3 * each)
    cache.warm(["请您佩戴口罩请您佩戴口", "二维码无效二维码无效二"])  # fixed prompts: pinned
    for i in range(50):  # a greeting for each of 50 residents
        cache.get("您好，住户{:04d}，欢迎回".format(i))
    assert cache.memory_bytes <= 3 * each + 2 * each  # the budget plus the pinned prompts
    calls = voice.calls
    cache.get("请您佩戴口罩请您佩戴口")
    assert voice.calls == calls and cache.hits >= 1  # still in memory
    assert cache.get("您好，住户0000，欢迎回") is not None and cache.disk_hits == 1  # evicted, back from disk


def test_cache_key_depends_on_voice_params(tmp_path: Path) -> None:
    a = PromptCache(CountingVoice(), str(tmp_path))
    other = CountingVoice()
    other.name = "fake2"
    b = PromptCache(other, str(tmp_path))
    assert a.key("二维码无效") != b.key("二维码无效")
    assert a.key("二维码无效") != a.key("二维码已过期")


def test_cache_warm_and_corrupt_file(tmp_path: Path) -> None:
    voice = CountingVoice()
    cache = PromptCache(voice, str(tmp_path))
    assert cache.warm(PROMPTS) == len(PROMPTS)
    assert voice.calls == len(PROMPTS)
    path = cache.path_for(PROMPTS[0])
    assert path is not None
    with open(path, "wb") as f:
        f.write(b"garbage")
    fresh = PromptCache(voice, str(tmp_path))
    assert fresh.get(PROMPTS[0]).duration > 0  # resynthesized, not crashed
    assert voice.calls == len(PROMPTS) + 1


@needs_espeak
def test_espeak_cache_hit_identical(tmp_path: Path) -> None:
    cache = PromptCache(EspeakVoice(), str(tmp_path))
    a = cache.get("二维码无效")
    cache.clear_memory()
    b = cache.get("二维码无效")  # from disk
    assert a.same_as(b)


# ----------------------------------------------------------------------------------- sinks

def test_wav_file_sink_numbers_files(tmp_path: Path) -> None:
    sink = WavFileSink(str(tmp_path / "speech"))
    tone = Audio((np.sin(np.arange(8000) * 0.2) * 5000).astype(np.int16), 16000)
    sink.play(tone, "mask_required")
    sink.play(tone, "欢迎 greeting!")
    names = [os.path.basename(p) for p in sink.paths]
    assert names == ["0001_mask_required.wav", "0002_greeting.wav"]
    assert Audio.load(sink.paths[0]).same_as(tone)
    assert sink.written[1].label == "欢迎 greeting!" and abs(sink.written[1].duration - 0.5) < 1e-6


def test_sounddevice_sink_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import raises ImportError
    with pytest.raises(AudioDeviceUnavailable, match="pip install"):
        SounddeviceSink()


# ----------------------------------------------------------------------------------- speaker

def test_speaker_plays_in_order_and_reports_speaking(tmp_path: Path) -> None:
    sink = WavFileSink(str(tmp_path), realtime=True)
    speaker = Speaker(PromptCache(CountingVoice()), sink)
    try:
        assert not speaker.is_speaking
        assert speaker.say("ask_qr", "请出示通行二维码")
        assert speaker.say("greet", greeting("张三"))
        assert speaker.is_speaking
        assert speaker.wait_idle(10.0)
        assert not speaker.is_speaking
        assert [os.path.basename(p) for p in sink.paths] == ["0001_ask_qr.wav", "0002_greet.wav"]
        recs = speaker.records()
        assert [r.key for r in recs] == ["ask_qr", "greet"] and all(r.error is None for r in recs)
        assert all(lat is not None and lat >= 0 for _, lat in speaker.latencies())
    finally:
        speaker.stop()


def test_speaker_interrupt_drops_pending(tmp_path: Path) -> None:
    sink = WavFileSink(str(tmp_path), realtime=True)
    speaker = Speaker(PromptCache(CountingVoice()), sink)
    try:
        speaker.say("a", "请出示通行二维码")  # 8 chars → 0.8 s at the fake voice
        speaker.say("b", "二维码无效")
        time.sleep(0.1)
        speaker.say("c", "请您佩戴口罩", interrupt=True)
        assert speaker.wait_idle(5.0)
        keys = [r.key for r in speaker.records() if not r.cancelled]
        assert keys == ["a", "c"]
        assert [r.key for r in speaker.records() if r.cancelled] == ["b"]
    finally:
        speaker.stop()


class BrokenVoice(Voice):
    name = "broken"

    def synthesize(self, text: str) -> Audio:
        raise VoiceUnavailable("espeak-ng not found: apt-get install espeak-ng")


class BrokenSink(NullSink):
    def play(self, audio: Audio, label: str) -> None:
        raise OSError("device unplugged")


def test_speaker_survives_failures(caplog: pytest.LogCaptureFixture) -> None:
    speaker = Speaker(PromptCache(BrokenVoice()), NullSink())
    try:
        speaker.say("x", "二维码无效")
        assert speaker.wait_idle(5.0)
        assert speaker.errors == 1 and "espeak-ng not found" in (speaker.records()[0].error or "")
    finally:
        speaker.stop()
    speaker = Speaker(PromptCache(CountingVoice()), BrokenSink())
    try:
        speaker.say("y", "二维码无效")
        speaker.say("z", "二维码无效")
        assert speaker.wait_idle(5.0) and speaker.errors == 2
    finally:
        speaker.stop()
    assert "device unplugged" in caplog.text
    assert not speaker.say("late", "你好")  # stopped speakers refuse politely
