"""The sherpa-onnx backend against the real library, on a tiny paraformer built here.

No pretrained sherpa-onnx model can be downloaded in CI, so :func:`make_paraformer` writes the
smallest model sherpa-onnx's offline paraformer loader accepts (``offline-paraformer-model.cc``):
inputs ``speech`` (N, T, 80 * lfr_window_size) float and ``speech_lengths`` (N) int32, outputs
``logits`` (N, T, vocab) and ``token_num``, metadata ``vocab_size``, ``lfr_window_size``,
``lfr_window_shift``, ``neg_mean``, ``inv_stddev``; ``tokens.txt`` must hold ``</s>`` (the end
of the greedy search). Its one layer sums the log-mel features over the utterance and gives one
token: 好 for sound, </s> (no text) for silence, so the text shows the audio really went through
sherpa-onnx's front end.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio import write_wav
from kiosk.cli import main
from kiosk.speech.recognize import (
    Recognition,
    RecognizerUnavailable,
    SherpaOfflineRecognizer,
    create_recognizer,
    onnx_metadata,
)

pytest.importorskip("sherpa_onnx")
onnx = pytest.importorskip("onnx")  # builds the model; the kiosk itself never needs it

TOKENS = ["<blank>", "<s>", "</s>", "你", "好", "大", "白", "门"]
FEAT, LFR_M, LFR_N = 80, 7, 6


def make_paraformer(folder: Path, metadata: bool = True) -> Path:
    """A paraformer model folder sherpa-onnx loads (``model.onnx`` + ``tokens.txt``), in ~10 ms."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    dim, vocab = FEAT * LFR_M, len(TOKENS)
    w = np.zeros((dim, vocab), np.float32)
    w[:, TOKENS.index("好")] = 0.01  # 0.01 x a frame's log-mel sum: > 0 for sound, about -90 for silence
    bias = np.full(vocab, -1.0, np.float32)
    bias[TOKENS.index("</s>")] = 0.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["speech", "w"], ["mm"]),
         helper.make_node("ReduceMean", ["mm"], ["avg"], axes=[1], keepdims=1),  # (N, 1, vocab): one token
         helper.make_node("Add", ["avg", "bias"], ["scores"]),
         helper.make_node("LogSoftmax", ["scores"], ["logits"], axis=-1),
         helper.make_node("Identity", ["speech_lengths"], ["token_num"])],
        "tiny_paraformer",
        [helper.make_tensor_value_info("speech", TensorProto.FLOAT, ["N", "T", dim]),
         helper.make_tensor_value_info("speech_lengths", TensorProto.INT32, ["N"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, vocab]),
         helper.make_tensor_value_info("token_num", TensorProto.INT32, ["N"])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for the onnxruntime inside sherpa-onnx 1.10
    if metadata:
        helper.set_model_props(model, {"vocab_size": str(vocab), "lfr_window_size": str(LFR_M),
                                       "lfr_window_shift": str(LFR_N), "neg_mean": ",".join(["0"] * dim),
                                       "inv_stddev": ",".join(["1"] * dim)})
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(TOKENS)), encoding="utf-8")
    return folder


def noise(seconds: float, level: float = 0.3, seed: int = 0) -> np.ndarray:
    return (np.random.RandomState(seed).randn(int(16000 * seconds)) * level).astype(np.float32)


def test_tiny_paraformer_through_sherpa_onnx(tmp_path: Path) -> None:
    models = tmp_path / "models"
    folder = make_paraformer(models / "asr" / "sherpa-onnx-paraformer-tiny")
    rec = create_recognizer("auto", "", models, threads=1)  # found in models/asr like an installed archive
    assert isinstance(rec, SherpaOfflineRecognizer) and rec.kind == "paraformer"
    assert rec.name == "sherpa-paraformer:sherpa-onnx-paraformer-tiny"
    heard = rec.recognize(noise(1.0))
    assert isinstance(heard, Recognition) and heard.ms > 0 and heard.backend == rec.name
    assert heard.text == "好", heard
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""  # silence: </s> first
    assert rec.recognize(np.concatenate([np.zeros(4000, np.float32), noise(1.0)])).text == "好"  # VAD preroll
    assert rec.recognize((noise(1.0) * 32767).astype(np.int16)).text == "好"  # int16 samples are scaled too
    assert rec.recognize(noise(0.01)).text == ""  # shorter than one LFR window: no crash, no text
    assert create_recognizer("sherpa-asr", str(folder)).name == rec.name
    rec.close()


def test_listen_cli_runs_the_tiny_sherpa_model(tmp_path: Path, capsys) -> None:
    folder = make_paraformer(tmp_path / "sherpa-onnx-paraformer-tiny")
    quiet = np.zeros(16000)
    wav = tmp_path / "burst.wav"
    write_wav(str(wav), np.concatenate([quiet, noise(1.0, 0.3), quiet]), 16000)
    code = main(["--home", str(tmp_path / "home"), "listen", str(wav), "--json", "--vad", "energy",
                 "--recognizer", "sherpa-asr", "--model", str(folder)])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0 and len(out) == 1 and "note" not in out[0], out
    line = out[0]
    assert line["recognizer"] == "sherpa-paraformer:sherpa-onnx-paraformer-tiny"
    assert len(line["segments"]) == 1 and line["intent"] is None
    assert line["text"] == "好", line
    assert line["utterances"][0]["asr_ms"] > 0


def test_sherpa_models_it_would_die_on_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "sherpa-onnx-paraformer-broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a model")
    (broken / "tokens.txt").write_text("a 0\n")
    with pytest.raises(RecognizerUnavailable, match="could not load the paraformer model"):
        SherpaOfflineRecognizer(str(broken))
    # a valid ONNX file without sherpa's metadata: sherpa-onnx would exit() the kiosk; it is refused first
    bare = make_paraformer(tmp_path / "sherpa-onnx-paraformer-bare", metadata=False)
    with pytest.raises(RecognizerUnavailable, match="metadata lacks vocab_size"):
        create_recognizer("auto", str(bare))
    trans = tmp_path / "sherpa-onnx-zipformer-bare"
    trans.mkdir()
    for part in ("encoder", "decoder", "joiner"):
        (trans / "{}.onnx".format(part)).write_bytes((bare / "model.onnx").read_bytes())
    (trans / "tokens.txt").write_text("a 0\n")
    with pytest.raises(RecognizerUnavailable, match="transducer model: its metadata lacks vocab_size, context_size"):
        create_recognizer("auto", str(trans))
    (broken / "model.onnx").unlink()
    with pytest.raises(RecognizerUnavailable, match=r"has no model\*\.onnx"):
        SherpaOfflineRecognizer(str(broken), kind="paraformer")


def test_onnx_metadata_reads_what_onnx_wrote(tmp_path: Path) -> None:
    folder = make_paraformer(tmp_path / "m")
    model = onnx.load(str(folder / "model.onnx"))
    assert onnx_metadata(folder / "model.onnx") == {p.key: p.value for p in model.metadata_props}
    assert onnx_metadata(make_paraformer(tmp_path / "n", metadata=False) / "model.onnx") == {}
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    half = (folder / "model.onnx").read_bytes()
    (tmp_path / "half.onnx").write_bytes(half[: len(half) // 2])
    assert onnx_metadata(tmp_path / "junk.onnx") is None and onnx_metadata(tmp_path / "half.onnx") is None
    assert onnx_metadata(tmp_path / "missing.onnx") is None
