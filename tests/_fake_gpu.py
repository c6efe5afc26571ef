"""A fake TensorRT and a fake CUDA runtime (cuda-python's ``cuda.bindings.runtime``) for tests without a GPU.

"Device memory" is host memory here, so every address is a real one: the runner's copies (``cudaMemcpyAsync``)
are ``ctypes.memmove`` and the engine reads its inputs and writes its outputs at the addresses it is given.
The engine runs the ONNX model through ONNX Runtime underneath, so its outputs can be compared with ONNX
Runtime's, and ``wrong=True`` makes an engine whose outputs are off (to see a comparison fail).
Like TensorRT 8.5 under numpy >= 1.24, ``trt.nptype`` raises AttributeError (``np.bool``).

This checks the project's code against its reading of the documented APIs, not TensorRT or CUDA themselves.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import sys
import types

import numpy as np
import onnxruntime as ort

ns = types.SimpleNamespace


def fake_cuda_runtime(integrated: bool = False, name: str = "Fake GPU") -> types.ModuleType:
    """A ``cuda.bindings.runtime`` stand-in: results as (error, value) tuples, memory kept in numpy arrays."""
    rt = types.ModuleType("cuda.bindings.runtime")
    rt.cudaError_t = ns(cudaSuccess=0)
    rt.cudaMemcpyKind = ns(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)
    rt.cudaHostAllocMapped = 2
    rt.memory = {}  # address -> array (keeps it alive)
    rt.copies = []  # (kind, nbytes) of each cudaMemcpyAsync
    rt.kinds = {}  # address -> "host" | "device" | "mapped"

    def _new(nbytes, kind):
        a = np.zeros(nbytes, np.uint8)
        rt.memory[a.ctypes.data] = a
        rt.kinds[a.ctypes.data] = kind
        return a.ctypes.data

    rt.cudaGetDeviceProperties = lambda dev: (0, ns(name=name.encode() + b"\0" * 8, integrated=int(integrated)))
    rt.cudaStreamCreate = lambda: (0, 7)
    rt.cudaMallocHost = lambda n: (0, _new(n, "host"))
    rt.cudaHostAlloc = lambda n, flags: (0, _new(n, "mapped" if flags & rt.cudaHostAllocMapped else "host"))
    rt.cudaHostGetDevicePointer = lambda ptr, flags: (0, ptr) if rt.kinds.get(ptr) == "mapped" else (1, None)
    rt.cudaMalloc = lambda n: (0, _new(n, "device"))

    def free(ptr):
        rt.memory.pop(ptr)
        return (0,)

    rt.cudaFree = rt.cudaFreeHost = free

    def memcpy(dst, src, n, kind, stream):
        rt.copies.append((kind, n))
        ctypes.memmove(dst, src, n)
        return (0,)

    rt.cudaMemcpyAsync = memcpy
    rt.cudaStreamSynchronize = lambda stream: (0,)
    return rt


def install_cuda(monkeypatch, integrated: bool = False) -> types.ModuleType:
    rt = fake_cuda_runtime(integrated)
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = rt
    cuda.bindings = bindings
    for mod, value in (("cuda", cuda), ("cuda.bindings", bindings), ("cuda.bindings.runtime", rt)):
        monkeypatch.setitem(sys.modules, mod, value)
    return rt


class DataType:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "DataType." + self.name


_PLANS = {}  # plan digest -> (onnx bytes, profile)
_ORT_TYPES = {"tensor(float)": "FLOAT", "tensor(float16)": "HALF", "tensor(int64)": "INT64", "tensor(int32)": "INT32",
              "tensor(bool)": "BOOL", "tensor(uint8)": "UINT8", "tensor(int8)": "INT8", "tensor(bfloat16)": "BF16"}
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_,
       "UINT8": np.uint8, "INT8": np.int8}


def _dims(shape):
    return [d if isinstance(d, int) else -1 for d in shape]


class _Engine:
    """Named-tensor API (TensorRT 8.5+ / 10) over an ONNX Runtime session."""

    def __init__(self, onnx, profile, wrong):
        self.sess = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
        self.profile, self.wrong = profile, wrong
        self.ins = {i.name: i for i in self.sess.get_inputs()}
        self.outs = {o.name: o for o in self.sess.get_outputs()}
        self.names = list(self.ins) + list(self.outs)
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return "in" if name in self.ins else "out"

    def get_tensor_shape(self, name):
        return _dims((self.ins.get(name) or self.outs[name]).shape)

    def get_tensor_dtype(self, name):
        return DataType(_ORT_TYPES[(self.ins.get(name) or self.outs[name]).type])

    def get_tensor_profile_shape(self, name, profile_index):
        assert profile_index == 0
        return self.profile[name]

    def create_execution_context(self):
        return _Context(self)


class _Context:
    def __init__(self, engine):
        self.e, self.shapes, self.addr, self.executions = engine, {}, {}, 0

    def set_input_shape(self, name, shape):
        lo, _opt, hi = self.e.profile[name]
        if len(shape) != len(lo) or any(not a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False
        self.shapes[name] = tuple(int(s) for s in shape)
        return True

    def _feeds(self, read=True):
        feeds = {}
        for name, shape in self.shapes.items():
            dt = np.dtype(_NP[self.e.get_tensor_dtype(name).name])
            n = int(np.prod(shape)) * dt.itemsize
            if read:
                raw = np.ctypeslib.as_array((ctypes.c_uint8 * n).from_address(self.addr[name]))
                feeds[name] = raw.view(dt).reshape(shape).copy()
            else:
                feeds[name] = np.zeros(shape, dt)
        return feeds

    def get_tensor_shape(self, name):
        if name in self.e.ins:
            return self.shapes[name]
        out = self.e.sess.run([name], self._feeds(read=False))[0]  # the shape the inputs give it
        return out.shape

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream):
        assert stream == 7
        self.executions += 1
        outs = self.e.sess.run(list(self.e.outs), self._feeds())
        for name, y in zip(self.e.outs, outs):
            y = np.ascontiguousarray(y)
            if self.e.wrong:
                y = (y * 1.5 + 0.25).astype(y.dtype)
            ctypes.memmove(self.addr[name], y.ctypes.data, y.nbytes)
        return True


class BuilderConfig:
    """TensorRT's IBuilderConfig as the backend uses it: what was asked is kept for the tests to read."""

    def __init__(self):
        self.flags, self.profiles, self.pool = [], [], None

    def set_memory_pool_limit(self, pool, size):
        self.pool = (pool, size)

    def set_flag(self, f):
        self.flags.append(f)

    def add_optimization_profile(self, p):
        self.profiles.append(p)


