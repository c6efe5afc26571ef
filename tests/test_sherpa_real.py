"""The sherpa-onnx backend against the real library, on a tiny paraformer built here.

No pretrained sherpa-onnx model can be downloaded in CI, so :func:`make_paraformer` writes the
smallest model sherpa-onnx's offline paraformer loader accepts (``offline-paraformer-model.cc``):
inputs ``speech`` (N, T, 80 * lfr_window_size) float and ``speech_lengths`` (N) int32, outputs
``logits`` (N, T, vocab) and ``token_num``, metadata ``vocab_size``, ``lfr_window_size``,
``lfr_window_shift``, ``neg_mean``, ``inv_stddev``; ``tokens.txt`` must hold ``</s>`` (the end
of the greedy search). Its one layer sums the log-mel features over the utterance and gives one
token: 好 for sound, </s> (no text) for silence, so the text shows the audio really went through
sherpa-onnx's front end.

:func:`make_kws` does the same for the keyword spotter (``keyword-spotter-transducer-impl.h``): a
streaming transducer of the type with the fewest states, ``lstm`` (``online-lstm-transducer-model.cc``):
encoder inputs (features (N, T, 80), h (layers, N, d_model), c (layers, N, rnn_hidden_size)) and
outputs (encoder_out (N, T', D), next_h, next_c), taken by position, metadata ``model_type`` = lstm,
``num_encoder_layers``, ``T`` (frames a chunk), ``decode_chunk_len`` (frames the chunk advances),
``rnn_hidden_size``, ``d_model``; decoder (N, context_size) int64 -> (N, D) with ``vocab_size`` and
``context_size``; joiner (N, D), (N, D) -> logits (N, vocab); blank is token 0. Its encoder gates on
loudness and its decoder, by the previous token, asks for the next token of one keyword, so sound
makes sherpa-onnx's keyword search fire on that keyword and silence gives blanks only.

:func:`make_sense_voice` (``offline-sense-voice-model.cc``, ``offline-recognizer-sense-voice-impl.h``):
inputs, by position, x (N, T, 80 * lfr_window_size) float, x_length (N) int32, language (N) int32,
text_norm (N) int32; output CTC logits (N, T + 4, vocab) (blank 0); metadata ``vocab_size``,
``lfr_window_size``, ``lfr_window_shift``, ``normalize_samples``, ``with_itn``, ``without_itn``,
``lang_auto``/``zh``/``en``/``ja``/``ko``/``yue``, ``neg_mean``, ``inv_stddev``. sherpa-onnx drops the
first 4 decoded tokens (language, emotion, event, itn): its first 4 frames spell the language and
text_norm ids it was given (the metadata maps them to tokens here) and the rest, one token for sound
(好), blank for silence.

:func:`make_transducer`: the offline transducer (``offline-transducer-model.cc``): encoder x (N, T, 80),
x_lens (N) int64 -> encoder_out (N, T, D), encoder_out_lens (N) int64; decoder y (N, context_size) int64
-> decoder_out (N, D) with metadata ``vocab_size`` and ``context_size`` (the only keys it reads; encoder
and joiner need none); joiner (N, D), (N, D) -> logit (N, vocab). The same gate and chain as the keyword
spotter: sound spells the chain once, one token a frame, and silence gives no text.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest

from kiosk.audio import write_wav
from kiosk.cli import main
from kiosk.speech.recognizers import (
    Recognition,
    RecognizerUnavailable,
    create_recognizer,
    detect_model_kind,
    onnx_metadata,
)
from kiosk.speech.recognizers.sherpa_kws import SherpaKeywordSpotter, spell_keywords
from kiosk.speech.recognizers.sherpa_offline import SherpaOfflineRecognizer
from kiosk.speech.recognizers.sherpa_streaming import SherpaStreamingRecognizer

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


def listen_to_a_burst(tmp_path: Path, capsys, folder: Path, recognizer: str) -> dict:
    """``dabai-kiosk listen --json`` on 1 s of noise between two seconds of silence, through the model in
    ``folder``: the one JSON line it prints (one file, no note: the config's phrases a model cannot spell
    are left out, not refused)."""
    quiet = np.zeros(16000)
    wav = tmp_path / "burst.wav"
    write_wav(str(wav), np.concatenate([quiet, noise(1.0, 0.3), quiet]), 16000)
    code = main(["--home", str(tmp_path / "home"), "listen", str(wav), "--json", "--vad", "energy",
                 "--recognizer", recognizer, "--model", str(folder)])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0 and len(out) == 1 and "note" not in out[0], out
    return out[0]


def test_listen_cli_runs_the_tiny_sherpa_model(tmp_path: Path, capsys) -> None:
    folder = make_paraformer(tmp_path / "sherpa-onnx-paraformer-tiny")
    line = listen_to_a_burst(tmp_path, capsys, folder, "sherpa-asr")
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


# ---------------------------------------------------------------------------------- keyword spotter

KWS_CJK = ["<blk>", "<unk>", "你", "好", "大", "白", "开", "门", "请"]
KWS_PINYIN = ["<blk>", "<unk>", "n", "ǐ", "h", "ǎo", "d", "à", "b", "ái", "k", "āi", "m", "én", "q", "ǐng"]
CHUNK, HIDDEN = 16, 4


def _save(graph, path: Path, meta: Dict[str, str]) -> None:
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def make_kws(folder: Path, tokens: Sequence[str], chain: Sequence[str], encoder_meta: bool = True,
             decoder_meta: bool = True) -> Path:
    """A streaming lstm transducer sherpa-onnx's KeywordSpotter loads (encoder/decoder/joiner.onnx +
    tokens.txt) whose search, on sound, walks ``chain`` (token by token) and on silence stays blank."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    vocab = len(tokens)

    def f32(name: str, shape: List) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    encoder = helper.make_graph(  # gate = sigmoid(0.05 x a frame's log-mel sum): 1 for sound, 0 for silence
        [helper.make_node("ReduceSum", ["x", "axes"], ["sum"], keepdims=1),
         helper.make_node("Mul", ["sum", "k"], ["scaled"]),
         helper.make_node("Sigmoid", ["scaled"], ["gate"]),
         helper.make_node("Mul", ["gate", "ones"], ["encoder_out"]),  # (N, T, vocab)
         helper.make_node("Identity", ["h"], ["next_h"]),
         helper.make_node("Identity", ["c"], ["next_c"])],
        "tiny_lstm_encoder",
        [f32("x", ["N", CHUNK, 80]), f32("h", [1, "N", HIDDEN]), f32("c", [1, "N", HIDDEN])],
        [f32("encoder_out", ["N", CHUNK, vocab]), f32("next_h", [1, "N", HIDDEN]), f32("next_c", [1, "N", HIDDEN])],
        [numpy_helper.from_array(np.array([2], np.int64), "axes"), numpy_helper.from_array(np.array([0.05], np.float32), "k"),
         numpy_helper.from_array(np.ones(vocab, np.float32), "ones")])
    _save(encoder, folder / "encoder-chunk-16.onnx",
          {"model_type": "lstm", "num_encoder_layers": "1", "T": str(CHUNK), "decode_chunk_len": str(CHUNK),
           "rnn_hidden_size": str(HIDDEN), "d_model": str(HIDDEN)} if encoder_meta else {})
    table = np.zeros((vocab, vocab), np.float32)  # previous token -> wanted next token
    prev = 0
    for tok in chain:
        table[prev, tokens.index(tok)] = 20.0
        prev = tokens.index(tok)
    decoder = helper.make_graph(
        [helper.make_node("Gather", ["table", "y"], ["row"], axis=0),
         helper.make_node("Flatten", ["row"], ["decoder_out"], axis=1)],
        "tiny_decoder", [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", 1])], [f32("decoder_out", ["N", vocab])],
        [numpy_helper.from_array(table, "table")])
    _save(decoder, folder / "decoder-chunk-16.onnx", {"vocab_size": str(vocab), "context_size": "1"} if decoder_meta else {})
    bias = np.zeros(vocab, np.float32)
    bias[0] = 10.0  # blank, unless the gate opens and the decoder asks for a token (20)
    joiner = helper.make_graph(
        [helper.make_node("Mul", ["encoder_out", "decoder_out"], ["gated"]),
         helper.make_node("Add", ["gated", "bias"], ["logit"])],
        "tiny_joiner", [f32("encoder_out", ["N", vocab]), f32("decoder_out", ["N", vocab])], [f32("logit", ["N", vocab])],
        [numpy_helper.from_array(bias, "bias")])
    _save(joiner, folder / "joiner-chunk-16.onnx", {})
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(tokens)), encoding="utf-8")
    return folder


