"""NeMo FastPitch + HiFi-GAN voices a user installs (e.g. NVIDIA's ``tts_zh_fastpitch_sfspeech`` and
``tts_zh_hifigan_sfspeech``, or a voice trained on the deployment's own recordings).

Two ways to run them:

* ``.nemo`` checkpoints through NeMo (``pip install 'dabai-kiosk[nemo]'``; torch): the documented
  ``FastPitchModel.restore_from(path)``, ``parse(text)``, ``generate_spectrogram(tokens=…, pace=…,
  speaker=…)`` and ``HifiGanModel.restore_from(path).convert_spectrogram_to_audio(spec=…)``;
* their ONNX exports (``model.export("fastpitch.onnx")``) run by :func:`kiosk.inference.load_model`
  (ONNX Runtime, or TensorRT on a Jetson). FastPitch's export takes ``text`` (token ids), ``pitch``,
  ``pace`` and, when the model has them, ``volume`` and ``speaker``, and returns ``spect``; HiFi-GAN's
  takes ``spec`` and returns ``audio``. Turning text into token ids is the model's own tokenizer, so
  the ``.nemo`` of the FastPitch model is still needed for that (``parser``), with NeMo installed.

NeMo is imported only when such a voice is made. Numbers are spoken the kiosk's way first
(:func:`kiosk.speech.pinyin.numbers_to_hanzi`).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np

from ..pinyin import numbers_to_hanzi
from .base import Audio, SynthesisError, Voice, VoiceUnavailable

__all__ = ["NemoVoice"]

INSTALL_HINT = "pip install 'dabai-kiosk[nemo]' (nemo_toolkit, torch)"


def _import_nemo_tts() -> Any:
    try:
        from nemo.collections.tts import models  # type: ignore[import-not-found]
    except Exception as exc:
        raise VoiceUnavailable("NeMo TTS is not installed ({}: {}): {}".format(type(exc).__name__, exc, INSTALL_HINT)) from exc
    return models


class NemoVoice(Voice):
    """FastPitch (spectrogram) + HiFi-GAN (vocoder): each a ``.nemo`` checkpoint or its ONNX export.

    ``fastpitch``/``hifigan``: file paths. ``parser``: the FastPitch ``.nemo`` used to tokenize text
    when ``fastpitch`` is an ONNX file (default: ``fastpitch`` with its suffix changed to ``.nemo``).
    ``pace``: 1.0 normal, larger = faster. ``speaker``: speaker id of a multi-speaker model.
    ``sample_rate``: 0 = from the checkpoint's config (22050 when it does not say).
    """

    def __init__(
        self,
        fastpitch: str,
        hifigan: str,
        parser: str = "",
        pace: float = 1.0,
        speaker: Optional[int] = None,
        sample_rate: int = 0,
        device: str = "cpu",
        backend: str = "auto",
    ) -> None:
        for label, path in (("FastPitch", fastpitch), ("HiFi-GAN", hifigan)):
            if not path or not os.path.isfile(path):
                raise VoiceUnavailable("NeMo {} model not found: {!r} (set speech.model to the FastPitch .nemo/.onnx and "
                                       "speech.vocoder to the HiFi-GAN .nemo/.onnx)".format(label, path))
        if not 0.3 <= float(pace) <= 3.0:
            raise ValueError("NeMo pace must be 0.3..3.0, got {!r}".format(pace))
        self.fastpitch_path, self.hifigan_path = str(fastpitch), str(hifigan)
        self.pace = float(pace)
        self.speaker = speaker
        self.device = device
        self._fp_onnx = fastpitch.lower().endswith(".onnx")
        self._hg_onnx = hifigan.lower().endswith(".onnx")
        models = _import_nemo_tts()  # the tokenizer always comes from a .nemo, even for ONNX exports
        parser_path = parser or (os.path.splitext(fastpitch)[0] + ".nemo" if self._fp_onnx else fastpitch)
        if not os.path.isfile(parser_path):
            raise VoiceUnavailable(
                "NeMo FastPitch .nemo needed to tokenize text not found: {!r} (set parser=…)".format(parser_path))
        loading = parser_path
        try:
            self._spec_gen = models.FastPitchModel.restore_from(parser_path, map_location=device).eval()
            loading = hifigan
            self._vocoder = None if self._hg_onnx else models.HifiGanModel.restore_from(hifigan, map_location=device).eval()
        except Exception as exc:
            raise VoiceUnavailable("NeMo cannot load {}: {}".format(loading, exc)) from exc
        self._fp_runner: Any = None
        self._hg_runner: Any = None
        if self._fp_onnx or self._hg_onnx:
            from kiosk.inference import BackendUnavailable, ModelError, load_model

            try:
                if self._fp_onnx:
                    self._fp_runner = load_model(fastpitch, backend)
                if self._hg_onnx:
                    self._hg_runner = load_model(hifigan, backend)
            except (BackendUnavailable, ModelError) as exc:
                raise VoiceUnavailable("NeMo ONNX export cannot load: {}".format(exc)) from exc
        self.rate = int(sample_rate or self._config_rate() or 22050)
        self.name = "nemo:{}+{}".format(os.path.basename(fastpitch), os.path.basename(hifigan))
        self._files = "-".join(str(os.path.getsize(p)) for p in (fastpitch, hifigan))

    def _config_rate(self) -> int:
        """The rate the checkpoints were trained at: FastPitch's ``sample_rate``, else HiFi-GAN's (``.nemo``)."""
        for model in (self._spec_gen, self._vocoder):
            cfg = getattr(model, "cfg", None)
            rate = cfg.get("sample_rate", 0) if cfg is not None and hasattr(cfg, "get") else 0
            if not rate and cfg is not None and hasattr(cfg, "get") and cfg.get("preprocessor") is not None:
                rate = cfg.get("preprocessor").get("sample_rate", 0)
            if rate:
                return int(rate)
        return 0

    @property
    def params(self) -> str:
        return "pace{:.3f} speaker{} rate{} files{}".format(self.pace, self.speaker, self.rate, self._files)

    def _onnx_spectrogram(self, tokens: np.ndarray) -> np.ndarray:
        n = tokens.shape[1]
        feeds: Dict[str, np.ndarray] = {}
        for name in self._fp_runner.input_names:
            if name == "text":
                feeds[name] = tokens.astype(np.int64)
            elif name == "pitch":
                feeds[name] = np.zeros((1, n), dtype=np.float32)
            elif name in ("pace", "volume"):
                feeds[name] = np.full((1, n), self.pace if name == "pace" else 1.0, dtype=np.float32)
            elif name == "speaker":
                feeds[name] = np.array([self.speaker or 0], dtype=np.int64)
            else:
                raise SynthesisError("FastPitch ONNX input {!r} is not one the kiosk knows how to fill".format(name))
        out = self._fp_runner.run(feeds)
        return out["spect"] if "spect" in out else next(iter(out.values()))

    def synthesize(self, text: str) -> Audio:
        spoken = numbers_to_hanzi(text).strip()
        if not spoken:
            return Audio(np.zeros(0, dtype=np.int16), self.rate)
        try:
            import torch  # type: ignore[import-not-found]

            with torch.no_grad():
                tokens = self._spec_gen.parse(spoken)
                if self._fp_runner is not None:
                    spec = self._onnx_spectrogram(tokens.cpu().numpy())
                else:
                    kwargs: Dict[str, Any] = {"tokens": tokens, "pace": self.pace}
                    if self.speaker is not None:
                        kwargs["speaker"] = self.speaker
                    spec = self._spec_gen.generate_spectrogram(**kwargs)
                if self._hg_runner is not None:
                    spec_np = spec.cpu().numpy() if hasattr(spec, "cpu") else np.asarray(spec)
                    out = self._hg_runner.run({self._hg_runner.input_names[0]: spec_np.astype(np.float32)})
                    audio = np.asarray(out["audio"] if "audio" in out else next(iter(out.values())))
                else:
                    spec_t = spec if hasattr(spec, "cpu") else torch.from_numpy(np.asarray(spec))
                    audio = self._vocoder.convert_spectrogram_to_audio(spec=spec_t).cpu().numpy()
        except SynthesisError:
            raise
        except Exception as exc:
            raise SynthesisError("NeMo failed for {!r}: {}".format(text, exc)) from exc
        return Audio(np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0), self.rate)

    def __repr__(self) -> str:
        return "NemoVoice({!r}, {!r}, {})".format(self.fastpitch_path, self.hifigan_path, self.params)
