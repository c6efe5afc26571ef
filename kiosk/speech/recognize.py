"""Speech recognition behind one interface: ``Recognizer.recognize(samples_16k) -> Recognition``.

Backends (each imports its library only when built; a missing library or model raises
:class:`RecognizerUnavailable` saying how to install it):

* ``sherpa-kws`` — :class:`SherpaKeywordSpotter`: a sherpa-onnx streaming zipformer keyword
  spotter (``sherpa_onnx.KeywordSpotter``) with the kiosk's own keywords (the request and help
  phrases, tokenized with ``sherpa_onnx.text2token``).
* ``sherpa-asr`` — :class:`SherpaOfflineRecognizer`: a sherpa-onnx offline recognizer
  (``sherpa_onnx.OfflineRecognizer.from_transducer / from_paraformer / from_sense_voice /
  from_nemo_ctc / from_whisper``), or :class:`SherpaStreamingRecognizer`: a streaming transducer
  (``sherpa_onnx.OnlineRecognizer.from_transducer``), the kind told by the files in the model folder.
* ``nemo`` — :class:`NemoRecognizer`: a NeMo ``.nemo`` checkpoint
  (``ASRModel.restore_from(path).transcribe([...])``); NeMo is heavy and optional.
* ``dabai-kws`` — the project's own keyword model for the request phrase (:mod:`kiosk.speech.kws`,
  ``engines/keyword.onnx``); ``auto`` falls back to it when no other model is installed.

Model folders are the official sherpa-onnx release archives, unpacked under
``$DABAI_HOME/models/asr/`` (or any folder given as ``listen.model``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "BACKENDS",
    "NemoRecognizer",
    "Recognition",
    "Recognizer",
    "RecognizerUnavailable",
    "SherpaKeywordSpotter",
    "SherpaOfflineRecognizer",
    "SherpaStreamingRecognizer",
    "create_recognizer",
    "detect_model_kind",
    "metadata_gaps",
    "onnx_metadata",
    "register_backend",
    "spell_keywords",
]

log = logging.getLogger(__name__)

RATE = 16000
INSTALL_SHERPA = "pip install 'dabai-kiosk[sherpa]' (sherpa-onnx, Apache-2.0)"
MODEL_HINT = ("unpack an official sherpa-onnx model archive (https://github.com/k2-fsa/sherpa-onnx/releases, "
              "tags kws-models / asr-models) into {} or set listen.model to its folder")


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


def _float16k(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    return np.ascontiguousarray(x, dtype=np.float32).reshape(-1)


def _import_sherpa() -> Any:
    try:
        import sherpa_onnx
    except ImportError as exc:
        raise RecognizerUnavailable("sherpa-onnx is not installed: " + INSTALL_SHERPA) from exc
    return sherpa_onnx


# ---------------------------------------------------------------------------------- model folders


def _pick(folder: Path, patterns: Sequence[str], prefer: Sequence[str] = ("int8",)) -> Optional[Path]:
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
        enc = _pick(path, ["encoder*.onnx"])
        meta = onnx_metadata(enc) if enc is not None else None
        return "streaming" if meta and "decode_chunk_len" in meta else "transducer"
    if has("encoder") and has("decoder") and "whisper" in name:
        return "whisper"
    model = _pick(path, ["model*.onnx"])
    if model is not None:
        meta = onnx_metadata(model)
        if meta:  # sense-voice carries language ids (lang_zh …) and with_itn; a paraformer does not
            if "lang_zh" in meta or "with_itn" in meta:
                return "sense_voice"
            # a NeMo CTC model exported for sherpa-onnx: its subsampling and normalization, no LFR
            return "nemo_ctc" if "normalize_type" in meta and "lfr_window_size" not in meta else "paraformer"
        return "sense_voice" if "sense" in name else "paraformer"
    return None


# ---------------------------------------------------------------------------------- sherpa-onnx


def _kws_tokens_type(tokens: Path) -> str:
    """How a keyword spotter's tokens spell Mandarin: ``ppinyin`` (initials + tonal finals, the
    wenetspeech KWS models), ``phone+ppinyin`` (the zh-en models) or ``cjkchar``."""
    syms = set(_read_tokens(tokens))
    if (tokens.parent / "en.phone").exists() or (tokens.parent / "lexicon.txt").exists():
        return "phone+ppinyin"
    if {"zh", "ch", "sh"} & syms or any(s in syms for s in ("ǎo", "ài", "ǐ")):
        return "ppinyin"
    return "cjkchar"


def _read_tokens(tokens: Path) -> List[str]:
    """The symbols of a sherpa-onnx ``tokens.txt`` (``symbol id`` a line)."""
    text = tokens.read_text(encoding="utf-8", errors="replace")
    return [line.split()[0] for line in text.splitlines() if line.split()]


def _ppinyin(text: str) -> List[str]:
    """Mandarin as partial pinyin (initial + tonal final a syllable), as ``sherpa_onnx.text2token``
    spells it for ``ppinyin`` tokens."""
    from pypinyin import pinyin
    from pypinyin.contrib.tone_convert import to_finals_tone, to_initials

    out: List[str] = []
    for syl in (x[0] for x in pinyin(text)):
        initial, final = to_initials(syl, strict=False), to_finals_tone(syl, strict=False)
        out.extend([p for p in (initial, final) if p] or [syl])
    return out


def _is_cjk(text: str) -> bool:
    return bool(text) and all("\u4e00" <= ch <= "\u9fff" for ch in text)


def spell_keywords(phrases: Sequence[str], tokens: Path, kind: str,
                   lexicon: Optional[Path] = None) -> Tuple[List[Tuple[str, List[str]]], List[str]]:
    """Each phrase in a keyword spotter's tokens: ``([(phrase, tokens), ...], [why a phrase was left out, ...])``.

    The same spelling as ``sherpa_onnx.text2token`` (``cjkchar``, ``ppinyin``, ``phone+ppinyin``), done
    here because text2token needs sentencepiece even for Mandarin and silently drops a phrase with a
    token the model lacks (shifting every later phrase onto the wrong keyword). Punctuation is not
    spoken and is left out; a phrase with a token outside ``tokens.txt`` is reported, never written
    (sherpa-onnx exit()s the process on one)."""
    import unicodedata

    table = set(_read_tokens(tokens))
    words: Dict[str, List[str]] = {}
    if kind == "phone+ppinyin" and lexicon is not None and lexicon.is_file():
        for line in lexicon.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                words.setdefault(parts[0], parts[1:])
    spelled: List[Tuple[str, List[str]]] = []
    skipped: List[str] = []
    for phrase in phrases:
        spoken = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in phrase)
        if kind == "cjkchar":
            toks = list("".join(spoken.split()))
        elif kind == "ppinyin":
            toks = _ppinyin("".join(spoken.split()))
        elif kind == "phone+ppinyin":
            toks = []
            for word in spoken.split():
                if word in words or word.upper() in words:
                    toks.extend(words.get(word) or words[word.upper()])
                elif _is_cjk(word):
                    toks.extend(_ppinyin(word))
                else:
                    toks.append(word)  # reported below as outside the tokens
        else:
            raise ValueError("unknown tokens type {!r}".format(kind))
        oov = [t for t in toks if t not in table]
        if not toks or oov:
            skipped.append("{!r}: {} not in tokens.txt".format(phrase, " ".join(dict.fromkeys(oov)) or "no tokens"))
        else:
            spelled.append((phrase, toks))
    return spelled, skipped


class SherpaKeywordSpotter(Recognizer):
    """sherpa-onnx keyword spotter (streaming zipformer transducer) with the kiosk's keywords.

    ``keywords`` are Mandarin phrases; each becomes a line ``<tokens> @<phrase>`` of a keywords
    file written next to the cache (:func:`spell_keywords` spells them in the model's tokens, as
    ``sherpa_onnx.text2token`` would). A keyword found in the utterance is returned as
    ``Recognition(text=phrase, keyword=phrase)``; a phrase the model cannot spell is left out (logged).
    """

    def __init__(self, model_dir: str, keywords: Sequence[str], threads: int = 1, score: float = 1.5,
                 threshold: float = 0.25, work_dir: Optional[str] = None) -> None:
        sherpa = _import_sherpa()
        folder = Path(model_dir)
        enc = _pick(folder, ["encoder*.onnx"], prefer=("chunk-16-left-64.int8", "int8"))
        dec = _pick(folder, ["decoder*.onnx"], prefer=("chunk-16-left-64", ""))
        join = _pick(folder, ["joiner*.onnx"], prefer=("chunk-16-left-64.int8", "int8"))
        tokens = folder / "tokens.txt"
        if not (enc and dec and join and tokens.is_file()):
            raise RecognizerUnavailable("{} is not a sherpa-onnx keyword-spotter folder (needs encoder*.onnx, "
                                        "decoder*.onnx, joiner*.onnx, tokens.txt)".format(folder))
        phrases = [k for k in dict.fromkeys(k.strip() for k in keywords) if k]
        if not phrases:
            raise ValueError("no keywords given")
        kind = _kws_tokens_type(tokens)
        lexicon = folder / "en.phone" if (folder / "en.phone").exists() else folder / "lexicon.txt"
        try:
            spelled, skipped = spell_keywords(phrases, tokens, kind, lexicon if kind == "phone+ppinyin" else None)
        except ImportError as exc:  # pypinyin, for ppinyin tokens
            raise RecognizerUnavailable("cannot spell the keywords in {}'s tokens ({}): {}".format(folder, kind, exc)) from exc
        if skipped:
            log.warning("sherpa-kws %s: keywords left out (%s tokens): %s", folder.name, kind, "; ".join(skipped))
        if not spelled:
            raise RecognizerUnavailable("none of the keywords can be spelled in {}'s tokens ({}): {}".format(
                folder, kind, "; ".join(skipped)))
        # one line a keyword: ``tokens @label``; the label must be one word (sherpa-onnx splits the line
        # on whitespace and exit()s on a word it cannot find), so it is the phrase without spaces
        self.labels: Dict[str, str] = {}
        lines = []
        for phrase, toks in spelled:
            label = "".join(phrase.split())
            self.labels.setdefault(label, phrase)
            lines.append("{} @{}".format(" ".join(toks), label))
        # sherpa-onnx segfaults (no model_type) or exit()s (a missing key) on an encoder or decoder
        # without its metadata: refuse such files first
        _check_online_encoder(enc)
        _check_sherpa_metadata(dec, "transducer-decoder")
        fd, kw_path = tempfile.mkstemp(prefix="dabai-keywords-", suffix=".txt", dir=work_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        self.keywords_file = kw_path
        self.keywords = [phrase for phrase, _ in spelled]
        try:
            self.kws = sherpa.KeywordSpotter(tokens=str(tokens), encoder=str(enc), decoder=str(dec), joiner=str(join),
                                             keywords_file=kw_path, num_threads=max(1, threads),
                                             keywords_score=score, keywords_threshold=threshold)
        except Exception as exc:
            self.close()
            raise RecognizerUnavailable("sherpa-onnx could not load the keyword spotter in {}: {}".format(folder, exc)) from exc
        self.name = "sherpa-kws:{}".format(folder.name)

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        x = _float16k(samples_16k)
        stream = self.kws.create_stream()
        stream.accept_waveform(RATE, x)
        stream.accept_waveform(RATE, np.zeros(int(0.5 * RATE), dtype=np.float32))  # flush the streaming encoder
        stream.input_finished()
        found: List[str] = []
        while self.kws.is_ready(stream):
            self.kws.decode_stream(stream)
            hit = self.kws.get_result(stream)
            if hit:
                found.append(self.labels.get(hit, hit))
                self.kws.reset_stream(stream)
        ms = (time.perf_counter() - t0) * 1000.0
        keyword = found[0] if found else None
        return Recognition(text=keyword or "", keyword=keyword, confidence=1.0 if keyword else 0.0, ms=ms, backend=self.name)

    def close(self) -> None:
        try:
            os.unlink(self.keywords_file)
        except OSError:
            pass


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


def _check_online_encoder(model: Optional[Path]) -> None:
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


def metadata_gaps(model: "Union[str, Path]", keys: Sequence[str]) -> Tuple[Dict[str, str], List[str]]:
    """An ONNX file's metadata and which of ``keys`` it lacks (sherpa-onnx exit()s on a missing one).
    A file that cannot be parsed here lacks nothing: sherpa-onnx's own (catchable) error says why."""
    meta = onnx_metadata(Path(model))
    if meta is None:
        return {}, []
    return meta, [k for k in keys if k not in meta]