def test_tiny_keyword_spotter_through_sherpa_onnx(tmp_path: Path) -> None:
    models = tmp_path / "models"
    make_kws(models / "asr" / "sherpa-onnx-kws-tiny", KWS_CJK, "你好大白")
    # 「门禁」 cannot be spelled (no 禁): it is left out, and must not shift 「你好，大白」 onto its label
    rec = create_recognizer("auto", "", models, keywords=["门禁", "你好，大白", "开门"], threads=1, work_dir=str(tmp_path))
    assert isinstance(rec, SherpaKeywordSpotter) and rec.name == "sherpa-kws:sherpa-onnx-kws-tiny"
    assert rec.keywords == ["你好，大白", "开门"]
    assert Path(rec.keywords_file).read_text(encoding="utf-8") == "你 好 大 白 @你好，大白\n开 门 @开门\n"
    heard = rec.recognize(noise(1.0))
    assert isinstance(heard, Recognition) and heard.ms > 0 and heard.backend == rec.name
    assert heard.keyword == heard.text == "你好，大白" and heard.confidence == 1.0, heard  # the phrase as configured
    quiet = rec.recognize(np.zeros(16000, np.float32))
    assert quiet.keyword is None and quiet.text == "" and quiet.confidence == 0.0, quiet
    assert rec.recognize((noise(1.0) * 32767).astype(np.int16)).keyword == "你好，大白"  # int16 scaled too
    assert rec.recognize(noise(0.01)).keyword is None  # shorter than a chunk: no crash
    assert rec.recognize(np.concatenate([np.zeros(8000, np.float32), noise(0.5)])).keyword == "你好，大白"
    rec.close()
    assert not Path(rec.keywords_file).exists()


def test_tiny_pinyin_keyword_spotter_and_a_streaming_folder_by_metadata(tmp_path: Path) -> None:
    # ppinyin tokens (the wenetspeech KWS models); the folder name does not say kws: the streaming
    # encoder's metadata says it is for sherpa-onnx's online recognizer (an offline one could not run it)
    folder = make_kws(tmp_path / "sherpa-onnx-streaming-tiny", KWS_PINYIN, ["k", "āi", "m", "én"])
    assert detect_model_kind(folder) == "streaming"
    rec = create_recognizer("sherpa-kws", str(folder), keywords=["你好大白", "开门"], work_dir=str(tmp_path))
    assert isinstance(rec, SherpaKeywordSpotter)  # asked for by name, a streaming model spots keywords too
    assert Path(rec.keywords_file).read_text(encoding="utf-8") == "n ǐ h ǎo d à b ái @你好大白\nk āi m én @开门\n"
    assert rec.recognize(noise(1.0)).keyword == "开门"
    assert rec.recognize(np.zeros(16000, np.float32)).keyword is None
    rec.close()


def test_tiny_streaming_transducer_through_sherpa_onnx(tmp_path: Path) -> None:
    models = tmp_path / "models"
    folder = make_kws(models / "asr" / "sherpa-onnx-streaming-zipformer-tiny", KWS_CJK, "请开门")
    rec = create_recognizer("auto", "", models, keywords=["你好大白"], work_dir=str(tmp_path))
    assert isinstance(rec, SherpaStreamingRecognizer) and rec.name == "sherpa-streaming:sherpa-onnx-streaming-zipformer-tiny"
    heard = rec.recognize(noise(1.0))
    assert heard.text == "请开门" and heard.keyword is None and heard.ms > 0, heard  # a transcript, not a keyword
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""
    assert "请开门".startswith(rec.recognize(noise(0.01)).text)  # 10 ms, shorter than a chunk: no crash
    # the last chunk of an utterance is decoded too (the stream is padded and finished)
    assert rec.recognize(np.concatenate([np.zeros(12000, np.float32), noise(0.3)])).text == "请开门"
    assert create_recognizer("sherpa-asr", str(folder)).name == rec.name
    bare = make_kws(tmp_path / "streaming-bare", KWS_CJK, "开门", encoder_meta=False)
    with pytest.raises(RecognizerUnavailable, match="no model_type"):
        SherpaStreamingRecognizer(str(bare))


def test_keyword_spelling_matches_sherpa_onnx_text2token(tmp_path: Path, monkeypatch) -> None:
    import sherpa_onnx

    # text2token imports sentencepiece even for Mandarin (the kiosk does not need it): a stub stands in
    monkeypatch.setitem(sys.modules, "sentencepiece", types.ModuleType("sentencepiece"))
    phrases = ["你好大白", "开门", "请开门"]
    for tokens, kind in ((KWS_CJK, "cjkchar"), (KWS_PINYIN, "ppinyin")):
        table = make_kws(tmp_path / kind, tokens, [])
        theirs = sherpa_onnx.text2token(phrases, tokens=str(table / "tokens.txt"), tokens_type=kind)
        ours, skipped = spell_keywords(phrases, table / "tokens.txt", kind)
        assert [toks for _, toks in ours] == theirs and not skipped, (kind, ours, theirs)
    mixed = tmp_path / "phone"  # the zh-en models: English words from lexicon.txt, Mandarin as ppinyin
    make_kws(mixed, KWS_PINYIN + ["HH", "AH0", "L", "OW1"], [])
    (mixed / "lexicon.txt").write_text("HELLO HH AH0 L OW1\n", encoding="utf-8")
    words = ["HELLO 大白", "开门"]
    theirs = sherpa_onnx.text2token(words, tokens=str(mixed / "tokens.txt"), tokens_type="phone+ppinyin",
                                    lexicon=str(mixed / "lexicon.txt"))
    ours, skipped = spell_keywords(words, mixed / "tokens.txt", "phone+ppinyin", mixed / "lexicon.txt")
    assert [toks for _, toks in ours] == theirs == [["HH", "AH0", "L", "OW1", "d", "à", "b", "ái"], ["k", "āi", "m", "én"]]
    # where they differ, on purpose: text2token spells a space in ppinyin as a token " " and drops the
    # phrase (printing to stdout); a phrase with an unknown token is dropped silently (shifting the rest)
    pinyin = tmp_path / "ppinyin" / "tokens.txt"
    assert sherpa_onnx.text2token(["你好 大白", "开门"], tokens=str(pinyin), tokens_type="ppinyin") == [["k", "āi", "m", "én"]]
    assert spell_keywords(["你好 大白"], pinyin, "ppinyin")[0] == [("你好 大白", ["n", "ǐ", "h", "ǎo", "d", "à", "b", "ái"])]
    ours, skipped = spell_keywords(["门禁", "开门！"], tmp_path / "cjkchar" / "tokens.txt", "cjkchar")
    assert ours == [("开门！", ["开", "门"])] and skipped == ["'门禁': 禁 not in tokens.txt"]


