"""The project's own keyword model (dabai-kws): features, runtime backend, training data helpers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_espeak

from kiosk.speech import kws
from kiosk.speech.intent import intent_of
from kiosk.speech.recognize import RecognizerUnavailable, create_recognizer

RATE = 16000
needs_model = pytest.mark.skipif(not kws.DEFAULT_MODEL.is_file(), reason="engines/keyword.onnx not trained")


def _tone(freq: float, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_shape_and_peak_band():
    x = _tone(1000.0, 1.0)
    m = kws.log_mel(x)
    assert m.shape == (1 + (RATE - 400) // 160, kws.N_MELS) and m.dtype == np.float32
    centres = kws.mel_filterbank().argmax(axis=1) * RATE / 512.0
    assert abs(centres[int(np.argmax(m.mean(axis=0)))] - 1000.0) < 120.0  # the loudest band is the 1 kHz one
    loud = m > m.max() - 8.0
    assert np.allclose(kws.log_mel(x * 2.0)[loud], m[loud] + np.log(4.0), atol=1e-2)  # log power: gain is an offset
    assert kws.log_mel(np.zeros(10, np.float32)).shape == (1, kws.N_MELS)
    assert np.allclose(kws.log_mel((x * 32767).astype(np.int16))[loud], m[loud], atol=1e-2)


def test_features_windows_trim_and_gain_invariance():
    x = np.concatenate([np.zeros(RATE), _tone(500.0, 1.5), np.zeros(RATE)])
    t = kws.trim_speech(x)
    assert abs(t.size / RATE - 1.7) < 0.05  # 1.5 s + 0.1 s either side
    f = kws.features(x)
    assert f.shape == (1, 1, kws.N_MELS, kws.FRAMES) and kws.FRAMES == 398
    assert np.allclose(f, kws.features(x * 0.05), atol=1e-3)
    assert f.max() == pytest.approx((0 - kws.FLOOR / 2) / 4.0)
    long = np.concatenate([_tone(300.0, 9.0), _tone(600.0, 0.3)])
    assert kws.features(long).shape[0] == len(kws.windows(long)) >= 11


def test_missing_and_corrupt_model_name_the_file(tmp_path):
    missing = tmp_path / "keyword.onnx"
    with pytest.raises(RecognizerUnavailable, match="keyword.onnx not found"):
        kws.DabaiKeywordSpotter(str(missing))
    with pytest.raises(RecognizerUnavailable, match="not found"):
        create_recognizer("dabai-kws", str(missing), tmp_path / "models")
    missing.write_bytes(b"not an onnx model" * 20)
    with pytest.raises(RecognizerUnavailable, match=str(missing)):
        kws.DabaiKeywordSpotter(str(missing))


@needs_model
def test_auto_uses_the_shipped_model_when_nothing_is_installed(tmp_path):
    rec = create_recognizer("auto", "", tmp_path / "models")
    assert rec.name.startswith("dabai-kws")
    r = rec.recognize(np.zeros(RATE, np.float32))
    assert r.keyword is None and r.text == "" and 0.0 <= r.confidence <= 1.0


@needs_espeak
@needs_model
def test_backend_hears_the_phrase_and_not_a_negative():
    from kiosk.audio.resample import resample_to
    from kiosk.speech.tts import EspeakVoice

    rec = create_recognizer("dabai-kws", "", None)

    def say(text: str) -> np.ndarray:
        a = EspeakVoice(speed=175).synthesize(text)
        x = resample_to(a.samples.astype(np.float32) / 32768.0, a.rate, RATE)
        return np.concatenate([np.zeros(4800, np.float32), x, np.zeros(8000, np.float32)])

    hit = rec.recognize(say("你好大白，请让我进入小区"))
    assert hit.keyword == kws.PHRASE and intent_of(hit.text) == "enter", hit
    miss = rec.recognize(say("今天天气很好，我们去公园吧"))
    assert miss.keyword is None and intent_of(miss.text) is None, miss
    assert hit.ms < 200.0


def test_training_texts_and_enrollment(tmp_path):
    from kiosk.audio.wavfile import write_wav
    from kiosk.train import keyword as kt

    texts = kt.negative_texts(n=120)
    assert len(texts) >= 100 and not [t for t in texts if intent_of(t) == "enter"]
    assert "你好大白菜" in texts and "我不要进入小区" in texts
    assert all(intent_of(p) == "enter" for p in kt.POSITIVES)
    assert not set(kt.TRAIN_VARIANTS) & set(kt.TEST_VARIANTS)
    # operator recordings: any rate / channels → 16 kHz mono, then augmented like the synthesized ones
    stand_in = _tone(220.0, 2.0)
    write_wav(str(tmp_path / "a.wav"), np.stack([stand_in, stand_in], axis=1), RATE)
    write_wav(str(tmp_path / "b.wav"), _tone(220.0, 2.0 * 22050 / RATE), 22050)
    got = kt.load_enrollment(str(tmp_path))
    assert len(got) == 2 and all(abs(g.size - 2 * RATE) < 200 and g.ndim == 1 for g in got)
    rng = np.random.RandomState(0)
    for held in (False, True):
        y = kt.augment(got[0], rng, [], held_out=held)
        assert y.dtype == np.float32 and np.abs(y).max() <= 1.0 and y.size > got[0].size * 0.8
        assert len(kt.window_feats(y, True)) == 1
    with pytest.raises(ValueError, match="no .wav"):
        kt.load_enrollment(str(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else ""))
