"""Speech recognition behind one interface: ``Recognizer.recognize(samples_16k) -> Recognition``.

``create_recognizer(backend="auto", ...)`` builds the configured recognizer from the registry
:data:`BACKENDS` (backend name → factory). Each backend is a module of its own that imports its
library only when a recognizer is built; a missing library or model raises
:class:`RecognizerUnavailable` saying how to install it, and ``auto`` goes on to the next installed
model. The interface and what the backends share are in :mod:`kiosk.speech.recognizers.base`.

Backends:

* ``sherpa-kws`` — :class:`~kiosk.speech.recognizers.sherpa_kws.SherpaKeywordSpotter`: a sherpa-onnx
  streaming zipformer keyword spotter (``sherpa_onnx.KeywordSpotter``) with the kiosk's own keywords
  (the request and help phrases, spelled as ``sherpa_onnx.text2token`` would).
* ``sherpa-asr`` — :class:`~kiosk.speech.recognizers.sherpa_offline.SherpaOfflineRecognizer`: a
  sherpa-onnx offline recognizer (``sherpa_onnx.OfflineRecognizer.from_transducer / from_paraformer /
  from_sense_voice / from_nemo_ctc / from_whisper``), or
  :class:`~kiosk.speech.recognizers.sherpa_streaming.SherpaStreamingRecognizer`: a streaming transducer
  (``sherpa_onnx.OnlineRecognizer.from_transducer``), the kind told by the files in the model folder.
* ``nemo`` — :class:`~kiosk.speech.recognizers.nemo.NemoRecognizer`: a NeMo ``.nemo`` checkpoint
  (``ASRModel.restore_from(path).transcribe([...])``); NeMo is heavy and optional.
* ``dabai-kws`` — the project's own keyword model for the request phrase (:mod:`kiosk.speech.kws`,
  ``engines/keyword.onnx``); ``auto`` falls back to it when no other model is installed.

Model folders are the official sherpa-onnx release archives, unpacked under
``$DABAI_HOME/models/asr/`` (or any folder given as ``listen.model``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .base import (
    Recognition,
    Recognizer,
    RecognizerSpec,
    RecognizerUnavailable,
    detect_model_kind,
    metadata_gaps,
    need_path,
    onnx_metadata,
)

__all__ = [
    "BACKENDS",
    "Recognition",
    "Recognizer",
    "RecognizerSpec",
    "RecognizerUnavailable",
    "create_recognizer",
    "detect_model_kind",
    "metadata_gaps",
    "onnx_metadata",
    "register_backend",
]

MODEL_HINT = ("unpack an official sherpa-onnx model archive (https://github.com/k2-fsa/sherpa-onnx/releases, "
              "tags kws-models / asr-models) into {} or set listen.model to its folder")


# Each factory imports its backend module when it is called: importing this package imports neither
# sherpa-onnx nor NeMo, nor the backend modules.
def _sherpa_kws(spec: RecognizerSpec) -> Recognizer:
    from .sherpa_kws import SherpaKeywordSpotter

    return SherpaKeywordSpotter(str(need_path(spec, "sherpa-onnx keyword-spotter")), spec.keywords,
                                threads=spec.threads, work_dir=spec.work_dir)


def _sherpa_asr(spec: RecognizerSpec) -> Recognizer:
    path = need_path(spec, "sherpa-onnx recognizer")
    if detect_model_kind(path) == "streaming":
        from .sherpa_streaming import SherpaStreamingRecognizer

        return SherpaStreamingRecognizer(str(path), threads=spec.threads)
    from .sherpa_offline import SherpaOfflineRecognizer

    return SherpaOfflineRecognizer(str(path), threads=spec.threads)


def _nemo(spec: RecognizerSpec) -> Recognizer:
    from .nemo import NemoRecognizer

    return NemoRecognizer(str(need_path(spec, "NeMo .nemo")))


def _dabai_kws(spec: RecognizerSpec) -> Recognizer:
    from kiosk.speech.kws import create  # the project's own keyword model, engines/keyword.onnx

    return create(spec)


#: backend name → factory. The project's keyword model replaces ``dabai-kws`` when it exists.
BACKENDS: Dict[str, Callable[[RecognizerSpec], Recognizer]] = {
    "sherpa-kws": _sherpa_kws,
    "sherpa-asr": _sherpa_asr,
    "nemo": _nemo,
    "dabai-kws": _dabai_kws,
}

_KIND_BACKEND = {"kws": "sherpa-kws", "streaming": "sherpa-asr", "transducer": "sherpa-asr", "nemo_ctc": "sherpa-asr",
                 "paraformer": "sherpa-asr", "sense_voice": "sherpa-asr", "whisper": "sherpa-asr", "nemo": "nemo"}
# auto: a keyword spotter (made for this job, fastest) before full transcribers
_AUTO_ORDER = ("kws", "sense_voice", "paraformer", "streaming", "transducer", "nemo_ctc", "whisper", "nemo")


def register_backend(name: str, factory: Callable[[RecognizerSpec], Recognizer]) -> None:
    """Add or replace a backend (the seam for the project's own keyword model)."""
    BACKENDS[name] = factory


def _installed(models_dir: Path) -> List[Path]:
    root = models_dir / "asr"
    if not root.is_dir():
        return []
    found = [p for p in sorted(root.iterdir()) if detect_model_kind(p)]
    return sorted(found, key=lambda p: _AUTO_ORDER.index(detect_model_kind(p) or "nemo"))


def create_recognizer(backend: str = "auto", model: str = "", models_dir: Optional[Path] = None,
                      keywords: Sequence[str] = (), threads: int = 1, work_dir: Optional[str] = None) -> Recognizer:
    """Build the configured recognizer. ``auto`` uses ``model`` if given, else the first model
    folder found under ``models_dir/asr`` (keyword spotters first). Raises
    :class:`RecognizerUnavailable` when nothing usable is installed."""
    where = str((models_dir or Path("models")) / "asr")
    if backend == "none":
        raise RecognizerUnavailable("speech recognition is off (listen.recognizer = none)")
    path: Optional[Path] = Path(model).expanduser() if model else None
    if path is not None and not path.exists():
        raise RecognizerUnavailable("recognizer model {} not found (listen.model)".format(path))
    if backend == "auto":
        candidates = [path] if path is not None else _installed(models_dir) if models_dir else []
        if not candidates:  # no sherpa/NeMo model installed: the project's own keyword model (ships in engines/)
            try:
                return BACKENDS["dabai-kws"](RecognizerSpec(None, keywords, threads, work_dir))
            except RecognizerUnavailable as exc:
                raise RecognizerUnavailable("no speech recognizer installed ({}): {}".format(
                    exc, MODEL_HINT.format(where))) from exc
        errors = []
        for cand in candidates:
            kind = detect_model_kind(cand)
            if kind is None:
                errors.append("{}: not a model folder this kiosk knows".format(cand))
                continue
            try:
                return BACKENDS[_KIND_BACKEND[kind]](RecognizerSpec(cand, keywords, threads, work_dir))
            except RecognizerUnavailable as exc:
                errors.append(str(exc))
        raise RecognizerUnavailable("; ".join(errors))
    if backend not in BACKENDS:
        raise RecognizerUnavailable("unknown recognizer {!r} (known: auto, none, {})".format(backend, ", ".join(BACKENDS)))
    if path is None and backend != "dabai-kws" and models_dir is not None:
        for cand in _installed(models_dir):
            if _KIND_BACKEND.get(detect_model_kind(cand) or "") == backend:
                path = cand
                break
        if path is None:
            raise RecognizerUnavailable("no {} model installed: {}".format(backend, MODEL_HINT.format(where)))
    return BACKENDS[backend](RecognizerSpec(path, keywords, threads, work_dir))
