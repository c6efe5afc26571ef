"""The listening path: intent matching, recognizers, half-duplex, the mic loop and `dabai-kiosk listen`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import HAVE_ESPEAK, HAVE_SILERO

from kiosk.audio import CHUNK, WavFileSource, write_wav
from kiosk.audio.vad import EnergyVad, SileroVad
from kiosk.cli import main
from kiosk.config import Config, config_from_dict
from kiosk.core.events import Heard
from kiosk.speech.intent import IntentMatcher, intent_of, parse_phrases
from kiosk.speech.listen import HalfDuplex, MicLoop, SpeechPipeline, matcher_from_config
from kiosk.speech.recognizers import (
    Recognition,
    Recognizer,
    RecognizerUnavailable,
    create_recognizer,
    detect_model_kind,
    register_backend,
)
from kiosk.speech.recognizers.sherpa_kws import SherpaKeywordSpotter
from kiosk.speech.recognizers.sherpa_offline import SherpaOfflineRecognizer

needs_audio_models = pytest.mark.skipif(not (HAVE_ESPEAK and HAVE_SILERO), reason="needs espeak-ng and silero-vad")

# ----------------------------------------------------------------------------------- intent


@pytest.mark.parametrize("text", [
    "你好大白，请让我进入小区", "你好大白请让我进入小区。", "你好大拜，请让我进入小区", "你好打败请让我进入小区",
    "你好大白，让我进去", "让我进去", "进去小区", "我要进小区", "请让我先进去吧", "开们", "大白你好，我要回家",
])
def test_enter_requests_and_homophones(text: str) -> None:
    assert intent_of(text) == "enter"


@pytest.mark.parametrize("text", ["帮帮我", "我要找物业", "这个怎么用", "请问怎么进", "需要人工服务"])
def test_help_requests(text: str) -> None:
    assert intent_of(text) == "help"


@pytest.mark.parametrize("text", [
    "", "   ", "嗯", "你好", "你好大白", "今天天气很好", "大白菜多少钱", "进度怎么样", "我们一起去吃饭吧",
    "请问现在几点", "我不要进去", "别开门", "hello", "3-201", "！？。",
])
def test_unrelated_or_negated_sentences_have_no_intent(text: str) -> None:
    assert intent_of(text) is None


@pytest.mark.parametrize("text, intent", [
    ("请让我进入小区。算了，我不要进去了", None),  # a change of mind: the last clause that decides wins
    ("开门。不用了", None),
    ("开门，取消", None),
    ("我不进去，开门吧", "enter"),
    ("请让我进入小区，谢谢", "enter"),  # a clause that decides nothing changes nothing
    ("帮帮我，我要进去", "enter"),
    ("让我进去，我找物业", "help"),
])
def test_the_last_clause_that_decides_wins(text: str, intent) -> None:  # type: ignore[no-untyped-def]
    assert intent_of(text) == intent


def test_config_defaults_are_the_matchers_defaults() -> None:
    from kiosk.speech.intent import ENTER_PHRASES, HELP_PHRASES

    assert parse_phrases(Config().listen.enter_phrases) == list(ENTER_PHRASES)
    assert parse_phrases(Config().listen.help_phrases) == list(HELP_PHRASES)


def test_matcher_reports_score_phrase_and_takes_configured_phrases() -> None:
    m = IntentMatcher(["芝麻开门"], ["救命"], threshold=0.8).match("芝麻开们")
    assert (m.intent, m.phrase, m.score) == ("enter", "芝麻开门", 1.0)
    assert IntentMatcher(["芝麻开门"], ["救命"]).intent("让我进入小区") is None
    cfg = config_from_dict({"listen": {"enter_phrases": "芝麻开门，我要进去", "help_phrases": "救命|求助"}})
    assert parse_phrases(cfg.listen.enter_phrases) == ["芝麻开门", "我要进去"]
    matcher = matcher_from_config(cfg.listen)
    assert matcher.intent("救命啊") == "help" and matcher.intent("开一下门") is None


# ----------------------------------------------------------------------------------- recognizers


def test_model_kind_detection(tmp_path: Path) -> None:
    def folder(name: str, *files: str) -> Path:
        d = tmp_path / name
        d.mkdir()
        for f in files:
            (d / f).write_bytes(b"x")
        return d

    enc = ("encoder-epoch-12-avg-2-chunk-16-left-64.int8.onnx", "decoder-epoch-12-avg-2-chunk-16-left-64.onnx",
           "joiner-epoch-12-avg-2-chunk-16-left-64.int8.onnx", "tokens.txt")
    assert detect_model_kind(folder("sherpa-onnx-kws-zipformer-wenetspeech-3.3M-2024-01-01", *enc)) == "kws"
    assert detect_model_kind(folder("sherpa-onnx-zipformer-zh-2023", *enc)) == "transducer"
    assert detect_model_kind(folder("sherpa-onnx-paraformer-zh-2024-03-09", "model.int8.onnx", "tokens.txt")) == "paraformer"
    assert detect_model_kind(folder("sherpa-onnx-sense-voice-zh-en", "model.int8.onnx", "tokens.txt")) == "sense_voice"
    assert detect_model_kind(folder("sherpa-onnx-whisper-tiny", "tiny-encoder.onnx", "tiny-decoder.onnx",
                                    "tiny-tokens.txt")) == "whisper"
    assert detect_model_kind(folder("random", "notes.txt")) is None


def test_auto_falls_back_to_the_shipped_keyword_model(tmp_path: Path) -> None:
    assert "kws" in create_recognizer("auto", "", tmp_path / "models").name


def test_no_recognizer_installed_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DABAI_KWS_MODEL", str(tmp_path / "gone.onnx"))  # as if engines/keyword.onnx were missing
    with pytest.raises(RecognizerUnavailable, match="no speech recognizer installed"):
        create_recognizer("auto", "", tmp_path / "models")
    with pytest.raises(RecognizerUnavailable, match="not found"):
        create_recognizer("auto", str(tmp_path / "nope"), tmp_path / "models")
    with pytest.raises(RecognizerUnavailable, match="gone.onnx not found"):
        create_recognizer("dabai-kws", "", tmp_path / "models")
    with pytest.raises(RecognizerUnavailable, match="off"):
        create_recognizer("none")
    broken = tmp_path / "models" / "asr" / "sherpa-onnx-paraformer-zh"
    broken.mkdir(parents=True)
    (broken / "model.onnx").write_bytes(b"not a model")
    (broken / "tokens.txt").write_text("a 0\n")
    with pytest.raises(RecognizerUnavailable):  # sherpa-onnx missing, or it refuses the file: either is said
        create_recognizer("auto", "", tmp_path / "models")


def test_backend_seam_for_the_projects_own_keyword_model(tmp_path: Path) -> None:
    class Mine(Recognizer):
        name = "mine"

        def recognize(self, samples_16k: np.ndarray) -> Recognition:
            return Recognition("你好大白请让我进入小区", keyword="你好大白请让我进入小区", confidence=0.9)

    from kiosk.speech import recognizers as r

    saved = dict(r.BACKENDS)
    try:
        register_backend("dabai-kws", lambda spec: Mine())
        assert create_recognizer("dabai-kws", "", tmp_path).recognize(np.zeros(1600)).keyword
    finally:
        r.BACKENDS.clear()
        r.BACKENDS.update(saved)


SHERPA_MODEL = os.environ.get("DABAI_SHERPA_MODEL", "")


@pytest.mark.skipif(not SHERPA_MODEL, reason="no sherpa-onnx model here: set DABAI_SHERPA_MODEL to an unpacked "
                    "official model folder (kws or offline) to run it")
@needs_audio_models
def test_sherpa_model_on_the_spoken_request(tmp_path: Path) -> None:  # pragma: no cover - needs a model
    from kiosk.speech import EspeakVoice

    kind = detect_model_kind(Path(SHERPA_MODEL))
    rec = (SherpaKeywordSpotter(SHERPA_MODEL, ["你好大白请让我进入小区"]) if kind == "kws"
           else SherpaOfflineRecognizer(SHERPA_MODEL))
    from kiosk.audio import resample_to

    audio = EspeakVoice().synthesize("你好大白，请让我进入小区")
    out = rec.recognize(resample_to(audio.samples / 32768.0, audio.rate, 16000))
    assert isinstance(out, Recognition) and out.ms > 0
    print(out)  # espeak-ng is robotic: what a real model makes of it is informative, not asserted


# ----------------------------------------------------------------------------------- half-duplex, loop


class FakeRecognizer(Recognizer):
    name = "fake"

    def __init__(self, text: str = "你好大拜，请让我进去小区") -> None:
        self.text = text
        self.calls = 0

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        self.calls += 1
        return Recognition(self.text, ms=1.0, backend=self.name)


class ScriptedVad:
    """Speech probabilities from a script, one a chunk."""

    name = "scripted"

    def __init__(self, probs) -> None:  # type: ignore[no-untyped-def]
        self.probs = list(probs)

    def prob(self, chunk: np.ndarray) -> float:
        return self.probs.pop(0) if self.probs else 0.0

    def reset(self) -> None:
        pass


class ByLength(Recognizer):
    """Hears ``short`` in an utterance of less than ``seconds``, else ``long``."""

    name = "by-length"

    def __init__(self, short: str, long: str, seconds: float) -> None:
        self.short, self.long, self.seconds, self.calls = short, long, seconds, 0

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        self.calls += 1
        return Recognition(self.short if len(samples_16k) < self.seconds * 16000 else self.long, ms=1.0, backend=self.name)


def run_script(probs, recognizer: Recognizer, early: bool = True):  # type: ignore[no-untyped-def]
    pipeline = SpeechPipeline(ScriptedVad(probs), recognizer, IntentMatcher(), early_intent=early)
    chunk = np.zeros(CHUNK, np.float32)
    out = [(i, r) for i, r in enumerate(pipeline.feed(chunk) for _ in range(len(probs))) if r is not None]
    last = pipeline.finish()
    return out + ([(len(probs), last)] if last is not None else []), pipeline


def test_an_intent_is_acted_on_200_ms_after_speech_not_after_the_hangover() -> None:
    rec = ByLength("你好大白", "请让我进入小区", 0.0)
    out, pipe = run_script([0.0] * 10 + [0.9] * 40 + [0.0] * 40, rec)
    ((at, res),) = out  # reported once: the hangover's close does not repeat it
    assert res.intent == "enter" and res.early and at == 10 + 39 + 6  # 6 chunks = the 200 ms tail
    assert 192 <= res.end_to_intent_ms < 250 and rec.calls == 1  # the same samples are not recognized again
    assert pipe.stats.utterances == 1 and pipe.stats.results == [res]
    ((at_late, late),), _ = run_script([0.0] * 10 + [0.9] * 40 + [0.0] * 40, ByLength("", "请让我进入小区", 0.0), early=False)
    assert late.intent == "enter" and not late.early and at_late == 10 + 39 + 16 and late.end_to_intent_ms >= 512
    assert (late.start_s, late.end_s, late.duration_s) == (res.start_s, res.end_s, res.duration_s)  # the same utterance


def test_a_pause_inside_the_request_waits_for_the_rest() -> None:
    # 「你好大白，」 a 256 ms pause 「请让我进入小区」: the pause is offered, but 你好大白 is no request
    rec = ByLength("你好大白", "你好大白，请让我进入小区", 1.2)
    out, _ = run_script([0.0] * 10 + [0.9] * 20 + [0.0] * 8 + [0.9] * 30 + [0.0] * 40, rec)
    ((at, res),) = out
    assert res.intent == "enter" and res.early and at == 10 + 20 + 8 + 29 + 6 and rec.calls == 2


def test_words_after_an_early_intent_are_heard_and_a_change_of_mind_reported() -> None:
    rec = ByLength("请让我进入小区", "我不要进入小区", 1.6)  # the whole utterance, heard again, says no
    out, pipe = run_script([0.0] * 10 + [0.9] * 30 + [0.0] * 8 + [0.9] * 20 + [0.0] * 40, rec)
    assert [(r.intent, r.early) for _, r in out] == [("enter", True), (None, False)]
    same = ByLength("请让我进入小区", "请让我进入小区，谢谢", 1.6)  # the intent stands: reported once
    out, _ = run_script([0.0] * 10 + [0.9] * 30 + [0.0] * 8 + [0.9] * 20 + [0.0] * 40, same)
    assert [(r.intent, r.early) for _, r in out] == [("enter", True)] and same.calls == 2


def test_half_duplex_mutes_while_speaking_and_a_tail_after() -> None:
    now = [0.0]
    speaking = [True]
    hd = HalfDuplex(lambda: speaking[0], tail_s=0.2, clock=lambda: now[0])
    assert hd.muted()
    speaking[0] = False
    now[0] = 0.1
    assert hd.muted()
    now[0] = 0.25
    assert not hd.muted()


@pytest.fixture(scope="module")
def request_wav(tmp_path_factory) -> str:
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng not installed")
    from kiosk.speech import EspeakVoice

    audio = EspeakVoice().synthesize("你好大白，请让我进入小区")
    x = audio.samples.astype(np.float64) / 32768.0
    sig = np.concatenate([np.zeros(int(1.0 * audio.rate)), x, np.zeros(int(1.2 * audio.rate))])
    sig += np.random.RandomState(0).randn(len(sig)) * 0.003
    path = str(tmp_path_factory.mktemp("listen") / "request.wav")
    write_wav(path, sig, audio.rate)
    return path


@needs_audio_models
def test_mic_loop_posts_heard_with_intent(request_wav: str) -> None:
    posted = []
    rec = FakeRecognizer()
    pipeline = SpeechPipeline(SileroVad(), rec, IntentMatcher())
    loop = MicLoop(WavFileSource(request_wav), pipeline, posted.append)
    loop.start()
    loop.join(10)
    assert loop.error is None and not loop.is_alive()
    assert posted == [Heard("你好大拜，请让我进去小区", "enter")]
    res = loop.results[0]
    assert res.intent == "enter" and res.early and 0.19 <= res.end_to_intent_ms / 1000.0 < 0.3  # tail + processing
    assert pipeline.stats.vad_rtf < 0.5
    late = SpeechPipeline(SileroVad(), FakeRecognizer(), IntentMatcher(), early_intent=False)
    (res,) = [r for r in (late.feed(c) for c in WavFileSource(request_wav).chunks()) if r is not None]
    assert res.intent == "enter" and not res.early and 0.5 <= res.end_to_intent_ms / 1000.0 < 0.8  # hangover + processing


@needs_audio_models
def test_mic_loop_drops_input_while_the_kiosk_speaks(request_wav: str) -> None:
    posted = []
    rec = FakeRecognizer()
    pipeline = SpeechPipeline(SileroVad(), rec, IntentMatcher(), half_duplex=HalfDuplex(lambda: True, 0.2))
    loop = MicLoop(WavFileSource(request_wav), pipeline, posted.append)
    loop.start()
    loop.join(10)
    assert posted == [] and rec.calls == 0
    assert pipeline.stats.muted_chunks == pipeline.stats.chunks > 0


def test_mic_loop_survives_a_broken_device() -> None:
    class Broken(WavFileSource):
        def __init__(self) -> None:  # no file
            import threading

            self._stop = threading.Event()

        def chunks(self):
            from kiosk.audio import AudioInputUnavailable

            raise AudioInputUnavailable("cannot open audio input 'USB mic' at 48000 Hz: device unplugged")
            yield np.zeros(CHUNK)  # pragma: no cover

    said = []
    loop = MicLoop(Broken(), SpeechPipeline(EnergyVad(), FakeRecognizer()), lambda e: None, on_status=said.append)
    loop.start()
    loop.join(5)
    assert "unplugged" in loop.error and len(said) == 1 and "without voice" in said[0]


def test_headless_without_recognizer_says_so_once_and_goes_on(tmp_path: Path, monkeypatch) -> None:
    from kiosk.config import Home

    monkeypatch.setenv("DABAI_KWS_MODEL", str(tmp_path / "gone.onnx"))
    from kiosk.runtime.headless import start_listening

    said = []
    assert start_listening(Config(), Home(tmp_path), lambda e: None, None, said.append) is None
    assert len(said) == 1 and "no speech recognizer installed" in said[0] and "runs without it" in said[0]
    said.clear()
    off = config_from_dict({"listen": {"enabled": False}})
    assert start_listening(off, Home(tmp_path), lambda e: None, None, said.append) is None
    assert said == ["voice input off (listen.enabled = false)"]


# ----------------------------------------------------------------------------------- CLI


def run_listen(capsys, home: Path, *argv: str):
    code = main(["--home", str(home), "listen", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


@needs_audio_models
def test_listen_json_on_good_and_bad_files(tmp_path: Path, capsys, request_wav: str) -> None:
    d = tmp_path / "wavs"
    d.mkdir()
    x, rate = WavFileSource(request_wav).frames, WavFileSource(request_wav).device_rate
    write_wav(str(d / "stereo_48k_24bit.wav"), np.repeat(
        __import__("kiosk.audio", fromlist=["resample_to"]).resample_to(x[:, 0], rate, 48000)[:, None], 2, axis=1),
        48000, bits=24)
    write_wav(str(d / "silence.wav"), np.zeros(16000), 16000)
    write_wav(str(d / "noise.wav"), np.random.RandomState(2).randn(32000) * 0.2, 16000)
    write_wav(str(d / "clipped.wav"), np.clip(x[:, 0] * 30, -1, 1), rate)
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk\x04\x00\x00\x00abcd")
    files = [request_wav] + [str(d / n) for n in ("stereo_48k_24bit.wav", "silence.wav", "noise.wav",
                                                 "clipped.wav", "empty.wav", "corrupt.wav")]
    code, lines, _ = run_listen(capsys, tmp_path / "home", *files, "--json")
    assert code == 1  # some files could not be read; the rest were
    by = {Path(r["wav"]).name: r for r in lines}
    assert len(lines) == len(files)
    for name in ("request.wav", "stereo_48k_24bit.wav", "clipped.wav"):
        r = by[name]
        assert len(r["segments"]) == 1 and 0.9 < r["segments"][0][0] < 1.2, (name, r["segments"])
        assert r["ms"] > 0
    for name in ("request.wav", "stereo_48k_24bit.wav"):  # the shipped keyword model hears the request
        assert by[name]["intent"] == "enter", by[name]
    assert by["stereo_48k_24bit.wav"]["rate"] == 48000 and by["stereo_48k_24bit.wav"]["channels"] == 2
    assert "clipped" in by["clipped.wav"]["warning"]
    assert by["silence.wav"]["segments"] == [] and "silent" in by["silence.wav"]["warning"]
    assert by["noise.wav"]["segments"] == []
    assert "empty file" in by["empty.wav"]["error"] and "corrupt WAV" in by["corrupt.wav"]["error"]


@needs_audio_models
def test_listen_with_a_recognizer_gives_text_and_intent(tmp_path: Path, capsys, request_wav: str) -> None:
    from kiosk.speech import recognizers as r

    saved = dict(r.BACKENDS)
    try:
        register_backend("dabai-kws", lambda spec: FakeRecognizer("你好大白，请让我进入小区"))
        code, lines, _ = run_listen(capsys, tmp_path / "home", request_wav, "--json", "--recognizer", "dabai-kws")
    finally:
        r.BACKENDS.clear()
        r.BACKENDS.update(saved)
    assert code == 0
    assert lines[0]["intent"] == "enter" and lines[0]["text"] == "你好大白，请让我进入小区" and "note" not in lines[0]


def test_listen_plain_output_and_missing_file(tmp_path: Path, capsys) -> None:
    code = main(["--home", str(tmp_path / "home"), "listen", str(tmp_path / "missing.wav"), "--vad", "energy"])
    out, err = capsys.readouterr()
    assert code == 1 and "missing.wav: error:" in out and "cannot read" in out