def _check_sherpa_metadata(model: Optional[Path], kind: str, meta: Optional[Dict[str, str]] = None) -> Dict[str, str]:
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


def _check_whisper(encoder: Path) -> None:
    """A whisper encoder sherpa-onnx would exit() on: metadata missing, or a multilingual model without
    Mandarin (sherpa-onnx exits on the first utterance, not at load, for a language it lacks)."""
    meta = _check_sherpa_metadata(encoder, "whisper")
    if meta.get("is_multilingual", "0") not in ("", "0"):
        _check_sherpa_metadata(encoder, "whisper-multilingual", meta)
        if "zh" not in meta["all_language_codes"].split(","):
            raise RecognizerUnavailable("{} is a whisper model without Mandarin (zh not among its languages)".format(encoder))


class SherpaOfflineRecognizer(Recognizer):
    """A sherpa-onnx offline (non-streaming) recognizer on one utterance at a time."""

    def __init__(self, model_dir: str, kind: str = "auto", threads: int = 2) -> None:
        sherpa = _import_sherpa()
        folder = Path(model_dir)
        kind = detect_model_kind(folder) if kind == "auto" else kind
        tokens = _pick(folder, ["tokens.txt", "*tokens.txt"], prefer=())
        if tokens is None or kind not in ("transducer", "paraformer", "sense_voice", "whisper", "nemo_ctc"):
            raise RecognizerUnavailable("{} is not a sherpa-onnx offline model folder (transducer, paraformer, "
                                        "sense-voice, NeMo CTC or whisper with tokens.txt)".format(folder))
        threads = max(1, threads)
        R = sherpa.OfflineRecognizer

        def need(patterns: Sequence[str], prefer: Sequence[str] = ("int8",)) -> str:
            found = _pick(folder, patterns, prefer)
            if found is None:
                raise RecognizerUnavailable("{} has no {} for a sherpa-onnx {} model".format(folder, " or ".join(patterns), kind))
            return str(found)

        transducer_type = "transducer"
        # sherpa-onnx exit()s the process on a model without its metadata: refuse such a file first
        if kind in ("paraformer", "sense_voice", "nemo_ctc"):
            _check_sherpa_metadata(Path(need(["model*.onnx"])), kind)
        elif kind == "transducer":
            encoder = Path(need(["encoder*.onnx"]))
            encoder_meta = onnx_metadata(encoder) or {}
            if "pred_rnn_layers" in encoder_meta:  # NeMo (``nemo_transducer``), not icefall
                transducer_type = "nemo_transducer"
                _check_sherpa_metadata(encoder, "nemo_transducer-encoder", encoder_meta)
            else:
                _check_sherpa_metadata(Path(need(["decoder*.onnx"], prefer=())), "transducer-decoder")
        elif kind == "whisper":
            _check_whisper(Path(need(["*encoder*.onnx"])))
        try:
            if kind == "transducer":
                self.rec = R.from_transducer(encoder=need(["encoder*.onnx"]), decoder=need(["decoder*.onnx"], prefer=()),
                                             joiner=need(["joiner*.onnx"]), tokens=str(tokens), num_threads=threads,
                                             model_type=transducer_type)
            elif kind == "paraformer":
                self.rec = R.from_paraformer(paraformer=need(["model*.onnx"]), tokens=str(tokens), num_threads=threads)
            elif kind == "nemo_ctc":
                self.rec = R.from_nemo_ctc(model=need(["model*.onnx"]), tokens=str(tokens), num_threads=threads)
            elif kind == "sense_voice":
                self.rec = R.from_sense_voice(model=need(["model*.onnx"]), tokens=str(tokens),
                                              num_threads=threads, language="zh", use_itn=False)
            else:
                self.rec = R.from_whisper(encoder=need(["*encoder*.onnx"]), decoder=need(["*decoder*.onnx"]),
                                          tokens=str(tokens), language="zh", num_threads=threads)
        except RecognizerUnavailable:
            raise
        except Exception as exc:  # files missing or not loadable
            raise RecognizerUnavailable("sherpa-onnx could not load the {} model in {}: {}".format(kind, folder, exc)) from exc
        self.kind = transducer_type if kind == "transducer" else kind
        self.name = "sherpa-{}:{}".format(self.kind, folder.name)

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        stream = self.rec.create_stream()
        stream.accept_waveform(RATE, _float16k(samples_16k))
        self.rec.decode_stream(stream)
        text = str(stream.result.text).strip()
        return Recognition(text=text, ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)