def test_keyword_spotters_sherpa_would_crash_on_are_refused(tmp_path: Path) -> None:
    # run in a child first: what sherpa-onnx itself does with such a model (a segfault, exit(-1))
    bare = make_kws(tmp_path / "kws-bare", KWS_CJK, "开门", encoder_meta=False)
    (tmp_path / "kw.txt").write_text("开 门 @开门\n", encoding="utf-8")
    load = ("import sherpa_onnx, sys; d = sys.argv[1] + '/'; sherpa_onnx.KeywordSpotter(tokens=d + 'tokens.txt', "
            "encoder=d + 'encoder-chunk-16.onnx', decoder=d + 'decoder-chunk-16.onnx', joiner=d + 'joiner-chunk-16.onnx', "
            "keywords_file=sys.argv[2]).create_stream()")
    child = subprocess.run([sys.executable, "-c", load, str(bare), str(tmp_path / "kw.txt")], capture_output=True, timeout=60)
    assert child.returncode != 0, child
    with pytest.raises(RecognizerUnavailable, match="no model_type"):
        SherpaKeywordSpotter(str(bare), ["开门"], work_dir=str(tmp_path))
    import onnx as onnx_

    enc = onnx_.load(str(bare / "encoder-chunk-16.onnx"))
    from onnx import helper

    helper.set_model_props(enc, {"model_type": "lstm", "num_encoder_layers": "1", "decode_chunk_len": "16"})
    onnx_.save(enc, str(bare / "encoder-chunk-16.onnx"))
    with pytest.raises(RecognizerUnavailable, match="streaming lstm encoder: its metadata lacks T, rnn_hidden_size, d_model"):
        SherpaKeywordSpotter(str(bare), ["开门"], work_dir=str(tmp_path))
    no_dec = make_kws(tmp_path / "kws-no-decoder-meta", KWS_CJK, "开门", decoder_meta=False)
    with pytest.raises(RecognizerUnavailable, match="metadata lacks vocab_size, context_size"):
        SherpaKeywordSpotter(str(no_dec), ["开门"], work_dir=str(tmp_path))
    good = make_kws(tmp_path / "kws-good", KWS_CJK, "开门")
    # a keyword line with a token outside tokens.txt makes sherpa-onnx exit(): such phrases are never written
    with pytest.raises(RecognizerUnavailable, match="none of the keywords can be spelled.*'门禁': 禁 not in tokens.txt"):
        SherpaKeywordSpotter(str(good), ["门禁"], work_dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.glob("dabai-keywords-*")) == []  # no keywords file left behind


def test_listen_cli_runs_the_tiny_keyword_spotter(tmp_path: Path, capsys) -> None:
    folder = make_kws(tmp_path / "sherpa-onnx-kws-tiny", KWS_CJK, "开门")
    line = listen_to_a_burst(tmp_path, capsys, folder, "sherpa-kws")
    assert line["recognizer"] == "sherpa-kws:sherpa-onnx-kws-tiny"
    assert len(line["segments"]) == 1
    assert line["text"] == "开门" and line["intent"] == "enter", line


def test_sense_voice_is_told_from_paraformer_by_metadata(tmp_path: Path) -> None:
    # a paraformer in a folder called sense-voice is still a paraformer; sense-voice metadata decides
    folder = make_paraformer(tmp_path / "sherpa-onnx-sense-voice-tiny")
    assert detect_model_kind(folder) == "paraformer"
    assert create_recognizer("auto", str(folder)).name == "sherpa-paraformer:sherpa-onnx-sense-voice-tiny"
    model = onnx.load(str(folder / "model.onnx"))
    from onnx import helper

    meta = {p.key: p.value for p in model.metadata_props}
    meta.update({"lang_zh": "3", "normalize_samples": "0"})  # half of what offline-sense-voice-model.cc reads
    helper.set_model_props(model, meta)
    other = tmp_path / "plain-name"
    other.mkdir()
    onnx.save(model, str(other / "model.onnx"))
    (other / "tokens.txt").write_text((folder / "tokens.txt").read_text(encoding="utf-8"), encoding="utf-8")
    assert detect_model_kind(other) == "sense_voice"
    # sherpa-onnx would exit() on each missing key: refused first, all named
    with pytest.raises(RecognizerUnavailable, match="sense_voice model: its metadata lacks with_itn, without_itn, lang_auto, "
                       "lang_en, lang_ja, lang_ko, lang_yue$"):
        create_recognizer("auto", str(other))


# ---------------------------------------------------------------------------------- sense-voice

SV_TOKENS = ["<unk>", "<s>", "</s>", "<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|auto|>", "<|NEUTRAL|>",
             "<|Speech|>", "<|withitn|>", "<|woitn|>", "你", "好", "大", "白"]


