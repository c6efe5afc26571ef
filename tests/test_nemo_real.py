"""The NeMo backends (:class:`NemoRecognizer`, :class:`NemoVoice`) against a real NeMo install.

No pretrained NeMo checkpoint can be downloaded here, so the models are built in code from NeMo's own
classes and OmegaConf configs, with random weights, and saved as ``.nemo`` files the way NeMo's
training scripts save them (a few hundred kB each, built in well under a second once NeMo is imported):

* ASR: a character CTC model (``EncDecCTCModel``: ``AudioToMelSpectrogramPreprocessor`` at 16 kHz, one
  separable ``ConvASREncoder`` block, ``ConvASRDecoder`` over pinyin letters) and a character RNNT model
  (``EncDecRNNTModel``, same encoder, ``RNNTDecoder`` + ``RNNTJoint``). Random weights give random text,
  so the checks are behavioural: the kiosk's wrapper returns exactly what ``model.transcribe`` gives for
  the same 16 kHz audio, in the model's vocabulary.
* TTS: a Mandarin FastPitch (``FastPitchModel`` with ``learn_alignment``, NeMo's
  ``ChinesePhonemesTokenizer`` + ``ChineseG2p`` over a small pinyin dictionary written here, which
  ``save_to`` packs into the ``.nemo``) and a HiFi-GAN (``HifiGanModel``), both at 24 kHz so the rate the
  kiosk reports is shown to come from the checkpoint; and their ONNX exports (``model.export``).

It runs only where NeMo is installed (``make nemo-check`` builds that venv: out/nemo-venv); the
project's normal venv skips it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

pytest.importorskip("nemo.collections.asr", reason="NeMo is not installed (make nemo-check builds out/nemo-venv)")
pytest.importorskip("nemo.collections.tts", reason="NeMo TTS is not installed (make nemo-check builds out/nemo-venv)")
torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402  (NeMo's dependency)

from kiosk.audio import write_wav  # noqa: E402
from kiosk.audio.resample import resample_to  # noqa: E402
from kiosk.audio.vad import create_vad  # noqa: E402
from kiosk.audio.wavfile import read_wav  # noqa: E402
from kiosk.cli import main  # noqa: E402
from kiosk.cli.listen import listen_file  # noqa: E402
from kiosk.config import Config  # noqa: E402
from kiosk.speech.listen import matcher_from_config, segmenter_settings  # noqa: E402
from kiosk.speech.recognizers import Recognition, RecognizerUnavailable, create_recognizer, detect_model_kind  # noqa: E402
from kiosk.speech.recognizers.nemo import NemoRecognizer  # noqa: E402
from kiosk.speech.voices import Audio, VoiceUnavailable  # noqa: E402
from kiosk.speech.voices.nemo import NemoVoice  # noqa: E402

LABELS = [" ", "a", "b", "d", "e", "g", "h", "i", "j", "n", "o", "q", "r", "u", "x", "y", "z"]
ASR_FEATS = 16
TTS_RATE, N_MEL, N_FFT, HOP, WIN = 24000, 16, 256, 64, 256
PINYIN = {"ni": "n i", "hao": "h ao", "zhang": "zh ang", "san": "s an", "huan": "h uan", "ying": "y ing",
          "hui": "h ui", "jia": "j ia", "er": "er", "wei": "w ei", "qing": "q ing", "tong": "t ong", "guo": "g uo",
          "yi": "y i", "hao4": "h ao", "men": "m en", "da": "d a", "bai": "b ai"}
GREETING = "你好张三，欢迎回家"


def _asr_preprocessor() -> Dict[str, Any]:
    return {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", "sample_rate": 16000,
            "features": ASR_FEATS, "n_fft": 512, "window_size": 0.025, "window_stride": 0.01, "dither": 0.0,
            "normalize": "per_feature", "pad_to": 0}


def _conv_encoder(filters: int, stride: int) -> Dict[str, Any]:
    return {"_target_": "nemo.collections.asr.modules.ConvASREncoder", "feat_in": ASR_FEATS, "activation": "relu",
            "conv_mask": True, "jasper": [{"filters": filters, "repeat": 1, "kernel": [11], "stride": [stride],
                                           "dilation": [1], "dropout": 0.0, "residual": False, "separable": True}]}


def make_ctc(path: Path) -> Any:
    """A character CTC model (``EncDecCTCModel``), random weights, saved to ``path``; returns the model."""
    from nemo.collections.asr.models import EncDecCTCModel

    cfg = OmegaConf.create({
        "sample_rate": 16000, "labels": LABELS, "preprocessor": _asr_preprocessor(), "encoder": _conv_encoder(32, 2),
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": 32,
                    "num_classes": len(LABELS), "vocabulary": LABELS},
    })
    torch.manual_seed(0)
    model = EncDecCTCModel(cfg=cfg)
    model.save_to(str(path))
    return model.eval()


def make_rnnt(path: Path) -> Any:
    """A character RNNT model (``EncDecRNNTModel``), random weights, greedy decoding; saved to ``path``."""
    from nemo.collections.asr.models import EncDecRNNTModel

    cfg = OmegaConf.create({
        "sample_rate": 16000, "labels": LABELS, "preprocessor": _asr_preprocessor(), "encoder": _conv_encoder(32, 4),
        "model_defaults": {"enc_hidden": 32, "pred_hidden": 16, "joint_hidden": 16},
        "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "normalization_mode": None,
                    "random_state_sampling": False, "blank_as_pad": True,
                    "prednet": {"pred_hidden": 16, "pred_rnn_layers": 1, "t_max": None, "dropout": 0.0}},
        "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "log_softmax": None, "preserve_memory": False,
                  "fuse_loss_wer": False, "jointnet": {"joint_hidden": 16, "activation": "relu", "dropout": 0.0}},
        "decoding": {"strategy": "greedy_batch", "greedy": {"max_symbols": 3}},
        "loss": {"loss_name": "default"},
    })
    torch.manual_seed(1)
    model = EncDecRNNTModel(cfg=cfg)
    model.save_to(str(path))
    return model.eval()


def _mel(target: str, **extra: Any) -> Dict[str, Any]:
    common = {"_target_": target, "lowfreq": 0, "highfreq": 8000, "n_fft": N_FFT, "n_window_size": WIN,
              "n_window_stride": HOP, "pad_value": 0, "sample_rate": TTS_RATE, "window": "hann", "normalize": None,
              "preemph": None, "dither": 0.0, "frame_splicing": 1, "log": True, "log_zero_guard_value": 1e-05,
              "mag_power": 1.0}
    common.update(extra)
    return common


def make_fastpitch(path: Path, work: Path) -> Any:
    """A Mandarin FastPitch (aligner, pinyin phonemes through NeMo's ChineseG2p), 1 layer, d_model 32."""
    from nemo.collections.tts.models import FastPitchModel

    work.mkdir(parents=True, exist_ok=True)
    dictionary = work / "pinyin_dict.txt"  # the format of NeMo's pinyin_dict_nv_22.10.txt: SYLLABLE<TAB>PHONEMES
    dictionary.write_text("".join("{}\t{}\n".format(s.upper(), p.upper()) for s, p in PINYIN.items()), encoding="utf-8")
    d = 32
    fft = {"n_layer": 1, "n_head": 1, "d_model": d, "d_head": 16, "d_inner": 64, "kernel_size": 3, "dropout": 0.0,
           "dropatt": 0.0, "dropemb": 0.0}
    predictor = {"_target_": "nemo.collections.tts.modules.fastpitch.TemporalPredictor", "input_size": d,
                 "kernel_size": 3, "filter_size": 32, "dropout": 0.0, "n_layers": 1}
    cfg = OmegaConf.create({
        "learn_alignment": True, "n_speakers": 1, "max_token_duration": 75, "symbols_embedding_dim": d,
        "pitch_embedding_kernel_size": 3, "pitch_fmin": 65.0, "pitch_fmax": 1000.0, "pitch_mean": 200.0,
        "pitch_std": 50.0, "sample_rate": TTS_RATE, "n_mel_channels": N_MEL, "n_window_size": WIN,
        "n_window_stride": HOP, "n_fft": N_FFT, "lowfreq": 0, "highfreq": 8000, "window": "hann",
        "text_tokenizer": {
            "_target_": "nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers.ChinesePhonemesTokenizer",
            "punct": True, "apostrophe": True, "pad_with_space": True,
            "g2p": {"_target_": "nemo.collections.tts.g2p.models.zh_cn_pinyin.ChineseG2p", "phoneme_dict": str(dictionary),
                    "word_segmenter": "jieba", "phoneme_prefix": "", "phoneme_case": "lower", "tone_prefix": "#",
                    "ascii_letter_prefix": "", "ascii_letter_case": "upper"}},
        "train_ds": {"defer_setup": True, "dataset": {"_target_": "nemo.collections.tts.data.dataset.TTSDataset"}},
        "preprocessor": _mel("nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", features=N_MEL,
                             window_size=False, window_stride=False, pad_to=1, log_zero_guard_type="add"),
        "input_fft": dict(fft, _target_="nemo.collections.tts.modules.transformer.FFTransformerEncoder", d_embed=d),
        "output_fft": dict(fft, _target_="nemo.collections.tts.modules.transformer.FFTransformerDecoder"),
        "alignment_module": {"_target_": "nemo.collections.tts.modules.aligner.AlignmentEncoder",
                             "n_text_channels": d, "n_mel_channels": N_MEL},
        "duration_predictor": predictor,
        "pitch_predictor": predictor,
        "optim": {"name": "adam", "lr": 1e-3},
    })
    torch.manual_seed(2)
    model = FastPitchModel(cfg=cfg)
    model.save_to(str(path))
    shutil.rmtree(str(work))  # the dictionary now lives inside the .nemo only
    return model.eval()


def make_hifigan(path: Path) -> Any:
    """A HiFi-GAN (``HifiGanModel``) upsampling 64x (the FastPitch hop), 32 channels."""
    from nemo.collections.tts.models import HifiGanModel

    cfg = OmegaConf.create({
        "preprocessor": _mel("nemo.collections.asr.parts.preprocessing.features.FilterbankFeatures", nfilt=N_MEL,
                             pad_to=0, log_zero_guard_type="clamp", exact_pad=True, use_grads=False),
        "generator": {"_target_": "nemo.collections.tts.modules.hifigan_modules.Generator", "resblock": 1,
                      "upsample_rates": [4, 4, 4], "upsample_kernel_sizes": [8, 8, 8], "upsample_initial_channel": 32,
                      "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]], "initial_input_size": N_MEL},
        "train_ds": {"defer_setup": True, "dataset": {"_target_": "nemo.collections.tts.data.dataset.VocoderDataset"}},
        "optim": {"_target_": "torch.optim.AdamW", "lr": 2e-4},
        "max_steps": 10, "l1_loss_factor": 45,
    })
    torch.manual_seed(3)
    model = HifiGanModel(cfg=cfg)
    model.save_to(str(path))
    return model.eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Dict[str, Any]:
    """The four tiny models, their ``.nemo`` files and the TTS ONNX exports, built once for the module."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("nemo")
    out: Dict[str, Any] = {"root": root}
    out["ctc_model"] = make_ctc(root / "ctc.nemo")
    out["rnnt_model"] = make_rnnt(root / "rnnt.nemo")
    fastpitch = make_fastpitch(root / "fastpitch.nemo", root / "g2p")
    hifigan = make_hifigan(root / "hifigan.nemo")
    fastpitch.export(str(root / "fastpitch.onnx"))  # next to fastpitch.nemo: NemoVoice's default parser
    hifigan.export(str(root / "hifigan.onnx"))
    for name in ("ctc", "rnnt", "fastpitch", "hifigan"):
        out[name] = root / "{}.nemo".format(name)
    return out


def speechlike(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A chirp with noise: not speech, but sound with structure a recognizer turns into some text."""
    t = np.arange(int(seconds * rate)) / float(rate)
    rng = np.random.RandomState(seed)
    return (0.3 * np.sin(2 * np.pi * 300 * t * (1 + t)) + 0.05 * rng.randn(t.size)).astype(np.float32)


def transcribe_directly(model: Any, samples_16k: np.ndarray, tmp: Path) -> str:
    """What NeMo itself makes of ``samples_16k`` (as the 16-bit wav the kiosk hands it)."""
    wav = tmp / "direct.wav"
    write_wav(str(wav), samples_16k, 16000)
    out = model.transcribe([str(wav)], batch_size=1)
    out = out[0] if isinstance(out, tuple) else out
    return str(getattr(out[0], "text", out[0])).strip()


# ------------------------------------------------------------------------------------------- ASR


@pytest.mark.parametrize("kind", ["ctc", "rnnt"])
def test_recognizer_gives_what_the_model_transcribes(tiny, tmp_path: Path, kind: str) -> None:
    rec = NemoRecognizer(str(tiny[kind]), device="cpu")
    assert rec.name == "nemo:{}.nemo".format(kind)
    x = speechlike()
    heard = rec.recognize(x)
    assert isinstance(heard, Recognition) and heard.backend == rec.name and heard.ms > 0
    assert heard.keyword is None
    assert heard.text and set(heard.text) <= set(LABELS), heard  # NeMo 3: Hypothesis objects, not their repr
    assert heard.text == transcribe_directly(tiny[kind + "_model"], x, tmp_path)
    assert rec.recognize((x * 32767).astype(np.int16)).text == heard.text  # int16 samples are scaled
    other = speechlike(seed=5)[::-1].copy()
    assert rec.recognize(other).text == transcribe_directly(tiny[kind + "_model"], other, tmp_path)
    assert rec.recognize(np.zeros(0, np.float32)).text == ""  # empty utterance: no NeMo error


def test_recognizer_on_audio_the_kiosk_resampled(tiny, tmp_path: Path) -> None:
    """A 44.1 kHz recording read and resampled by the kiosk, then recognized: the same text as NeMo
    gives for the resampled audio."""
    wav44 = tmp_path / "a44.wav"
    write_wav(str(wav44), speechlike(1.2, 44100, seed=3), 44100)
    frames, rate = read_wav(str(wav44))
    assert rate == 44100
    x16 = resample_to(frames.reshape(-1), rate, 16000)
    assert abs(len(x16) - int(1.2 * 16000)) <= 2
    rec = NemoRecognizer(str(tiny["ctc"]), device="cpu")
    assert rec.recognize(x16).text == transcribe_directly(tiny["ctc_model"], x16, tmp_path)


def test_recognizer_errors_are_clear(tiny, tmp_path: Path) -> None:
    with pytest.raises(RecognizerUnavailable, match="not found"):
        NemoRecognizer(str(tmp_path / "missing.nemo"))
    bad = tmp_path / "broken.nemo"
    bad.write_bytes(b"not a tar archive")
    with pytest.raises(RecognizerUnavailable, match="NeMo cannot load"):
        NemoRecognizer(str(bad), device="cpu")
    with pytest.raises(RecognizerUnavailable, match="FastPitchModel, not a speech recognizer"):
        NemoRecognizer(str(tiny["fastpitch"]), device="cpu")


def test_create_recognizer_finds_an_installed_nemo_model(tiny, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "asr").mkdir(parents=True)
    shutil.copy(str(tiny["ctc"]), str(models / "asr" / "tiny_ctc.nemo"))
    assert detect_model_kind(models / "asr" / "tiny_ctc.nemo") == "nemo"
    rec = create_recognizer("auto", "", models)
    assert isinstance(rec, NemoRecognizer) and rec.name == "nemo:tiny_ctc.nemo"
    assert isinstance(create_recognizer("nemo", str(tiny["rnnt"])), NemoRecognizer)


def test_listen_cli_runs_the_tiny_nemo_model(tiny, tmp_path: Path, capsys) -> None:
    """``dabai-kiosk listen --json --recognizer nemo --model X.nemo`` on a 44.1 kHz recording (silence,
    a 1 s sound, silence): the kiosk's own path (resampling, VAD, recognizer) with the NeMo model."""
    quiet = np.zeros(44100, np.float32)
    wav = tmp_path / "burst44.wav"
    write_wav(str(wav), np.concatenate([quiet, speechlike(1.0, 44100, seed=7), quiet]), 44100)
    code = main(["--home", str(tmp_path / "home"), "listen", str(wav), "--json", "--vad", "energy",
                 "--recognizer", "nemo", "--model", str(tiny["ctc"])])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip().startswith("{")]
    assert code == 0 and len(lines) == 1, lines
    line = lines[0]
    assert "note" not in line and "error" not in line, line
    assert line["recognizer"] == "nemo:ctc.nemo" and line["rate"] == 44100
    assert len(line["segments"]) == 1 and 0.6 < line["segments"][0][0] < 1.2, line["segments"]
    assert all(not u.get("error") for u in line["utterances"]), line["utterances"]
    assert line["text"] and set(line["text"]) <= set(LABELS)
    # the same file through the same code with a recognizer built here: the CLI wired the model in right
    listen = Config().listen
    direct = listen_file(str(wav), create_vad("energy", "", fallback=False),
                         NemoRecognizer(str(tiny["ctc"]), device="cpu"), matcher_from_config(listen),
                         segmenter_settings(listen))
    assert line["text"] == direct["text"] and line["segments"] == direct["segments"]


# ------------------------------------------------------------------------------------------- TTS


def _check_audio(audio: Audio) -> None:
    assert isinstance(audio, Audio) and audio.rate == TTS_RATE  # from the checkpoint, not the 22050 default
    assert audio.samples.dtype == np.int16 and audio.samples.size > 0
    x = audio.samples.astype(np.float32) / 32768.0
    assert -1.0 <= x.min() <= x.max() <= 1.0 and float(np.std(x)) > 0, (x.min(), x.max())


def test_nemo_voice_with_nemo_checkpoints(tiny) -> None:
    voice = NemoVoice(str(tiny["fastpitch"]), str(tiny["hifigan"]))
    assert voice.rate == TTS_RATE and voice.name == "nemo:fastpitch.nemo+hifigan.nemo"
    audio = voice.synthesize(GREETING)
    _check_audio(audio)
    assert audio.samples.size % HOP == 0  # whole spectrogram frames through the vocoder
    assert voice.synthesize(GREETING).same_as(audio)  # eval mode, no dropout: deterministic
    # the kiosk's own steps: FastPitch's tokens -> spectrogram -> HiFi-GAN, the same audio
    fp, hg = voice._spec_gen, voice._vocoder
    with torch.no_grad():
        ref = hg.convert_spectrogram_to_audio(spec=fp.generate_spectrogram(tokens=fp.parse(GREETING))).numpy()
    assert Audio(np.clip(ref.reshape(-1), -1, 1), TTS_RATE).same_as(audio)
    slow = NemoVoice(str(tiny["fastpitch"]), str(tiny["hifigan"]), pace=0.5).synthesize(GREETING)
    assert slow.samples.size > audio.samples.size  # pace reaches FastPitch
    _check_audio(voice.synthesize("请到2号门"))  # digits spoken as hanzi first
    assert voice.synthesize("  ").samples.size == 0


def test_nemo_voice_with_onnx_exports(tiny) -> None:
    """FastPitch and HiFi-GAN as ONNX (ONNX Runtime through kiosk.inference), tokens from the .nemo:
    the same audio as NeMo's own models, give or take float rounding."""
    root = tiny["root"]
    ref = NemoVoice(str(tiny["fastpitch"]), str(tiny["hifigan"])).synthesize(GREETING)
    onnx_voice = NemoVoice(str(root / "fastpitch.onnx"), str(root / "hifigan.onnx"))
    assert onnx_voice._fp_runner is not None and onnx_voice._hg_runner is not None
    assert set(onnx_voice._fp_runner.input_names) <= {"text", "pitch", "pace", "volume", "speaker"}
    for voice in (onnx_voice,
                  NemoVoice(str(root / "fastpitch.onnx"), str(tiny["hifigan"])),
                  NemoVoice(str(tiny["fastpitch"]), str(root / "hifigan.onnx"))):
        audio = voice.synthesize(GREETING)
        _check_audio(audio)
        assert audio.samples.size == ref.samples.size, voice
        diff = np.abs(audio.samples.astype(np.int32) - ref.samples.astype(np.int32)).max()
        assert diff <= 100, (voice, diff)  # 0.3 % of full scale
    slow = NemoVoice(str(root / "fastpitch.onnx"), str(root / "hifigan.onnx"), pace=0.5).synthesize(GREETING)
    assert slow.samples.size > ref.samples.size  # the ONNX "pace" input is filled


def test_nemo_voice_errors_are_clear(tiny, tmp_path: Path) -> None:
    onnx_alone = tmp_path / "fp.onnx"
    shutil.copy(str(tiny["root"] / "fastpitch.onnx"), str(onnx_alone))
    with pytest.raises(VoiceUnavailable, match="needed to tokenize"):
        NemoVoice(str(onnx_alone), str(tiny["hifigan"]))
    assert NemoVoice(str(onnx_alone), str(tiny["hifigan"]), parser=str(tiny["fastpitch"])).rate == TTS_RATE
    bad = tmp_path / "broken.nemo"
    bad.write_bytes(b"not a tar archive")
    with pytest.raises(VoiceUnavailable, match="cannot load"):
        NemoVoice(str(tiny["fastpitch"]), str(bad))
    with pytest.raises(VoiceUnavailable, match="not found"):
        NemoVoice(str(tiny["fastpitch"]), str(tmp_path / "missing.nemo"))


def test_say_cli_with_the_tiny_nemo_voice(tiny, tmp_path: Path, capsys) -> None:
    home = str(tmp_path / "home")
    for key, value in (("speech.tts", "nemo"), ("speech.model", str(tiny["fastpitch"])),
                       ("speech.vocoder", str(tiny["hifigan"]))):
        assert main(["--home", home, "config", "set", key, value]) == 0
    out = tmp_path / "greeting.wav"
    assert main(["--home", home, "say", GREETING, "--out", str(out)]) == 0
    assert "nemo:fastpitch.nemo+hifigan.nemo" in capsys.readouterr().out
    frames, rate = read_wav(str(out))
    expected = NemoVoice(str(tiny["fastpitch"]), str(tiny["hifigan"])).synthesize(GREETING)
    assert rate == TTS_RATE and frames.reshape(-1).size == expected.samples.size
    assert os.path.getsize(str(out)) > 44