class SherpaStreamingRecognizer(Recognizer):
    """A sherpa-onnx streaming transducer (zipformer, zipformer2, conformer or lstm encoder; e.g. the
    ``sherpa-onnx-streaming-zipformer-*`` archives) through ``OnlineRecognizer``, on one utterance at
    a time as the VAD cuts them: the audio, then tail padding so the last chunk is decoded."""

    def __init__(self, model_dir: str, threads: int = 1) -> None:
        sherpa = _import_sherpa()
        folder = Path(model_dir)
        enc = _pick(folder, ["encoder*.onnx"])
        dec = _pick(folder, ["decoder*.onnx"], prefer=())  # the int8 decoder costs accuracy and saves little
        join = _pick(folder, ["joiner*.onnx"])
        tokens = folder / "tokens.txt"
        if not (enc and dec and join and tokens.is_file()):
            raise RecognizerUnavailable("{} is not a sherpa-onnx streaming transducer folder (needs encoder*.onnx, "
                                        "decoder*.onnx, joiner*.onnx, tokens.txt)".format(folder))
        # sherpa-onnx segfaults or exit()s on an encoder or decoder without its metadata: refuse it first
        _check_online_encoder(enc)
        _check_sherpa_metadata(dec, "transducer-decoder")
        try:
            self.rec = sherpa.OnlineRecognizer.from_transducer(
                tokens=str(tokens), encoder=str(enc), decoder=str(dec), joiner=str(join), num_threads=max(1, threads),
                sample_rate=RATE, feature_dim=80, decoding_method="greedy_search")
        except Exception as exc:
            raise RecognizerUnavailable("sherpa-onnx could not load the streaming model in {}: {}".format(folder, exc)) from exc
        self.name = "sherpa-streaming:{}".format(folder.name)

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        stream = self.rec.create_stream()
        stream.accept_waveform(RATE, _float16k(samples_16k))
        stream.accept_waveform(RATE, np.zeros(int(0.5 * RATE), dtype=np.float32))  # flush the last chunk
        stream.input_finished()
        while self.rec.is_ready(stream):
            self.rec.decode_stream(stream)
        text = str(self.rec.get_result(stream)).strip()
        return Recognition(text=text, ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)