def make_sense_voice(folder: Path, drop: Sequence[str] = ()) -> Path:
    """A sense-voice model folder sherpa-onnx loads (``model.onnx`` + ``tokens.txt``) that says 好 for
    sound; ``drop``: metadata keys left out."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    dim, vocab = FEAT * LFR_M, len(SV_TOKENS)
    w = np.zeros((dim, vocab), np.float32)
    w[:, SV_TOKENS.index("好")] = 0.01  # as in the paraformer: > 0 for sound, far below 0 for silence
    bias = np.zeros(vocab, np.float32)
    bias[SV_TOKENS.index("好")] = -1.0  # blank (0) unless there is sound

    def const(value: object, name: str, dtype: object = np.int64) -> object:
        return numpy_helper.from_array(np.array(value, dtype), name)

    graph = helper.make_graph(
        [helper.make_node("Unsqueeze", ["language", "ax1"], ["lang2"]),  # (N, 1)
         helper.make_node("Unsqueeze", ["text_norm", "ax1"], ["norm2"]),
         helper.make_node("Mul", ["lang2", "zero_i"], ["z"]),
         helper.make_node("Add", ["z", "emotion"], ["emotion2"]),
         helper.make_node("Add", ["z", "event"], ["event2"]),
         helper.make_node("Concat", ["lang2", "emotion2", "event2", "norm2"], ["ids"], axis=1),  # (N, 4)
         helper.make_node("Gather", ["eye", "ids"], ["prefix"], axis=0),  # (N, 4, vocab): those 4 tokens
         helper.make_node("MatMul", ["x", "w"], ["mm"]),
         helper.make_node("ReduceMean", ["mm"], ["avg"], axes=[1], keepdims=1),
         helper.make_node("Add", ["avg", "bias"], ["row"]),  # (N, 1, vocab): one verdict for the utterance
         helper.make_node("Slice", ["x", "s0", "s1", "ax2"], ["col"]),
         helper.make_node("Mul", ["col", "zero_f"], ["zeros"]),  # (N, T, 1)
         helper.make_node("Add", ["zeros", "row"], ["frames"]),  # (N, T, vocab): on every frame (CTC merges them)
         helper.make_node("Concat", ["prefix", "frames"], ["logits"], axis=1)],
        "tiny_sense_voice",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", dim]),
         helper.make_tensor_value_info("x_length", TensorProto.INT32, ["N"]),
         helper.make_tensor_value_info("language", TensorProto.INT32, ["N"]),
         helper.make_tensor_value_info("text_norm", TensorProto.INT32, ["N"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "T4", vocab])],
        [const([1], "ax1"), const([2], "ax2"), const([0], "s0"), const([1], "s1"), const(0, "zero_i", np.int32),
         const(0.0, "zero_f", np.float32), const(SV_TOKENS.index("<|NEUTRAL|>"), "emotion", np.int32),
         const(SV_TOKENS.index("<|Speech|>"), "event", np.int32), const(np.eye(vocab) * 10, "eye", np.float32),
         numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "bias")])
    meta = {"vocab_size": str(vocab), "lfr_window_size": str(LFR_M), "lfr_window_shift": str(LFR_N), "normalize_samples": "0",
            "with_itn": str(SV_TOKENS.index("<|withitn|>")), "without_itn": str(SV_TOKENS.index("<|woitn|>")),
            "neg_mean": ",".join(["0"] * dim), "inv_stddev": ",".join(["1"] * dim)}
    meta.update({"lang_" + k: str(SV_TOKENS.index("<|{}|>".format(k))) for k in ("auto", "zh", "en", "ja", "ko", "yue")})
    _save(graph, folder / "model.onnx", {k: v for k, v in meta.items() if k not in drop})
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(SV_TOKENS)), encoding="utf-8")
    return folder


def test_tiny_sense_voice_through_sherpa_onnx(tmp_path: Path) -> None:
    models = tmp_path / "models"
    folder = make_sense_voice(models / "asr" / "sherpa-onnx-sense-voice-tiny")
    assert detect_model_kind(folder) == "sense_voice"
    rec = create_recognizer("auto", "", models, threads=1)
    assert isinstance(rec, SherpaOfflineRecognizer) and rec.kind == "sense_voice"
    assert rec.name == "sherpa-sense_voice:sherpa-onnx-sense-voice-tiny"
    heard = rec.recognize(noise(1.0))
    assert isinstance(heard, Recognition) and heard.ms > 0 and heard.backend == rec.name
    assert heard.text == "好", heard  # the 4 prefix tokens are not text
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""
    assert rec.recognize(np.concatenate([np.zeros(4000, np.float32), noise(1.0)])).text == "好"
    assert rec.recognize((noise(1.0) * 32767).astype(np.int16)).text == "好"  # normalize_samples 0: sherpa scales
    assert rec.recognize(noise(0.01)).text == ""  # no LFR frame: no crash, no text
    # what the kiosk asked for reached the model: language zh, no inverse text normalization
    stream = rec.rec.create_stream()
    stream.accept_waveform(16000, noise(1.0))
    rec.rec.decode_stream(stream)
    result = stream.result
    assert (result.lang, result.emotion, result.event) == ("<|zh|>", "<|NEUTRAL|>", "<|Speech|>"), str(result)
    assert list(result.tokens) == ["好"]
    assert create_recognizer("sherpa-asr", str(folder)).name == rec.name
    rec.close()


def _sherpa_child(code: str, *args: str) -> "subprocess.CompletedProcess[bytes]":
    return subprocess.run([sys.executable, "-c", "import sherpa_onnx, sys; d = sys.argv[1] + '/'; " + code] + list(args),
                          capture_output=True, timeout=60)


def test_sense_voice_sherpa_would_exit_on_is_refused(tmp_path: Path) -> None:
    lacking = make_sense_voice(tmp_path / "sherpa-onnx-sense-voice-lacking", drop=("lang_yue", "without_itn"))
    child = _sherpa_child("sherpa_onnx.OfflineRecognizer.from_sense_voice(tokens=d + 'tokens.txt', model=d + 'model.onnx')",
                          str(lacking))
    assert child.returncode != 0 and b"does not exist in the metadata" in child.stderr, child  # sherpa-onnx exit()s
    with pytest.raises(RecognizerUnavailable, match="sense_voice model: its metadata lacks without_itn, lang_yue$"):
        create_recognizer("auto", str(lacking))
    with pytest.raises(RecognizerUnavailable, match="lacks without_itn, lang_yue$"):
        SherpaOfflineRecognizer(str(lacking), kind="sense_voice")


# ---------------------------------------------------------------------------------- offline transducer

TRANSDUCER_FILES = ("encoder-epoch-99-avg-1.onnx", "decoder-epoch-99-avg-1.onnx", "joiner-epoch-99-avg-1.onnx")


def make_transducer(folder: Path, chain: Sequence[str], context: int = 2, decoder_meta: bool = True) -> Path:
    """An offline (zipformer-style) transducer folder sherpa-onnx's OfflineRecognizer loads
    (encoder/decoder/joiner + tokens.txt, :data:`KWS_CJK` tokens, blank 0) whose greedy search spells
    ``chain`` on sound, one token a frame, and nothing on silence."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    tokens, vocab = KWS_CJK, len(KWS_CJK)

    def f32(name: str, shape: List) -> object:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    def i64(name: str, shape: List) -> object:
        return helper.make_tensor_value_info(name, TensorProto.INT64, shape)

    encoder = helper.make_graph(  # no subsampling: a gate a frame, 1 for sound, 0 for silence
        [helper.make_node("ReduceSum", ["x", "axes"], ["sum"], keepdims=1),
         helper.make_node("Mul", ["sum", "k"], ["scaled"]),
         helper.make_node("Sigmoid", ["scaled"], ["gate"]),
         helper.make_node("Mul", ["gate", "ones"], ["encoder_out"]),
         helper.make_node("Identity", ["x_lens"], ["encoder_out_lens"])],
        "tiny_offline_encoder", [f32("x", ["N", "T", 80]), i64("x_lens", ["N"])],
        [f32("encoder_out", ["N", "T", vocab]), i64("encoder_out_lens", ["N"])],
        [numpy_helper.from_array(np.array([2], np.int64), "axes"), numpy_helper.from_array(np.array([0.05], np.float32), "k"),
         numpy_helper.from_array(np.ones(vocab, np.float32), "ones")])
    _save(encoder, folder / TRANSDUCER_FILES[0], {})
    table = np.zeros((vocab, vocab), np.float32)  # newest context token -> wanted next token
    prev = 0
    for tok in chain:
        table[prev, tokens.index(tok)] = 20.0
        prev = tokens.index(tok)
    decoder = helper.make_graph(
        [helper.make_node("Gather", ["y", "last"], ["newest"], axis=1),  # (N,): the context's last token
         helper.make_node("Gather", ["table", "newest"], ["decoder_out"], axis=0)],
        "tiny_offline_decoder", [i64("y", ["N", context])], [f32("decoder_out", ["N", vocab])],
        [numpy_helper.from_array(np.array(context - 1, np.int64), "last"), numpy_helper.from_array(table, "table")])
    _save(decoder, folder / TRANSDUCER_FILES[1], {"vocab_size": str(vocab), "context_size": str(context)} if decoder_meta else {})
    bias = np.zeros(vocab, np.float32)
    bias[0] = 10.0
    joiner = helper.make_graph(
        [helper.make_node("Mul", ["encoder_out", "decoder_out"], ["gated"]),
         helper.make_node("Add", ["gated", "bias"], ["logit"])],
        "tiny_offline_joiner", [f32("encoder_out", ["N", vocab]), f32("decoder_out", ["N", vocab])], [f32("logit", ["N", vocab])],
        [numpy_helper.from_array(bias, "bias")])
    _save(joiner, folder / TRANSDUCER_FILES[2], {})
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(tokens)), encoding="utf-8")
    return folder


def test_tiny_offline_transducer_through_sherpa_onnx(tmp_path: Path) -> None:
    models = tmp_path / "models"
    folder = make_transducer(models / "asr" / "sherpa-onnx-zipformer-tiny", "开门")
    assert detect_model_kind(folder) == "transducer"  # an offline encoder: no decode_chunk_len
    rec = create_recognizer("auto", "", models, threads=1)
    assert isinstance(rec, SherpaOfflineRecognizer) and rec.kind == "transducer"
    assert rec.name == "sherpa-transducer:sherpa-onnx-zipformer-tiny"
    heard = rec.recognize(noise(1.0))
    assert isinstance(heard, Recognition) and heard.ms > 0 and heard.backend == rec.name
    assert heard.text == "开门", heard  # the decoder saw its own output: 开, then 门, then blanks
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""
    assert rec.recognize((noise(1.0) * 32767).astype(np.int16)).text == "开门"
    burst = np.concatenate([np.zeros(4000, np.float32), noise(0.5), np.zeros(8000, np.float32), noise(0.5, seed=1)])
    assert rec.recognize(burst).text == "开门"  # the chain is spelled once
    assert rec.recognize(noise(0.01)).text == "开"  # one frame, one symbol: no crash
    assert create_recognizer("sherpa-asr", str(folder)).name == rec.name
    rec.close()


def test_offline_transducer_sherpa_would_exit_on_is_refused(tmp_path: Path) -> None:
    bare = make_transducer(tmp_path / "sherpa-onnx-zipformer-bare", "开门", decoder_meta=False)
    load = ("sherpa_onnx.OfflineRecognizer.from_transducer(tokens=d + 'tokens.txt', encoder=d + '{}', decoder=d + '{}', "
            "joiner=d + '{}')").format(*TRANSDUCER_FILES)
    child = _sherpa_child(load, str(bare))
    assert child.returncode != 0 and b"does not exist in the metadata" in child.stderr, child  # sherpa-onnx exit()s
    with pytest.raises(RecognizerUnavailable, match="transducer model: its metadata lacks vocab_size, context_size$"):
        create_recognizer("auto", str(bare))
    no_joiner = make_transducer(tmp_path / "sherpa-onnx-zipformer-no-joiner", "开门")
    (no_joiner / TRANSDUCER_FILES[2]).unlink()
    assert detect_model_kind(no_joiner) is None
    with pytest.raises(RecognizerUnavailable, match=r"has no joiner\*\.onnx for a sherpa-onnx transducer model"):
        SherpaOfflineRecognizer(str(no_joiner), kind="transducer")


# ---------------------------------------------------------------------------------- whisper

WHISPER_TEXT = ["你", "好", "大", "白", "开", "门", "请"]
WHISPER_STATE, WHISPER_CTX = 4, 64


