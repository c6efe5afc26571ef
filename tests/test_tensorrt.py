"""TensorRT backend: cache key, availability, ``auto`` fallback, engine-build command.

Tests marked by ``real_trt`` need TensorRT and a CUDA GPU (the Jetson) and are skipped elsewhere.
The others run anywhere; some drive the runner's plumbing (shapes, buffers, both API generations,
engine cache) through a small fake of the TensorRT and CUDA modules -- that checks our code against
our reading of the API, not TensorRT itself.
"""

from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import pytest
from _fake_gpu import BuilderConfig, OptimizationProfile

from kiosk.cli.engine import cmd_engine_build
from kiosk.inference import BackendUnavailable, ModelError, available_backends, load_model
from kiosk.inference import tensorrt_backend as trtb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("DABAI_SHARED", os.path.join(REPO, "..", "shared"))
MASK_ONNX = os.path.join(REPO, "engines", "mask_classifier.onnx")
YUNET = os.path.join(SHARED, "models", "yunet", "yunet_n_dynamic.onnx")
needs_mask = pytest.mark.skipif(not os.path.isfile(MASK_ONNX), reason="engines/mask_classifier.onnx not trained yet")


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Make ``import tensorrt`` fail, as on a machine without it, and forget any earlier probe."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(trtb, "_probe", None)


# -- pure parts --------------------------------------------------------------------------------
def test_engine_key_changes_with_each_part():
    base = ("ab" * 32, "Orin", "8.5.2.2", "fp16", dict(trtb.DEFAULT_PROFILE), 256)
    k = trtb.engine_key(*base)
    assert k == trtb.engine_key(*base) and len(k) == 64
    others = [
        ("cd" * 32,) + base[1:],  # model bytes
        base[:1] + ("Xavier",) + base[2:],  # GPU
        base[:2] + ("10.3.0",) + base[3:],  # TensorRT version
        base[:3] + ("fp32",) + base[4:],  # precision
        base[:4] + (dict(trtb.DEFAULT_PROFILE, max_batch=8), 256),  # profile
        base[:5] + (512,),  # workspace
    ]
    keys = {trtb.engine_key(*o) for o in others}
    assert k not in keys and len(keys) == len(others)
    assert trtb.engine_path("/c", "/m/mask_classifier.onnx", k) == "/c/mask_classifier-{}.engine".format(k[:16])


def test_profile_shapes():
    p = trtb.DEFAULT_PROFILE
    assert trtb.profile_shapes([-1, 3, -1, -1], p) == ([1, 3, 32, 32], [1, 3, 480, 640], [1, 3, 1280, 1280])
    assert trtb.profile_shapes([-1, 3, 64, 64], p) == ([1, 3, 64, 64], [1, 3, 64, 64], [32, 3, 64, 64])
    with pytest.raises(ValueError):
        trtb.profile_shapes([1, -1], p)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DABAI_HOME", str(tmp_path))
    assert trtb.default_cache_dir() == os.path.join(str(tmp_path), "cache", "engines")
    monkeypatch.delenv("DABAI_HOME")
    assert trtb.default_cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "dabai", "engines")


# -- without TensorRT (this machine) -------------------------------------------------------------
@needs_mask
def test_unavailable_backend_has_a_reason(no_tensorrt):
    assert "tensorrt is not installed" in (available_backends()["tensorrt"] or "")
    with pytest.raises(BackendUnavailable, match="tensorrt is not installed"):
        load_model(MASK_ONNX, backend="tensorrt")


@needs_mask
def test_auto_falls_back_to_onnxruntime(no_tensorrt, tmp_path):
    r = load_model(MASK_ONNX, cache_dir=str(tmp_path), fp16=True)  # TensorRT options are not passed to onnxruntime
    assert r.backend == "onnxruntime"
    assert load_model(MASK_ONNX, "onnxruntime", cache_dir=str(tmp_path)).backend == "onnxruntime"


@needs_mask
def test_auto_falls_back_when_tensorrt_cannot_load(monkeypatch):
    def broken(path, **kw):
        raise ModelError(path, "TensorRT cannot parse it: unsupported op")

    monkeypatch.setattr(trtb, "available", lambda: True)
    monkeypatch.setattr(trtb, "load", broken)
    assert load_model(MASK_ONNX).backend == "onnxruntime"
    with pytest.raises(ModelError, match="unsupported op"):
        load_model(MASK_ONNX, backend="tensorrt")