# ---------------------------------------------------------------------------------- NeMo


class NemoRecognizer(Recognizer):
    """A NeMo ASR checkpoint (``.nemo``). NeMo (and torch) are imported only here, when built.

    Runs CTC, RNNT and hybrid models alike through ``model.transcribe([wav])`` (NeMo 1.x: strings, or
    ``(best, all)`` for RNNT; NeMo 2.x/3.x: ``Hypothesis`` objects)."""

    def __init__(self, path: str, device: str = "auto") -> None:
        try:
            from nemo.collections.asr.models import ASRModel
        except Exception as exc:  # ImportError, or one of NeMo's many optional dependencies
            raise RecognizerUnavailable("NeMo is not installed ({}): pip install 'dabai-kiosk[nemo]' "
                                        "(heavy: torch + nemo_toolkit[asr])".format(exc)) from exc
        if not Path(path).is_file():
            raise RecognizerUnavailable("NeMo model {} not found".format(path))
        map_location = None if device == "auto" else device
        try:  # a truncated or foreign file raises whatever tarfile / torch / hydra raise
            model = ASRModel.restore_from(str(path), map_location=map_location)
        except Exception as exc:
            raise RecognizerUnavailable("NeMo cannot load {}: {}: {}".format(path, type(exc).__name__, exc)) from exc
        if not callable(getattr(model, "transcribe", None)):  # e.g. a FastPitch .nemo given as listen.model
            raise RecognizerUnavailable("{} is a NeMo {}, not a speech recognizer (ASR) model".format(
                path, type(model).__name__))
        model.eval()
        self.model = model
        self.name = "nemo:{}".format(Path(path).name)
        try:  # NeMo >= 1.21 can hide its per-call progress bar
            import inspect

            self._quiet = {"verbose": False} if "verbose" in inspect.signature(model.transcribe).parameters else {}
        except (TypeError, ValueError):
            self._quiet = {}

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        from kiosk.audio.wavfile import write_wav

        t0 = time.perf_counter()
        x = _float16k(samples_16k)
        if x.size == 0:  # NeMo's feature extractor fails on an empty file
            return Recognition(text="", ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)
        fd, wav = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        try:
            write_wav(wav, x, RATE)
            out: Any = self.model.transcribe([wav], batch_size=1, **self._quiet)
        finally:
            os.unlink(wav)
        if isinstance(out, tuple):  # RNNT models of NeMo 1.x: (best, all)
            out = out[0]
        first = out[0] if out else ""
        if isinstance(first, (list, tuple)):  # n-best of one file
            first = first[0] if first else ""
        text = getattr(first, "text", first)
        return Recognition(text=str(text or "").strip(), ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)