class OptimizationProfile(dict):
    def set_shape(self, name, lo, opt, hi):
        self[name] = (list(lo), list(opt), list(hi))


def fake_tensorrt(wrong: bool = False, version: str = "10.0.0.fake", fail_build: Exception = None) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.builds = []
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=2: None})
    trt.TensorIOMode = ns(INPUT="in", OUTPUT="out")
    trt.MemoryPoolType = ns(WORKSPACE="ws")
    trt.BuilderFlag = ns(FP16="fp16")
    trt.NetworkDefinitionCreationFlag = ns(EXPLICIT_BATCH=0)

    def nptype(dt):  # TensorRT 8.5's own, under numpy >= 1.24
        raise AttributeError("module 'numpy' has no attribute 'bool'.")

    trt.nptype = nptype

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            if not data.startswith(b"FAKEPLAN") or data[8:].decode(errors="replace") not in _PLANS:
                return None
            onnx, profile = _PLANS[data[8:].decode()]
            return _Engine(onnx, profile, wrong)

    class Parser:
        def __init__(self, network, logger):
            self.network, self.num_errors = network, 0

        def parse(self, data):
            sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            self.network.onnx = data
            self.network.inputs = [ns(name=i.name, shape=_dims(i.shape)) for i in sess.get_inputs()]
            self.network.num_inputs = len(self.network.inputs)
            return True

    class Builder:
        platform_has_fast_fp16 = True

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            net = ns(num_inputs=0, inputs=[])
            net.get_input = lambda i: net.inputs[i]
            return net

        create_builder_config = BuilderConfig
        create_optimization_profile = OptimizationProfile

        def build_serialized_network(self, network, config):
            if fail_build is not None:
                raise fail_build
            trt.builds.append(config)
            digest = hashlib.sha256(network.onnx + json.dumps([config.flags, config.profiles]).encode()).hexdigest()
            _PLANS[digest] = (network.onnx, dict(config.profiles[0]))
            return b"FAKEPLAN" + digest.encode()

    trt.Runtime, trt.Builder, trt.OnnxParser = Runtime, Builder, Parser
    return trt


class FakeKernel:
    """The CUDA preprocessing kernel, as its numpy reference, reading and writing the addresses it is given."""

    launches = 0

    def launch(self, src, sw, sh, spitch, dst, rw, rh, pw, ph, area, stream):
        from kiosk.inference.cuda_preprocess import reference

        FakeKernel.launches += 1
        img = np.ctypeslib.as_array((ctypes.c_uint8 * (sh * spitch)).from_address(src)).reshape(sh, spitch // 3, 3)
        blob = reference(img[:, :sw], (rw, rh), (pw, ph), area)
        ctypes.memmove(dst, blob.ctypes.data, blob.nbytes)


def cuda_image(frame: np.ndarray) -> types.SimpleNamespace:
    """A jetson-utils ``cudaImage`` stand-in (bgr8, mapped: its ``ptr`` is the frame's own memory)."""
    frame = np.ascontiguousarray(frame)
    return ns(ptr=frame.ctypes.data, width=frame.shape[1], height=frame.shape[0], channels=3, format="bgr8",
              mapped=True, keep=frame)