def test_engine_build_without_tensorrt(no_tensorrt, tmp_path, capsys):
    assert cmd_engine_build([MASK_ONNX], str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "TensorRT is not available here (tensorrt is not installed" in err
    assert "`dabai-kiosk engine build`" in err


# -- the runner's plumbing against a fake TensorRT + CUDA ----------------------------------------
_MEM = {}  # fake device memory: address -> uint8 array


class _FakeCuda:
    name, handle, mapped = "FakeGPU", 7, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def alloc(self, nbytes):
        dev = np.zeros(nbytes, np.uint8)
        _MEM[dev.ctypes.data] = dev
        return np.zeros(nbytes, np.uint8), dev, dev.ctypes.data

    def free(self, owner):
        _MEM.pop(owner.ctypes.data)

    def to_device(self, dptr, host, nbytes):
        _MEM[dptr][:nbytes] = host[:nbytes]

    def to_host(self, host, dptr, nbytes):
        host[:nbytes] = _MEM[dptr][:nbytes]

    def sync(self):
        pass


class _Classifier:
    """probs = per-channel mean of the input; shapes as a [N,3,64,64] -> [N,3] classifier with batch 1..16."""

    def __init__(self):
        self.shape, self.addr = None, {}

    def _set_shape(self, shape):
        self.shape = tuple(shape)
        return 1 <= shape[0] <= 16 and tuple(shape[1:]) == (3, 64, 64)

    def _shape_of(self, name):
        return self.shape if name == "input" else (self.shape[0], 3)

    def _execute(self, stream):
        assert stream == _FakeCuda.handle
        n = int(np.prod(self.shape)) * 4
        x = _MEM[self.addr["input"]][:n].view(np.float32).reshape(self.shape)
        y = x.reshape(self.shape[0], 3, -1).mean(-1).astype(np.float32)
        _MEM[self.addr["probs"]][:y.nbytes] = y.reshape(-1).view(np.uint8)
        return True


class _Ctx(_Classifier):  # named tensors (TensorRT 8.5+, 10)
    def set_input_shape(self, name, shape):
        return self._set_shape(shape)

    def get_tensor_shape(self, name):
        return self._shape_of(name)

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream):
        return self._execute(stream)


class _CtxV2(_Classifier):  # binding indices only (TensorRT < 8.5)
    def set_binding_shape(self, i, shape):
        return self._set_shape(shape)

    def get_binding_shape(self, i):
        return self._shape_of(["input", "probs"][i])

    def execute_async_v2(self, bindings, stream):
        self.addr = dict(zip(["input", "probs"], bindings))
        return self._execute(stream)


class _Engine:
    names, shapes = ["input", "probs"], [[-1, 3, 64, 64], [-1, 3]]
    num_io_tensors = 2

    def __init__(self, plan):
        self.plan = plan

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return "in" if name == "input" else "out"

    def get_tensor_shape(self, name):
        return self.shapes[self.names.index(name)]

    def get_tensor_dtype(self, name):
        return "float"

    def get_tensor_profile_shape(self, name, index):
        return [1, 3, 64, 64], [1, 3, 64, 64], [16, 3, 64, 64]

    def create_execution_context(self):
        return _Ctx()


class _EngineV2:
    num_bindings = 2

    def get_binding_name(self, i):
        return _Engine.names[i]

    def get_binding_index(self, name):
        return _Engine.names.index(name)

    def binding_is_input(self, i):
        return i == 0

    def get_binding_shape(self, i):
        return _Engine.shapes[i]

    def get_binding_dtype(self, i):
        return "float"

    def get_profile_shape(self, profile, i):
        return [1, 3, 64, 64], [1, 3, 64, 64], [16, 3, 64, 64]

    def create_execution_context(self):
        return _CtxV2()


def _fake_trt(binding_api=False):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.0.fake"
    trt.builds = []
    ns = types.SimpleNamespace
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})
    trt.TensorIOMode = ns(INPUT="in", OUTPUT="out")
    trt.MemoryPoolType = ns(WORKSPACE="ws")
    trt.BuilderFlag = ns(FP16="fp16")
    trt.NetworkDefinitionCreationFlag = ns(EXPLICIT_BATCH=0)

    def nptype(dt):  # TensorRT 8.5 under numpy >= 1.24 (np.bool is gone): the backend must never call it
        raise AttributeError("module 'numpy' has no attribute 'bool'.")

    trt.nptype = nptype

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            if not bytes(data).startswith(b"FAKEPLAN"):
                return None
            return _EngineV2() if binding_api else _Engine(bytes(data))

    class Builder:
        platform_has_fast_fp16 = True

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            inp = ns(name="input", shape=[-1, 3, 64, 64])
            return ns(num_inputs=1, get_input=lambda i: inp)

        create_builder_config = BuilderConfig
        create_optimization_profile = OptimizationProfile

        def build_serialized_network(self, network, config):
            trt.builds.append(config)
            return b"FAKEPLAN" + json.dumps([config.flags, config.profiles]).encode()

    trt.Runtime, trt.Builder = Runtime, Builder
    trt.OnnxParser = lambda network, logger: ns(parse=lambda data: True, num_errors=0)
    return trt


@pytest.fixture(params=["named", "bindings"])
def fake_trt(request, monkeypatch):
    trt = _fake_trt(binding_api=request.param == "bindings")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trtb, "_Cuda", _FakeCuda)
    monkeypatch.setattr(trtb, "_probe", [None])
    monkeypatch.setattr(trtb, "_LOGGER", None)
    return trt