# ---------------------------------------------------------------------------------- factory


@dataclass(frozen=True)
class RecognizerSpec:
    """What a backend factory is given."""

    path: Optional[Path]  # the model folder / file (None: the backend finds its own)
    keywords: Sequence[str]
    threads: int = 1
    work_dir: Optional[str] = None


def _dabai_kws(spec: RecognizerSpec) -> Recognizer:
    from .kws import create  # the project's own keyword model, engines/keyword.onnx (kiosk/speech/kws.py)

    return create(spec)


def _sherpa_asr(path: Path, threads: int) -> Recognizer:
    if detect_model_kind(path) == "streaming":
        return SherpaStreamingRecognizer(str(path), threads=threads)
    return SherpaOfflineRecognizer(str(path), threads=threads)


def _need_path(spec: RecognizerSpec, what: str) -> Path:
    if spec.path is None:
        raise RecognizerUnavailable("no {} model found".format(what))
    return spec.path


#: backend name → factory. The project's keyword model replaces ``dabai-kws`` when it exists.
BACKENDS: Dict[str, Callable[[RecognizerSpec], Recognizer]] = {
    "sherpa-kws": lambda s: SherpaKeywordSpotter(str(_need_path(s, "sherpa-onnx keyword-spotter")), s.keywords,
                                                 threads=s.threads, work_dir=s.work_dir),
    "sherpa-asr": lambda s: _sherpa_asr(_need_path(s, "sherpa-onnx recognizer"), s.threads),
    "nemo": lambda s: NemoRecognizer(str(_need_path(s, "NeMo .nemo"))),
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