def make_whisper(folder: Path, chain: str, drop: Sequence[str] = (), langs: Sequence[str] = ("en", "zh")) -> Path:
    """A whisper model sherpa-onnx's offline recognizer loads (``offline-whisper-model.cc``, greedy search):
    encoder mel (1, 80, T) -> n_layer_cross_k, n_layer_cross_v (1, 1, 1, state); decoder tokens (1, n),
    in_n_layer_self_k/v_cache (1, 1, ctx, state), cross k/v, offset -> logits (1, n, vocab) and the
    caches. The encoder gates on the loudest normalized log-mel bin (the 1000 zero frames sherpa-onnx
    pads with make silence 0, sound above 1); the decoder, by the previous token, asks for the next of
    ``chain``, then eot. Regular tokens are base64 in ``tiny-tokens.txt``, as sherpa-onnx's exports write them."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    n = len(WHISPER_TEXT)
    eot, sot = n, n + 1
    lang_ids = [n + 2 + i for i in range(len(langs))]
    translate, transcribe, no_speech, no_ts = (n + 2 + len(langs) + i for i in range(4))
    vocab, state = no_ts + 1, WHISPER_STATE
    f32 = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    i64 = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.INT64, shape)  # noqa: E731
    encoder = helper.make_graph(
        [helper.make_node("ReduceMax", ["mel"], ["peak"], axes=[1, 2], keepdims=1),
         helper.make_node("Sub", ["peak", "half"], ["above"]),
         helper.make_node("Mul", ["above", "k"], ["scaled"]),
         helper.make_node("Sigmoid", ["scaled"], ["gate"]),
         helper.make_node("Unsqueeze", ["gate", "axis0"], ["gate4"]),
         helper.make_node("Mul", ["gate4", "ones"], ["n_layer_cross_k"]),
         helper.make_node("Mul", ["gate4", "ones"], ["n_layer_cross_v"])],
        "tiny_whisper_encoder", [f32("mel", [1, 80, "T"])],
        [f32("n_layer_cross_k", [1, 1, 1, state]), f32("n_layer_cross_v", [1, 1, 1, state])],
        [numpy_helper.from_array(np.array([0.65], np.float32), "half"),
         numpy_helper.from_array(np.array([20.0], np.float32), "k"),
         numpy_helper.from_array(np.array([0], np.int64), "axis0"),
         numpy_helper.from_array(np.ones((1, 1, 1, state), np.float32), "ones")])
    meta = {"model_type": "whisper-tiny", "n_mels": "80", "n_text_layer": "1", "n_text_ctx": str(WHISPER_CTX),
            "n_text_state": str(state), "n_vocab": str(vocab), "sot": str(sot), "eot": str(eot), "blank_id": "0",
            "translate": str(translate), "transcribe": str(transcribe), "is_multilingual": "1",
            "no_timestamps": str(no_ts), "no_speech": str(no_speech),
            "sot_sequence": "{},{},{}".format(sot, lang_ids[0], transcribe),
            "all_language_tokens": ",".join(map(str, lang_ids)), "all_language_codes": ",".join(langs)}
    _save(encoder, folder / "tiny-encoder.onnx", {k: v for k, v in meta.items() if k not in drop})
    table = np.zeros((vocab, vocab), np.float32)  # previous token -> wanted next token
    prev = no_ts  # the last of the tokens the decoding starts with
    for ch in chain:
        table[prev, WHISPER_TEXT.index(ch)] = 20.0
        prev = WHISPER_TEXT.index(ch)
    bias = np.zeros(vocab, np.float32)
    bias[eot] = 10.0
    decoder = helper.make_graph(
        [helper.make_node("ReduceMax", ["n_layer_cross_k"], ["gate"], keepdims=0),
         helper.make_node("Gather", ["table", "tokens"], ["rows"], axis=0),
         helper.make_node("Mul", ["rows", "gate"], ["gated"]),
         helper.make_node("Add", ["gated", "bias"], ["logits"]),
         helper.make_node("Identity", ["in_n_layer_self_k_cache"], ["out_n_layer_self_k_cache"]),
         helper.make_node("Identity", ["in_n_layer_self_v_cache"], ["out_n_layer_self_v_cache"])],
        "tiny_whisper_decoder",
        [i64("tokens", [1, "n"]), f32("in_n_layer_self_k_cache", [1, 1, WHISPER_CTX, state]),
         f32("in_n_layer_self_v_cache", [1, 1, WHISPER_CTX, state]), f32("n_layer_cross_k", [1, 1, "T", state]),
         f32("n_layer_cross_v", [1, 1, "T", state]), i64("offset", [1])],
        [f32("logits", [1, "n", vocab]), f32("out_n_layer_self_k_cache", [1, 1, WHISPER_CTX, state]),
         f32("out_n_layer_self_v_cache", [1, 1, WHISPER_CTX, state])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(bias, "bias")])
    _save(decoder, folder / "tiny-decoder.onnx", {})
    (folder / "tiny-tokens.txt").write_text("".join("{} {}\n".format(base64.b64encode(t.encode()).decode(), i)
                                                    for i, t in enumerate(WHISPER_TEXT)), encoding="utf-8")
    return folder


def test_tiny_whisper_through_sherpa_onnx(tmp_path: Path) -> None:
    folder = make_whisper(tmp_path / "sherpa-onnx-whisper-tiny", "请开门")
    assert detect_model_kind(folder) == "whisper"
    rec = create_recognizer("auto", str(folder))
    assert isinstance(rec, SherpaOfflineRecognizer) and rec.name == "sherpa-whisper:sherpa-onnx-whisper-tiny"
    assert rec.recognize(noise(1.0)).text == "请开门"  # asked for in Mandarin: zh is among its languages
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""


def test_whisper_models_sherpa_would_exit_on_are_refused(tmp_path: Path) -> None:
    decode = ("r = sherpa_onnx.OfflineRecognizer.from_whisper(encoder=d + 'tiny-encoder.onnx', decoder=d + 'tiny-decoder.onnx', "
              "tokens=d + 'tiny-tokens.txt', language='zh'); s = r.create_stream(); "
              "s.accept_waveform(16000, [0.3, -0.3] * 8000); r.decode_stream(s)")
    no_zh = make_whisper(tmp_path / "whisper-no-zh", "开门", langs=("en", "ja"))
    child = _sherpa_child(decode, str(no_zh))
    assert child.returncode != 0 and b"Invalid language: zh" in child.stderr, child  # exit() on the first utterance
    with pytest.raises(RecognizerUnavailable, match="whisper model without Mandarin"):
        SherpaOfflineRecognizer(str(no_zh), kind="whisper")
    lacking = make_whisper(tmp_path / "whisper-lacking", "开门", drop=("sot_sequence", "all_language_codes"))
    child = _sherpa_child(decode, str(lacking))
    assert child.returncode != 0 and b"does not exist in the metadata" in child.stderr, child
    with pytest.raises(RecognizerUnavailable, match="not a sherpa-onnx whisper model: its metadata lacks sot_sequence$"):
        SherpaOfflineRecognizer(str(lacking), kind="whisper")


# ---------------------------------------------------------------------------------- NeMo CTC


def make_nemo_ctc(folder: Path, token: str = "好", drop: Sequence[str] = ()) -> Path:
    """A NeMo CTC model as sherpa-onnx's exports lay it out (``offline-nemo-enc-dec-ctc-model.cc``,
    ``from_nemo_ctc``): audio_signal (N, 80, T), length (N) int64 -> logits (N, T, vocab), blank last,
    metadata ``vocab_size``, ``subsampling_factor``, ``normalize_type``. Each loud frame says ``token``
    (CTC folds the repeats into one), a quiet one blank."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    vocab = len(WHISPER_TEXT) + 1
    weight = np.zeros(vocab, np.float32)
    weight[WHISPER_TEXT.index(token)] = 20.0
    bias = np.zeros(vocab, np.float32)
    bias[vocab - 1] = 10.0
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["audio_signal", "axis1"], ["sum"], keepdims=1),
         helper.make_node("Add", ["sum", "offset"], ["shifted"]),
         helper.make_node("Mul", ["shifted", "k"], ["scaled"]),
         helper.make_node("Sigmoid", ["scaled"], ["gate"]),
         helper.make_node("Transpose", ["gate"], ["frames"], perm=[0, 2, 1]),
         helper.make_node("Mul", ["frames", "weight"], ["said"]),
         helper.make_node("Add", ["said", "bias"], ["logits"])],
        "tiny_nemo_ctc",
        [helper.make_tensor_value_info("audio_signal", TensorProto.FLOAT, ["N", 80, "T"]),
         helper.make_tensor_value_info("length", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "T", vocab])],
        [numpy_helper.from_array(np.array([1], np.int64), "axis1"),
         numpy_helper.from_array(np.array([600.0], np.float32), "offset"),
         numpy_helper.from_array(np.array([0.05], np.float32), "k"),
         numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")])
    meta = {"vocab_size": str(vocab), "subsampling_factor": "1", "normalize_type": "NA"}
    _save(graph, folder / "model.onnx", {k: v for k, v in meta.items() if k not in drop})
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(WHISPER_TEXT + ["<blk>"])),
                                       encoding="utf-8")
    return folder


