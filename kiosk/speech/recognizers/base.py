"""The one interface every speech recognizer runs behind, and what the backends share.

* :class:`Recognizer` — ``recognize(samples_16k) -> Recognition``; a backend whose library or model is
  missing raises :class:`RecognizerUnavailable` saying how to install it (never an ImportError at import).
* :class:`RecognizerSpec` — what a backend factory of the registry (:mod:`kiosk.speech.recognizers`) is given.
* Model folders: :func:`pick_file` and :func:`detect_model_kind` (which recognizer a folder is for).
* ONNX metadata read without loading the model (:func:`onnx_metadata`, :func:`metadata_gaps`), and the
  checks that refuse a file sherpa-onnx would exit() or crash the process on
  (:func:`check_sherpa_metadata`, :func:`check_online_encoder`).

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "INSTALL_SHERPA",
    "RATE",
    "Recognition",
    "Recognizer",
    "RecognizerSpec",
    "RecognizerUnavailable",
    "check_online_encoder",
    "check_sherpa_metadata",
    "detect_model_kind",
    "float16k",
    "import_sherpa",
    "metadata_gaps",
    "need_path",
    "onnx_metadata",
    "pick_file",
]

RATE = 16000
INSTALL_SHERPA = "pip install 'dabai-kiosk[sherpa]' (sherpa-onnx, Apache-2.0)"


class RecognizerUnavailable(RuntimeError):
    """No usable recognizer (library or model missing); the message says how to fix it."""


@dataclass(frozen=True)
class Recognition:
    """What a recognizer heard in one utterance."""

    text: str  # transcript ("" when nothing was recognized); for a keyword spotter, the keyword
    keyword: Optional[str] = None  # the keyword a spotter fired on (None for transcribers)
    confidence: Optional[float] = None  # 0..1 when the backend gives one
    ms: float = 0.0  # wall time of recognize()
    backend: str = ""


class Recognizer(ABC):
    """Turns one utterance (float32, 16 kHz mono, -1..1) into a :class:`Recognition`."""

    name = "recognizer"

    @abstractmethod
    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        """Recognize one utterance."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""


@dataclass(frozen=True)
class RecognizerSpec:
    """What a backend factory is given."""

    path: Optional[Path]  # the model folder / file (None: the backend finds its own)
    keywords: Sequence[str]
    threads: int = 1
    work_dir: Optional[str] = None


def need_path(spec: RecognizerSpec, what: str) -> Path:
    if spec.path is None:
        raise RecognizerUnavailable("no {} model found".format(what))
    return spec.path