@needs_mask
def test_runner_plumbing_with_fake_tensorrt(fake_trt, tmp_path):
    r = load_model(MASK_ONNX, cache_dir=str(tmp_path), use_gpu=True)  # auto picks TensorRT; onnxruntime options ignored
    assert r.backend == "tensorrt" and r.info.status == "built"
    assert r.input_names == ["input"] and r.output_names == ["probs"]
    assert r.input_shape("input") == [None, 3, 64, 64]
    cfg = fake_trt.builds[0]
    assert cfg.flags == ["fp16"] and cfg.pool == ("ws", 256 << 20)
    assert cfg.profiles[0]["input"] == ([1, 3, 64, 64], [1, 3, 64, 64], [32, 3, 64, 64])
    assert r.max_batch == 16  # what this fake engine's profile says
    rng = np.random.default_rng(0)
    for n in (1, 5, 2, 16, 17, 40):  # buffers grow, then get reused for smaller batches; above 16: in chunks
        x = rng.random((n, 3, 64, 64), dtype=np.float32)
        y = r.run({"input": x})["probs"]
        assert y.shape == (n, 3) and y.dtype == np.float32
        np.testing.assert_allclose(y, x.reshape(n, 3, -1).mean(-1), rtol=1e-6)
    with pytest.raises(ModelError, match="outside the engine's profile"):
        r.primary.run({"input": np.zeros((1, 3, 32, 32), np.float32)})  # auto wraps TensorRT in a FallbackRunner
    r.close()


@needs_mask
def test_engine_cache_reuse_stale_and_corrupt(fake_trt, tmp_path, capsys):
    cache = str(tmp_path)
    first = trtb.ensure_engine(MASK_ONNX, cache)
    assert first.status == "built" and os.path.isfile(first.path)
    assert trtb.ensure_engine(MASK_ONNX, cache).status == "cached"
    with open(first.path, "wb") as f:
        f.write(b"truncated")
    assert trtb.ensure_engine(MASK_ONNX, cache).status == "rebuilt (corrupt)"
    fake_trt.__version__ = "10.1.fake"  # a TensorRT upgrade: new key, the old engine goes
    second = trtb.ensure_engine(MASK_ONNX, cache)
    assert second.status == "rebuilt (stale)" and second.key != first.key and not os.path.exists(first.path)
    assert len(fake_trt.builds) == 3
    assert trtb.ensure_engine(MASK_ONNX, cache, fp16=False).key != second.key  # one engine per model is kept
    # the command: one line per model; missing files are errors, not crashes
    assert cmd_engine_build([MASK_ONNX], cache) == 0 and cmd_engine_build([MASK_ONNX], cache) == 0
    line = "{}: {} {} key {}".format(MASK_ONNX, "{}", second.path, second.key[:16])
    assert capsys.readouterr().out.splitlines() == [line.format("rebuilt (stale)"), line.format("up to date")]
    assert cmd_engine_build([MASK_ONNX, str(tmp_path / "nope.onnx")], cache) == 1
    assert "not found" in capsys.readouterr().err


# -- real TensorRT (the Jetson) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def real_trt():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it comes with JetPack)")
    trtb._probe = None
    if not trtb.available():
        pytest.skip("TensorRT backend unavailable: {}".format(trtb.UNAVAILABLE_REASON))


@needs_mask
def test_real_classifier_engine_matches_onnxruntime(real_trt, tmp_path):
    trt_r = load_model(MASK_ONNX, "tensorrt", cache_dir=str(tmp_path))
    ort_r = load_model(MASK_ONNX, "onnxruntime", use_gpu=False)
    assert trt_r.input_names == ort_r.input_names and "probs" in trt_r.output_names
    rng = np.random.default_rng(1)
    for n in (1, 5, 16):
        x = rng.standard_normal((n, 3, 64, 64)).astype(np.float32)
        diff = np.abs(trt_r.run({"input": x})["probs"] - ort_r.run({"input": x})["probs"]).max()
        assert diff < 1e-2, "batch {}: max abs diff {}".format(n, diff)
    again = load_model(MASK_ONNX, "tensorrt", cache_dir=str(tmp_path))
    assert again.info.status == "cached" and again.info.path == trt_r.info.path


@pytest.mark.skipif(not os.path.isfile(YUNET), reason="YuNet not found under ../shared (set DABAI_SHARED)")
def test_real_yunet_engine_matches_onnxruntime(real_trt, tmp_path):
    trt_r = load_model(YUNET, "tensorrt", cache_dir=str(tmp_path))
    ort_r = load_model(YUNET, "onnxruntime", use_gpu=False)
    x = np.random.default_rng(2).uniform(0, 255, (1, 3, 480, 640)).astype(np.float32)
    a, b = trt_r.run({"input": x}), ort_r.run({"input": x})
    for name in ("cls_8", "obj_8", "cls_32", "obj_32"):
        assert a[name].shape == b[name].shape
        assert np.abs(a[name] - b[name]).max() < 1e-2, name