def test_tiny_nemo_ctc_through_sherpa_onnx(tmp_path: Path) -> None:
    folder = make_nemo_ctc(tmp_path / "sherpa-onnx-nemo-ctc-tiny")
    assert detect_model_kind(folder) == "nemo_ctc"  # by its metadata: NeMo's subsampling and normalization, no LFR
    rec = create_recognizer("auto", str(folder))
    assert isinstance(rec, SherpaOfflineRecognizer) and rec.name == "sherpa-nemo_ctc:sherpa-onnx-nemo-ctc-tiny"
    assert rec.recognize(noise(1.0)).text == "好"
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""
    lacking = make_nemo_ctc(tmp_path / "nemo-ctc-lacking", drop=("subsampling_factor",))
    child = _sherpa_child("sherpa_onnx.OfflineRecognizer.from_nemo_ctc(model=d + 'model.onnx', tokens=d + 'tokens.txt')",
                          str(lacking))
    assert child.returncode != 0 and b"does not exist in the metadata" in child.stderr, child
    with pytest.raises(RecognizerUnavailable, match="not a sherpa-onnx nemo_ctc model: its metadata lacks subsampling_factor$"):
        SherpaOfflineRecognizer(str(lacking), kind="nemo_ctc")


# ---------------------------------------------------------------------------------- NeMo transducer


def make_nemo_transducer(folder: Path, chain: str, drop: Sequence[str] = ()) -> Path:
    """A NeMo transducer as sherpa-onnx's exports lay it out (``offline-transducer-nemo-model.cc``,
    ``model_type="nemo_transducer"``): encoder audio_signal (N, 80, T), length (N) int64 -> outputs
    (N, D, T), encoded_lengths, its metadata ``vocab_size`` (without blank), ``subsampling_factor``,
    ``normalize_type``, ``pred_rnn_layers``, ``pred_hidden``; decoder targets (1, 1) int32,
    target_length (1) int32, two LSTM states (layers, 1, hidden) -> outputs (1, D, 1), lengths, states;
    joiner (1, D, 1), (1, D, 1) -> (1, 1, 1, vocab); blank is the LAST token. Same gate and chain as
    :func:`make_transducer` (D = vocab)."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    vocab, layers, hidden = len(WHISPER_TEXT) + 1, 1, 4
    blank = vocab - 1
    f32 = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    i32 = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.INT32, shape)  # noqa: E731
    encoder = helper.make_graph(  # gate = sigmoid(0.05 (sum of a frame's log-mel + 600)): NeMo's log-mel is < 0
        [helper.make_node("ReduceSum", ["audio_signal", "axis1"], ["sum"], keepdims=1),
         helper.make_node("Add", ["sum", "offset"], ["shifted"]),
         helper.make_node("Mul", ["shifted", "k"], ["scaled"]),
         helper.make_node("Sigmoid", ["scaled"], ["gate"]),
         helper.make_node("Mul", ["gate", "ones"], ["outputs"]),
         helper.make_node("Identity", ["length"], ["encoded_lengths"])],
        "tiny_nemo_encoder",
        [f32("audio_signal", ["N", 80, "T"]), helper.make_tensor_value_info("length", TensorProto.INT64, ["N"])],
        [f32("outputs", ["N", vocab, "T"]), helper.make_tensor_value_info("encoded_lengths", TensorProto.INT64, ["N"])],
        [numpy_helper.from_array(np.array([1], np.int64), "axis1"),
         numpy_helper.from_array(np.array([600.0], np.float32), "offset"),
         numpy_helper.from_array(np.array([0.05], np.float32), "k"),
         numpy_helper.from_array(np.ones((1, vocab, 1), np.float32), "ones")])
    meta = {"vocab_size": str(vocab - 1), "subsampling_factor": "1", "normalize_type": "NA",
            "pred_rnn_layers": str(layers), "pred_hidden": str(hidden)}
    _save(encoder, folder / "encoder.onnx", {k: v for k, v in meta.items() if k not in drop})
    table = np.zeros((vocab, vocab), np.float32)  # previous token -> wanted next token
    prev = blank
    for ch in chain:
        table[prev, WHISPER_TEXT.index(ch)] = 20.0
        prev = WHISPER_TEXT.index(ch)
    decoder = helper.make_graph(
        [helper.make_node("Cast", ["targets"], ["targets64"], to=TensorProto.INT64),
         helper.make_node("Gather", ["table", "targets64"], ["rows"], axis=0),
         helper.make_node("Transpose", ["rows"], ["outputs"], perm=[0, 2, 1]),
         helper.make_node("Identity", ["target_length"], ["prednet_lengths"]),
         helper.make_node("Identity", ["h"], ["h_next"]),
         helper.make_node("Identity", ["c"], ["c_next"])],
        "tiny_nemo_decoder",
        [i32("targets", [1, 1]), i32("target_length", [1]), f32("h", [layers, 1, hidden]), f32("c", [layers, 1, hidden])],
        [f32("outputs", [1, vocab, 1]), i32("prednet_lengths", [1]), f32("h_next", [layers, 1, hidden]),
         f32("c_next", [layers, 1, hidden])],
        [numpy_helper.from_array(table, "table")])
    _save(decoder, folder / "decoder.onnx", {})
    bias = np.zeros((1, vocab, 1), np.float32)
    bias[0, blank, 0] = 10.0
    joiner = helper.make_graph(
        [helper.make_node("Mul", ["encoder_outputs", "decoder_outputs"], ["gated"]),
         helper.make_node("Add", ["gated", "bias"], ["logit"]),
         helper.make_node("Reshape", ["logit", "shape"], ["outputs"])],
        "tiny_nemo_joiner", [f32("encoder_outputs", [1, vocab, 1]), f32("decoder_outputs", [1, vocab, 1])],
        [f32("outputs", [1, 1, 1, vocab])],
        [numpy_helper.from_array(bias, "bias"), numpy_helper.from_array(np.array([1, 1, 1, vocab], np.int64), "shape")])
    _save(joiner, folder / "joiner.onnx", {})
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(WHISPER_TEXT + ["<blk>"])),
                                       encoding="utf-8")
    return folder


def test_tiny_nemo_transducer_through_sherpa_onnx(tmp_path: Path) -> None:
    folder = make_nemo_transducer(tmp_path / "sherpa-onnx-nemo-transducer-tiny", "请开门")
    assert detect_model_kind(folder) == "transducer"
    rec = create_recognizer("auto", str(folder))  # told from an icefall transducer by its encoder's metadata
    assert isinstance(rec, SherpaOfflineRecognizer) and rec.name == "sherpa-nemo_transducer:sherpa-onnx-nemo-transducer-tiny"
    assert rec.recognize(noise(1.0)).text == "请开门"
    assert rec.recognize(np.zeros(16000, np.float32)).text == ""
    lacking = make_nemo_transducer(tmp_path / "nemo-lacking", "开门", drop=("pred_hidden",))
    child = _sherpa_child("sherpa_onnx.OfflineRecognizer.from_transducer(encoder=d + 'encoder.onnx', decoder=d + 'decoder.onnx', "
                          "joiner=d + 'joiner.onnx', tokens=d + 'tokens.txt', model_type='nemo_transducer')", str(lacking))
    assert child.returncode != 0 and b"does not exist in the metadata" in child.stderr, child
    with pytest.raises(RecognizerUnavailable, match="not a sherpa-onnx nemo_transducer model: its metadata lacks pred_hidden$"):
        SherpaOfflineRecognizer(str(lacking))


@pytest.mark.parametrize("build, recognizer, text, intent", [
    (lambda d: make_sense_voice(d / "sherpa-onnx-sense-voice-tiny"), "sherpa-sense_voice:sherpa-onnx-sense-voice-tiny",
     "好", None),
    (lambda d: make_transducer(d / "sherpa-onnx-zipformer-tiny", "开门"), "sherpa-transducer:sherpa-onnx-zipformer-tiny",
     "开门", "enter"),
    (lambda d: make_kws(d / "sherpa-onnx-streaming-zipformer-tiny", KWS_CJK, "请开门"),
     "sherpa-streaming:sherpa-onnx-streaming-zipformer-tiny", "请开门", "enter"),
    (lambda d: make_whisper(d / "sherpa-onnx-whisper-tiny", "开门"), "sherpa-whisper:sherpa-onnx-whisper-tiny", "开门", "enter"),
    (lambda d: make_nemo_transducer(d / "sherpa-onnx-nemo-tiny", "开门"), "sherpa-nemo_transducer:sherpa-onnx-nemo-tiny",
     "开门", "enter"),
], ids=["sense_voice", "transducer", "streaming", "whisper", "nemo_transducer"])
def test_listen_cli_runs_the_tiny_sherpa_asr_models(tmp_path: Path, capsys, build, recognizer: str, text: str, intent) -> None:
    folder = build(tmp_path)
    line = listen_to_a_burst(tmp_path, capsys, folder, "sherpa-asr")
    assert line["recognizer"] == recognizer
    assert len(line["segments"]) == 1
    assert line["text"] == text and line["intent"] == intent, line
    assert line["utterances"][0]["asr_ms"] > 0


# ---------------------------------------------------------------------------------- TTS (VITS)

#: :func:`make_vits`'s phones; the lexicon spells each character with two of them.
VITS_PHONES = ["_", "n", "i3", "h", "ao3", "d", "a4", "b", "ai2", "s", "an1"]
VITS_LEXICON = {"你": "n i3", "好": "h ao3", "大": "d a4", "白": "b ai2", "三": "s an1"}
HOP = 160
VITS_META = {"model_type": "vits", "comment": "dabai-tiny", "language": "Chinese", "sample_rate": "16000",
             "n_speakers": "1", "add_blank": "0", "punctuation": "， 。"}


def make_vits(folder: Path, meta: Dict[str, str] = VITS_META, lexicon: bool = True) -> Path:
    """A VITS voice sherpa-onnx's OfflineTts loads (``offline-tts-vits-model.cc``, lexicon frontend):
    inputs x (1, N) int64, x_length (1), noise_scale, length_scale, noise_scale_w (1) float; output
    y (1, 1, N * HOP): each token id held for HOP samples at 0.01 × id × length_scale. So the audio
    spells the token ids sherpa-onnx's frontend made of the text, and its level the speed it was given
    (length_scale = 1 / speed)."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["xf", "axis2"], ["column"]),
         helper.make_node("Expand", ["column", "hop"], ["held"]),
         helper.make_node("Reshape", ["held", "flat"], ["audio"]),
         helper.make_node("Mul", ["audio", "step"], ["level"]),
         helper.make_node("Mul", ["level", "length_scale"], ["y"])],
        "tiny_vits",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [1, "N"]),
         helper.make_tensor_value_info("x_length", TensorProto.INT64, [1])]
        + [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("noise_scale", "length_scale", "noise_scale_w")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "L"])],
        [numpy_helper.from_array(np.array([2], np.int64), "axis2"),
         numpy_helper.from_array(np.array([1, 1, HOP], np.int64), "hop"),
         numpy_helper.from_array(np.array([1, 1, -1], np.int64), "flat"),
         numpy_helper.from_array(np.array([0.01], np.float32), "step")])
    _save(graph, folder / "model.onnx", meta)
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(VITS_PHONES)), encoding="utf-8")
    if lexicon:
        (folder / "lexicon.txt").write_text("".join("{} {}\n".format(w, p) for w, p in VITS_LEXICON.items()),
                                            encoding="utf-8")
    return folder