def float16k(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    return np.ascontiguousarray(x, dtype=np.float32).reshape(-1)


def import_sherpa() -> Any:
    try:
        import sherpa_onnx
    except ImportError as exc:
        raise RecognizerUnavailable("sherpa-onnx is not installed: " + INSTALL_SHERPA) from exc
    return sherpa_onnx


# ---------------------------------------------------------------------------------- model folders


def pick_file(folder: Path, patterns: Sequence[str], prefer: Sequence[str] = ("int8",)) -> Optional[Path]:
    """The best file in ``folder`` matching one of ``patterns`` (preferring names with ``prefer``)."""
    found: List[Path] = []
    for pattern in patterns:
        found.extend(sorted(p for p in folder.glob(pattern) if p.is_file()))
    if not found:
        return None
    for word in prefer:
        for p in found:
            if word in p.name:
                return p
    return found[0]


def detect_model_kind(path: Path) -> Optional[str]:
    """``kws``, ``streaming``, ``transducer``, ``whisper``, ``sense_voice``, ``paraformer``, ``nemo_ctc``
    or ``nemo`` from the files in a model folder (or a ``.nemo`` file); None when it is none of these."""
    if path.is_file():
        return "nemo" if path.suffix == ".nemo" else None
    if not path.is_dir():
        return None
    name = path.name.lower()
    files = {p.name for p in path.iterdir() if p.is_file()}
    has = lambda word: any(word in f and f.endswith(".onnx") for f in files)  # noqa: E731
    tokens = any(f.endswith("tokens.txt") for f in files)
    if not tokens:
        return "nemo" if any(f.endswith(".nemo") for f in files) else None
    if has("encoder") and has("decoder") and has("joiner"):
        if "kws" in name:
            return "kws"
        # a streaming (online) encoder, whatever the folder is called, is for the online recognizer
        enc = pick_file(path, ["encoder*.onnx"])
        meta = onnx_metadata(enc) if enc is not None else None
        return "streaming" if meta and "decode_chunk_len" in meta else "transducer"
    if has("encoder") and has("decoder") and "whisper" in name:
        return "whisper"
    model = pick_file(path, ["model*.onnx"])
    if model is not None:
        meta = onnx_metadata(model)
        if meta:  # sense-voice carries language ids (lang_zh …) and with_itn; a paraformer does not
            if "lang_zh" in meta or "with_itn" in meta:
                return "sense_voice"
            # a NeMo CTC model exported for sherpa-onnx: its subsampling and normalization, no LFR
            return "nemo_ctc" if "normalize_type" in meta and "lfr_window_size" not in meta else "paraformer"
        return "sense_voice" if "sense" in name else "paraformer"
    return None


# ---------------------------------------------------------------------------------- ONNX metadata


def _varint(fh: Any) -> Optional[int]:
    """One protobuf varint from a binary file, None at the end of the file or on a bad one."""
    shift = value = 0
    while shift < 64:
        b = fh.read(1)
        if not b:
            return None
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
    return None


def _protobuf_fields(fh: Any, size: int, want: int) -> Optional[List[bytes]]:
    """The length-delimited fields numbered ``want`` of one protobuf message (``size`` bytes from
    ``fh``'s position), skipping the others without reading them; None when it is not protobuf."""
    end = fh.tell() + size
    found: List[bytes] = []
    while fh.tell() < end:
        tag = _varint(fh)
        if tag is None or tag >> 3 == 0:
            return None
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            if _varint(fh) is None:
                return None
        elif wire in (1, 5):
            fh.seek(8 if wire == 1 else 4, os.SEEK_CUR)
        elif wire == 2:
            n = _varint(fh)
            if n is None or fh.tell() + n > end:
                return None
            if field == want:
                found.append(fh.read(n))
            else:
                fh.seek(n, os.SEEK_CUR)
        else:
            return None
    return found if fh.tell() == end else None


def onnx_metadata(path: Path) -> Optional[Dict[str, str]]:
    """The ``metadata_props`` of an ONNX file (ModelProto field 14: key = 1, value = 2), read
    without loading the model (the graph is skipped); None when the file is not ONNX protobuf."""
    import io

    try:
        with open(str(path), "rb") as fh:
            entries = _protobuf_fields(fh, os.fstat(fh.fileno()).st_size, 14)
    except OSError:
        return None
    if entries is None:
        return None
    meta: Dict[str, str] = {}
    for entry in entries:
        keys = _protobuf_fields(io.BytesIO(entry), len(entry), 1)
        values = _protobuf_fields(io.BytesIO(entry), len(entry), 2)
        if not keys or values is None:
            return None
        meta[keys[-1].decode("utf-8", "replace")] = values[-1].decode("utf-8", "replace") if values else ""
    return meta


def metadata_gaps(model: "Union[str, Path]", keys: Sequence[str]) -> Tuple[Dict[str, str], List[str]]:
    """An ONNX file's metadata and which of ``keys`` it lacks (sherpa-onnx exit()s on a missing one).
    A file that cannot be parsed here lacks nothing: sherpa-onnx's own (catchable) error says why."""
    meta = onnx_metadata(Path(model))
    if meta is None:
        return {}, []
    return meta, [k for k in keys if k not in meta]


# ---------------------------------------------------------------------------------- sherpa-onnx checks


#: metadata sherpa-onnx's C++ loader reads with SHERPA_ONNX_READ_META_DATA: a model without one of
#: them makes it print "'…' does not exist in the metadata" and exit() the whole process.
_SHERPA_META = {
    "paraformer": ("vocab_size", "lfr_window_size", "lfr_window_shift", "neg_mean", "inv_stddev"),
    "sense_voice": ("vocab_size", "lfr_window_size", "lfr_window_shift", "normalize_samples", "with_itn", "without_itn",
                    "lang_auto", "lang_zh", "lang_en", "lang_ja", "lang_ko", "lang_yue", "neg_mean", "inv_stddev"),
    "transducer-decoder": ("vocab_size", "context_size"),
    # a NeMo transducer exported for sherpa-onnx carries its keys in the encoder (offline-transducer-nemo-model.cc)
    "nemo_transducer-encoder": ("vocab_size", "subsampling_factor", "normalize_type", "pred_rnn_layers", "pred_hidden"),
    "nemo_ctc": ("vocab_size", "subsampling_factor", "normalize_type"),
    "whisper": ("n_mels", "n_text_layer", "n_text_ctx", "n_text_state", "n_vocab", "sot", "eot", "blank_id", "translate",
                "transcribe", "is_multilingual", "no_timestamps", "no_speech", "sot_sequence"),
    "whisper-multilingual": ("all_language_tokens", "all_language_codes"),
}

#: the streaming encoders sherpa-onnx's OnlineTransducerModel knows (encoder metadata ``model_type``)
#: and the keys each one's InitEncoder reads (online-*-transducer-model.cc; ebranchformer: not checked)
_ONLINE_ENCODER_META = {
    "lstm": ("num_encoder_layers", "T", "decode_chunk_len", "rnn_hidden_size", "d_model"),
    "conformer": ("num_encoder_layers", "T", "decode_chunk_len", "left_context", "encoder_dim", "pad_length",
                  "cnn_module_kernel"),
    "zipformer": ("encoder_dims", "attention_dims", "num_encoder_layers", "cnn_module_kernels", "left_context_len",
                  "T", "decode_chunk_len"),
    "zipformer2": ("encoder_dims", "query_head_dims", "value_head_dims", "num_heads", "num_encoder_layers",
                   "cnn_module_kernels", "left_context_len", "T", "decode_chunk_len"),
    "ebranchformer": (),
}


def check_online_encoder(model: Optional[Path]) -> None:
    """Raise :class:`RecognizerUnavailable` for a streaming encoder sherpa-onnx would crash on: no or
    an unknown ``model_type`` (a null model, then a segfault) or a missing key (exit())."""
    meta = onnx_metadata(model) if model is not None else None
    if meta is None:  # not parseable here: sherpa-onnx's own (catchable) error says why
        return
    model_type = meta.get("model_type", "")
    if model_type not in _ONLINE_ENCODER_META:
        raise RecognizerUnavailable("{} is not a sherpa-onnx streaming encoder: its metadata has {} (known: {})".format(
            model, "model_type {!r}".format(model_type) if model_type else "no model_type", ", ".join(_ONLINE_ENCODER_META)))
    missing = [k for k in _ONLINE_ENCODER_META[model_type] if k not in meta]
    if missing:
        raise RecognizerUnavailable("{} is not a sherpa-onnx streaming {} encoder: its metadata lacks {}".format(
            model, model_type, ", ".join(missing)))


def check_sherpa_metadata(model: Optional[Path], kind: str, meta: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Raise :class:`RecognizerUnavailable` for an ONNX file sherpa-onnx would exit() on; else its
    metadata (``meta``: already read, to check other keys of the same file)."""
    if model is None:
        return {}
    if meta is None:
        meta, missing = metadata_gaps(model, _SHERPA_META[kind])
    else:
        missing = [k for k in _SHERPA_META[kind] if k not in meta]
    if missing:
        raise RecognizerUnavailable("{} is not a sherpa-onnx {} model: its metadata lacks {}".format(
            model, kind.split("-")[0], ", ".join(missing)))
    return meta
