"""``sherpa-asr`` on a non-streaming model: a sherpa-onnx offline recognizer
(``sherpa_onnx.OfflineRecognizer.from_transducer / from_paraformer / from_sense_voice / from_nemo_ctc /
from_whisper``), the kind told by the files in the model folder. sherpa-onnx is imported only when a
recognizer is built."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import (
    RATE,
    Recognition,
    Recognizer,
    RecognizerUnavailable,
    check_sherpa_metadata,
    detect_model_kind,
    float16k,
    import_sherpa,
    onnx_metadata,
    pick_file,
)

__all__ = ["SherpaOfflineRecognizer"]


def _check_whisper(encoder: Path) -> None:
    """A whisper encoder sherpa-onnx would exit() on: metadata missing, or a multilingual model without
    Mandarin (sherpa-onnx exits on the first utterance, not at load, for a language it lacks)."""
    meta = check_sherpa_metadata(encoder, "whisper")
    if meta.get("is_multilingual", "0") not in ("", "0"):
        check_sherpa_metadata(encoder, "whisper-multilingual", meta)
        if "zh" not in meta["all_language_codes"].split(","):
            raise RecognizerUnavailable("{} is a whisper model without Mandarin (zh not among its languages)".format(encoder))


class SherpaOfflineRecognizer(Recognizer):
    """A sherpa-onnx offline (non-streaming) recognizer on one utterance at a time."""

    def __init__(self, model_dir: str, kind: str = "auto", threads: int = 2) -> None:
        sherpa = import_sherpa()
        folder = Path(model_dir)
        kind = detect_model_kind(folder) if kind == "auto" else kind
        tokens = pick_file(folder, ["tokens.txt", "*tokens.txt"], prefer=())
        if tokens is None or kind not in ("transducer", "paraformer", "sense_voice", "whisper", "nemo_ctc"):
            raise RecognizerUnavailable("{} is not a sherpa-onnx offline model folder (transducer, paraformer, "
                                        "sense-voice, NeMo CTC or whisper with tokens.txt)".format(folder))
        threads = max(1, threads)
        R = sherpa.OfflineRecognizer

        def need(patterns: Sequence[str], prefer: Sequence[str] = ("int8",)) -> str:
            found = pick_file(folder, patterns, prefer)
            if found is None:
                raise RecognizerUnavailable("{} has no {} for a sherpa-onnx {} model".format(folder, " or ".join(patterns), kind))
            return str(found)

        transducer_type = "transducer"
        # sherpa-onnx exit()s the process on a model without its metadata: refuse such a file first
        if kind in ("paraformer", "sense_voice", "nemo_ctc"):
            check_sherpa_metadata(Path(need(["model*.onnx"])), kind)
        elif kind == "transducer":
            encoder = Path(need(["encoder*.onnx"]))
            encoder_meta = onnx_metadata(encoder) or {}
            if "pred_rnn_layers" in encoder_meta:  # NeMo (``nemo_transducer``), not icefall
                transducer_type = "nemo_transducer"
                check_sherpa_metadata(encoder, "nemo_transducer-encoder", encoder_meta)
            else:
                check_sherpa_metadata(Path(need(["decoder*.onnx"], prefer=())), "transducer-decoder")
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
        stream.accept_waveform(RATE, float16k(samples_16k))
        self.rec.decode_stream(stream)
        text = str(stream.result.text).strip()
        return Recognition(text=text, ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)