def spelled(samples: np.ndarray) -> List[float]:
    """The token id × length_scale each HOP-sample step of :func:`make_vits`'s audio holds."""
    level = np.asarray(samples, np.float32) / (32767.0 if samples.dtype == np.int16 else 1.0)
    assert len(level) % HOP == 0, len(level)
    return [round(float(v) * 100, 1) for v in level.reshape(-1, HOP)[:, 0]]


def ids(text: str) -> List[float]:
    return [float(VITS_PHONES.index(p)) for ch in text for p in VITS_LEXICON[ch].split()]


def test_tiny_vits_voice_through_sherpa_onnx(tmp_path: Path) -> None:
    from kiosk.speech.voices.sherpa import SherpaVoice

    voice = SherpaVoice(str(make_vits(tmp_path / "vits-zh-tiny")))
    assert (voice.kind, voice.rate) == ("vits", 16000)
    audio = voice.synthesize("你好大白")
    assert audio.rate == 16000 and spelled(audio.samples) == ids("你好大白")  # lexicon → tokens → model → audio
    # the kiosk's number reading reaches the model (3 → 三); punctuation is not spoken
    assert spelled(voice.synthesize("你好，大白3").samples) == ids("你好大白三")
    faster = SherpaVoice(str(tmp_path), speed=2.0)  # the folder is found under a parent too
    assert spelled(faster.synthesize("大白").samples) == [v / 2 for v in ids("大白")]  # sherpa: length_scale = 1 / speed
    assert len(voice.synthesize("").samples) == 0


def test_say_cli_speaks_with_the_tiny_vits_voice(home, tmp_path: Path, capsys) -> None:
    from kiosk.audio.wavfile import read_wav

    make_vits(Path(home.root) / "models" / "tts" / "vits-zh-tiny")  # where speech.tts = sherpa looks by default
    out = tmp_path / "say.wav"
    assert main(["say", "你好大白", "--voice", "sherpa", "--out", str(out)]) == 0, capsys.readouterr()
    samples, rate = read_wav(str(out))
    assert rate == 16000 and spelled(samples) == ids("你好大白")


@pytest.mark.parametrize("drop", ["comment", "language", "n_speakers", "sample_rate"])
def test_vits_voices_sherpa_would_exit_on_are_refused(tmp_path: Path, drop: str) -> None:
    from kiosk.speech.voices import VoiceUnavailable
    from kiosk.speech.voices.sherpa import SherpaVoice

    folder = make_vits(tmp_path / "vits-lacking", meta={k: v for k, v in VITS_META.items() if k != drop})
    child = _sherpa_child("c = sherpa_onnx.OfflineTtsConfig(model=sherpa_onnx.OfflineTtsModelConfig("
                          "vits=sherpa_onnx.OfflineTtsVitsModelConfig(model=d + 'model.onnx', lexicon=d + 'lexicon.txt', "
                          "tokens=d + 'tokens.txt'))); sherpa_onnx.OfflineTts(c)", str(folder))
    assert child.returncode != 0 and b"does not exist in the metadata" in child.stderr, child  # sherpa-onnx exit()s
    with pytest.raises(VoiceUnavailable, match="not a sherpa-onnx VITS voice: its metadata lacks {}$".format(drop)):
        SherpaVoice(str(folder))


def test_vits_voice_without_a_lexicon_is_refused(tmp_path: Path) -> None:
    from kiosk.speech.voices import VoiceUnavailable
    from kiosk.speech.voices.sherpa import SherpaVoice

    folder = make_vits(tmp_path / "vits-no-lexicon", lexicon=False)
    child = _sherpa_child("c = sherpa_onnx.OfflineTtsConfig(model=sherpa_onnx.OfflineTtsModelConfig("
                          "vits=sherpa_onnx.OfflineTtsVitsModelConfig(model=d + 'model.onnx', tokens=d + 'tokens.txt'))); "
                          "sherpa_onnx.OfflineTts(c)", str(folder))
    assert child.returncode != 0, child  # sherpa-onnx exit()s: no frontend
    with pytest.raises(VoiceUnavailable, match="needs lexicon.txt or espeak-ng-data"):
        SherpaVoice(str(folder))


