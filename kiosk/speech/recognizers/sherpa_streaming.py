"""``sherpa-asr`` on a streaming model: a sherpa-onnx streaming transducer
(``sherpa_onnx.OnlineRecognizer.from_transducer``) on one utterance at a time. sherpa-onnx is imported
only when a recognizer is built."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .base import (
    RATE,
    Recognition,
    Recognizer,
    RecognizerUnavailable,
    check_online_encoder,
    check_sherpa_metadata,
    float16k,
    import_sherpa,
    pick_file,
)

__all__ = ["SherpaStreamingRecognizer"]


class SherpaStreamingRecognizer(Recognizer):
    """A sherpa-onnx streaming transducer (zipformer, zipformer2, conformer or lstm encoder; e.g. the
    ``sherpa-onnx-streaming-zipformer-*`` archives) through ``OnlineRecognizer``, on one utterance at
    a time as the VAD cuts them: the audio, then tail padding so the last chunk is decoded."""

    def __init__(self, model_dir: str, threads: int = 1) -> None:
        sherpa = import_sherpa()
        folder = Path(model_dir)
        enc = pick_file(folder, ["encoder*.onnx"])
        dec = pick_file(folder, ["decoder*.onnx"], prefer=())  # the int8 decoder costs accuracy and saves little
        join = pick_file(folder, ["joiner*.onnx"])
        tokens = folder / "tokens.txt"
        if not (enc and dec and join and tokens.is_file()):
            raise RecognizerUnavailable("{} is not a sherpa-onnx streaming transducer folder (needs encoder*.onnx, "
                                        "decoder*.onnx, joiner*.onnx, tokens.txt)".format(folder))
        # sherpa-onnx segfaults or exit()s on an encoder or decoder without its metadata: refuse it first
        check_online_encoder(enc)
        check_sherpa_metadata(dec, "transducer-decoder")
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
        stream.accept_waveform(RATE, float16k(samples_16k))
        stream.accept_waveform(RATE, np.zeros(int(0.5 * RATE), dtype=np.float32))  # flush the last chunk
        stream.input_finished()
        while self.rec.is_ready(stream):
            self.rec.decode_stream(stream)
        text = str(self.rec.get_result(stream)).strip()
        return Recognition(text=text, ms=(time.perf_counter() - t0) * 1000.0, backend=self.name)