# ---------------------------------------------------------------------------------- TTS (Matcha + vocoder)

MEL = 80
MATCHA_META = {"model_type": "matcha-tts", "language": "Chinese", "sample_rate": "16000", "n_speakers": "1",
               "use_eos_bos": "0", "pad_id": "0"}
HIFIGAN_META = {"model_type": "hifigan", "sample_rate": "16000"}


def make_matcha(folder: Path, meta: Dict[str, str] = MATCHA_META, vocoder_meta: Dict[str, str] = HIFIGAN_META) -> Path:
    """A Matcha voice (``offline-tts-matcha-model.cc``: x (1, N) int64, x_length (1), noise_scale (1),
    length_scale (1) -> mel (1, MEL, N), every bin of frame t = 0.01 × token id × length_scale) and a
    HiFi-GAN vocoder (``hifigan-vocoder.cc``: mel -> audio (1, T * HOP), a frame's mean held HOP
    samples), as the sherpa-onnx releases name them. The audio spells the token ids like :func:`make_vits`."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    f32 = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)  # noqa: E731
    acoustic = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["xf", "axis1"], ["row"]),
         helper.make_node("Expand", ["row", "bins"], ["frames"]),
         helper.make_node("Mul", ["frames", "step"], ["level"]),
         helper.make_node("Mul", ["level", "length_scale"], ["mel"])],
        "tiny_matcha",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [1, "N"]),
         helper.make_tensor_value_info("x_length", TensorProto.INT64, [1]), f32("noise_scale", [1]), f32("length_scale", [1])],
        [f32("mel", [1, MEL, "N"])],
        [numpy_helper.from_array(np.array([1], np.int64), "axis1"),
         numpy_helper.from_array(np.array([1, MEL, 1], np.int64), "bins"),
         numpy_helper.from_array(np.array([0.01], np.float32), "step")])
    _save(acoustic, folder / "model-steps-3.onnx", meta)
    vocoder = helper.make_graph(
        [helper.make_node("ReduceMean", ["mel"], ["mean"], axes=[1], keepdims=1),
         helper.make_node("Unsqueeze", ["mean", "axis3"], ["column"]),
         helper.make_node("Expand", ["column", "hop"], ["held"]),
         helper.make_node("Reshape", ["held", "flat"], ["audio"])],
        "tiny_hifigan", [f32("mel", [1, MEL, "T"])], [f32("audio", [1, "L"])],
        [numpy_helper.from_array(np.array([3], np.int64), "axis3"),
         numpy_helper.from_array(np.array([1, 1, 1, HOP], np.int64), "hop"),
         numpy_helper.from_array(np.array([1, -1], np.int64), "flat")])
    _save(vocoder, folder / "hifigan_v2.onnx", vocoder_meta)
    (folder / "tokens.txt").write_text("".join("{} {}\n".format(t, i) for i, t in enumerate(VITS_PHONES)), encoding="utf-8")
    (folder / "lexicon.txt").write_text("".join("{} {}\n".format(w, p) for w, p in VITS_LEXICON.items()), encoding="utf-8")
    return folder


def test_tiny_matcha_voice_and_vocoder_through_sherpa_onnx(tmp_path: Path) -> None:
    from kiosk.speech.voices.sherpa import SherpaVoice

    voice = SherpaVoice(str(make_matcha(tmp_path / "matcha-zh-tiny")))  # the vocoder is found in the folder
    assert (voice.kind, voice.rate, Path(voice.vocoder).name) == ("matcha", 16000, "hifigan_v2.onnx")
    steps = spelled(voice.synthesize("你好大白3").samples)
    assert [v for v in steps if v] == ids("你好大白三")  # sherpa-onnx puts blanks (0) between the tokens
    faster = SherpaVoice(str(tmp_path / "matcha-zh-tiny"), speed=2.0)
    assert [v for v in spelled(faster.synthesize("大白").samples) if v] == [v / 2 for v in ids("大白")]


def test_matcha_voices_sherpa_would_crash_on_are_refused(tmp_path: Path) -> None:
    from kiosk.speech.voices import VoiceUnavailable
    from kiosk.speech.voices.sherpa import SherpaVoice

    build = ("c = sherpa_onnx.OfflineTtsConfig(model=sherpa_onnx.OfflineTtsModelConfig(matcha=sherpa_onnx."
             "OfflineTtsMatchaModelConfig(acoustic_model=d + 'model-steps-3.onnx', vocoder=d + 'hifigan_v2.onnx', "
             "lexicon=d + 'lexicon.txt', tokens=d + 'tokens.txt'))); sherpa_onnx.OfflineTts(c).generate('你好')")
    bare = make_matcha(tmp_path / "bare-vocoder", vocoder_meta={})  # no metadata at all
    with pytest.raises(VoiceUnavailable, match="hifigan_v2.onnx is not a sherpa-onnx vocoder: its metadata has no model_type"):
        SherpaVoice(str(bare))
    bare_vits = make_vits(tmp_path / "bare-vits", meta={})
    with pytest.raises(VoiceUnavailable, match="lacks sample_rate, n_speakers, language, comment$"):
        SherpaVoice(str(bare_vits))
    untyped = make_matcha(tmp_path / "untyped-vocoder", vocoder_meta={"sample_rate": "16000"})
    child = _sherpa_child(build, str(untyped))
    assert child.returncode != 0 and b"Unknown model type in vocoder" in child.stderr, child  # then a segfault
    with pytest.raises(VoiceUnavailable, match="hifigan_v2.onnx is not a sherpa-onnx vocoder: its metadata has no model_type"):
        SherpaVoice(str(untyped))
    other_rate = make_matcha(tmp_path / "22k-vocoder", vocoder_meta={"model_type": "hifigan"})  # sherpa assumes 22050
    child = _sherpa_child(build, str(other_rate))
    assert child.returncode != 0 and b"does not match" in child.stderr, child
    with pytest.raises(VoiceUnavailable, match="is for 22050 Hz, the Matcha model .* for 16000 Hz"):
        SherpaVoice(str(other_rate))
    lacking = make_matcha(tmp_path / "lacking", meta={k: v for k, v in MATCHA_META.items() if k != "pad_id"})
    assert _sherpa_child(build, str(lacking)).returncode != 0
    with pytest.raises(VoiceUnavailable, match="not a sherpa-onnx Matcha voice: its metadata lacks pad_id$"):
        SherpaVoice(str(lacking))


def test_a_fetched_sherpa_archive_is_the_recognizer_auto_finds(tmp_path: Path, monkeypatch) -> None:
    import tarfile

    from kiosk.models import catalog

    folder = make_kws(tmp_path / "release" / "sherpa-onnx-kws-tiny-2026-11-28", KWS_CJK, "开门")
    archive = tmp_path / "downloads" / "sherpa-onnx-kws-tiny-2026-11-28.tar.bz2"
    archive.parent.mkdir()
    with tarfile.open(str(archive), "w:bz2") as tf:
        tf.add(str(folder), arcname=folder.name)
    monkeypatch.setitem(catalog.CATALOG, "tiny_kws", catalog.ModelEntry(
        "tiny_kws", archive.name, "https://example.invalid/" + archive.name, catalog.sha256_file(str(archive)), "test",
        unpack_to="asr", folder=folder.name))
    models = tmp_path / "home" / "models"
    assert main(["models", "fetch", "tiny_kws", "--from", str(archive.parent), "--home", str(tmp_path / "home")]) == 0
    rec = create_recognizer("auto", "", models, keywords=["开门"], work_dir=str(tmp_path))
    assert isinstance(rec, SherpaKeywordSpotter) and rec.name == "sherpa-kws:sherpa-onnx-kws-tiny-2026-11-28"
    assert rec.recognize(noise(1.0)).keyword == "开门"
    rec.close()
