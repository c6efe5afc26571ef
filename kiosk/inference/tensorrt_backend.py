"""Native TensorRT backend: ONNX -> cached ``.engine`` -> :class:`TensorRTRunner`.

Written against the documented Python APIs of TensorRT 8.5 (JetPack 5) and TensorRT 10 (JetPack 6);
not run on hardware by its authors. Features are detected with ``hasattr``, never by version string:

* named-tensor API (``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``, ``set_input_shape``,
  ``set_tensor_address``, ``execute_async_v3``): added in 8.5, the only one in 10;
* binding API (``get_binding_index``, ``set_binding_shape``, ``execute_async_v2``): deprecated in 8.5,
  removed in 10 -- used only when the named API is missing (TensorRT < 8.5);
* ``IBuilderConfig.set_memory_pool_limit``: added in 8.4 (``max_workspace_size``: deprecated 8.4, removed 10);
* ``build_serialized_network``: since 8.0; ``EXPLICIT_BATCH``: required in 8.x, ignored (deprecated) in 10.

Engines are specific to GPU and TensorRT version, so they are cached under a key of (model sha256, GPU name,
TensorRT version, precision, profile) and rebuilt when the key changes or the file does not deserialize.
``tensorrt`` and the CUDA bindings are imported lazily: importing this module never fails.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kiosk.inference.base import BackendUnavailable, ModelError, Runner, check_model_file
from kiosk.models.catalog import sha256_file

NAME = "tensorrt"
UNAVAILABLE_REASON = None  # type: Optional[str]
# options only this backend understands (kiosk.inference strips them before calling another backend)
OPTIONS = ("cache_dir", "fp16", "workspace_mib", "max_batch", "shapes", "rebuild")
# default optimization profile for dynamic axes: batch 1..16 (mask classifier), images 32..1280 around 640x480
DEFAULT_PROFILE = {"max_batch": 16, "min_hw": [32, 32], "opt_hw": [480, 640], "max_hw": [1280, 1280]}
_probe = None  # type: Optional[List[Optional[str]]]
_LOGGER = None  # type: Any


def default_cache_dir() -> str:
    home = os.environ.get("DABAI_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "cache", "engines")
    return os.path.join(os.path.expanduser("~"), ".cache", "dabai", "engines")


def engine_key(model_sha256: str, gpu_name: str, trt_version: str, precision: str, profile: Dict[str, Any]) -> str:
    """Pure function: the hex sha256 identifying an engine build."""
    blob = json.dumps([model_sha256, gpu_name, trt_version, precision, profile], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def engine_path(cache_dir: str, model_path: str, key: str) -> str:
    stem = os.path.splitext(os.path.basename(model_path))[0]
    return os.path.join(cache_dir, "{}-{}.engine".format(stem, key[:16]))


def profile_shapes(shape: Sequence[int], profile: Dict[str, Any]) -> Tuple[List[int], List[int], List[int]]:
    """(min, opt, max) for a network input whose dynamic axes are -1: axis 0 is the batch (1..max_batch,
    held at 1 when the image size is dynamic too); axes 2, 3 of a 4-D input are height and width."""
    lo, opt, hi = list(shape), list(shape), list(shape)
    spatial = len(shape) == 4 and (shape[2] < 0 or shape[3] < 0)
    for ax, d in enumerate(shape):
        if d >= 0:
            continue
        if ax == 0:
            lo[ax], opt[ax], hi[ax] = 1, 1, 1 if spatial else int(profile["max_batch"])
        elif len(shape) == 4 and ax in (2, 3):
            i = ax - 2
            lo[ax], opt[ax], hi[ax] = (int(profile[k][i]) for k in ("min_hw", "opt_hw", "max_hw"))
        else:
            raise ValueError("dynamic axis {} of shape {} has no profile rule; pass shapes=".format(ax, list(shape)))
    return lo, opt, hi


def _cuda_modules() -> Tuple[Any, Any]:
    """(cuda-python runtime module, None) or (None, pycuda.driver); ImportError when neither is installed."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6 (the old name ``cuda.cudart`` is gone in 13)

        return runtime, None
    except ImportError:
        pass
    try:
        from cuda import cudart  # cuda-python 11.x / 12.x

        return cudart, None
    except ImportError:
        pass
    import pycuda.driver  # JetPack 5 images usually have pycuda only

    return None, pycuda.driver


class _Cuda:
    """Device 0: its name, one stream, pinned host + device buffers (cuda-python runtime API, else pycuda)."""

    def __init__(self) -> None:
        self.rt, self.drv = _cuda_modules()
        self._ctx = None
        if self.rt is not None:
            self.name = self._ok(self.rt.cudaGetDeviceProperties(0)).name  # bytes (char[256])
            self.stream = self._ok(self.rt.cudaStreamCreate())
            self.handle = int(self.stream)
        else:
            self.drv.init()
            dev = self.drv.Device(0)
            self.name = dev.name()
            self._ctx = dev.retain_primary_context()  # the context TensorRT's runtime-API calls use as well
            with self:
                self.stream = self.drv.Stream()
            self.handle = self.stream.handle
        if isinstance(self.name, bytes):
            self.name = self.name.split(b"\0", 1)[0].decode("utf-8", "replace")

    def _ok(self, res: Any) -> Any:  # cuda-python returns (error, *results)
        if res[0] != self.rt.cudaError_t.cudaSuccess:
            raise RuntimeError("CUDA error {}".format(res[0]))
        return res[1] if len(res) > 1 else None

    def __enter__(self) -> "_Cuda":  # pycuda: a context is current per thread, so push ours around each call
        if self._ctx is not None:
            self._ctx.push()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ctx is not None:
            self.drv.Context.pop()

    def alloc(self, nbytes: int) -> Tuple[np.ndarray, Any, int]:
        """(pinned host bytes, what to free, device address)."""
        if self.drv is not None:
            dev = self.drv.mem_alloc(nbytes)
            return self.drv.pagelocked_empty(nbytes, np.uint8), dev, int(dev)
        hptr = self._ok(self.rt.cudaMallocHost(nbytes))
        host = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(hptr))
        dptr = self._ok(self.rt.cudaMalloc(nbytes))
        return host, (hptr, dptr), dptr

    def free(self, owner: Any) -> None:
        if self.drv is not None:
            owner.free()  # the pinned host array is freed with its last reference
        else:
            self._ok(self.rt.cudaFree(owner[1]))
            self._ok(self.rt.cudaFreeHost(owner[0]))

    def to_device(self, dptr: int, host: np.ndarray, nbytes: int) -> None:
        if self.drv is not None:
            self.drv.memcpy_htod_async(dptr, host[:nbytes], self.stream)
        else:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._ok(self.rt.cudaMemcpyAsync(dptr, host.ctypes.data, nbytes, kind, self.stream))

    def to_host(self, host: np.ndarray, dptr: int, nbytes: int) -> None:
        if self.drv is not None:
            self.drv.memcpy_dtoh_async(host[:nbytes], dptr, self.stream)
        else:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._ok(self.rt.cudaMemcpyAsync(host.ctypes.data, dptr, nbytes, kind, self.stream))

    def sync(self) -> None:
        if self.drv is not None:
            self.stream.synchronize()
        else:
            self._ok(self.rt.cudaStreamSynchronize(self.stream))


def _unavailable_reason() -> Optional[str]:
    """None when TensorRT, CUDA Python bindings and a CUDA device are usable, else why not (probed once)."""
    global _probe
    if _probe is None:
        try:
            import tensorrt  # noqa: F401
        except Exception as exc:
            _probe = ["tensorrt is not installed ({}: {})".format(type(exc).__name__, exc)]
            return _probe[0]
        try:
            _Cuda()
            _probe = [None]
        except ImportError as exc:
            _probe = ["no CUDA Python bindings: install cuda-python or pycuda ({})".format(exc)]
        except Exception as exc:
            _probe = ["no usable CUDA device ({}: {})".format(type(exc).__name__, exc)]
    return _probe[0]


def available() -> bool:
    global UNAVAILABLE_REASON
    UNAVAILABLE_REASON = _unavailable_reason()
    return UNAVAILABLE_REASON is None


def build_engine(trt: Any, logger: Any, onnx_path: str, fp16: bool, profile: Dict[str, Any], workspace_mib: int) -> bytes:
    builder = trt.Builder(logger)
    explicit = hasattr(builder, "max_batch_size")  # implicit batch exists (8.x): ask for explicit batch
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if explicit else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as f:
        if not parser.parse(f.read()):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(onnx_path, "TensorRT cannot parse it: " + errs[:400])
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):  # 8.4+
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    else:
        config.max_workspace_size = workspace_mib << 20
    if fp16 and getattr(builder, "platform_has_fast_fp16", True):
        config.set_flag(trt.BuilderFlag.FP16)
    opt = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        t = network.get_input(i)
        given = profile.get("shapes", {}).get(t.name)
        try:
            lo, mid, hi = given if given else profile_shapes(list(t.shape), profile)
        except ValueError as exc:
            raise ModelError(onnx_path, "input {}: {}".format(t.name, exc)) from exc
        opt.set_shape(t.name, lo, mid, hi)
    config.add_optimization_profile(opt)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(onnx_path, "TensorRT engine build failed (see the TensorRT log above)")
    return bytes(plan)


class EngineInfo(NamedTuple):
    engine: Any
    runtime: Any  # must outlive the engine
    path: str
    key: str
    status: str  # 'cached', 'built', 'rebuilt (stale)' or 'rebuilt (corrupt)'


def _logger(trt: Any) -> Any:
    global _LOGGER
    if _LOGGER is None:  # one logger per process: TensorRT 8 warns when builders/runtimes get different ones
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def _stale_engines(cache_dir: str, onnx_path: str, current: str) -> List[str]:
    stem = os.path.splitext(os.path.basename(onnx_path))[0] + "-"
    names = os.listdir(cache_dir) if os.path.isdir(cache_dir) else []
    return [os.path.join(cache_dir, n) for n in names
            if n.startswith(stem) and n.endswith(".engine") and len(n) == len(stem) + 16 + 7
            and os.path.join(cache_dir, n) != current]


def ensure_engine(onnx_path: str, cache_dir: Optional[str] = None, fp16: bool = True, workspace_mib: int = 256,
                  max_batch: int = 16, shapes: Optional[Dict[str, Any]] = None, rebuild: bool = False,
                  cuda: Optional[_Cuda] = None) -> EngineInfo:
    """The cached engine for ``onnx_path``, built (or rebuilt when stale or corrupt) as needed."""
    import tensorrt as trt

    check_model_file(onnx_path)
    cuda = cuda or _Cuda()
    cache_dir = cache_dir or default_cache_dir()
    profile = dict(DEFAULT_PROFILE, max_batch=int(max_batch), shapes=shapes or {})
    key = engine_key(sha256_file(onnx_path), cuda.name, trt.__version__, "fp16" if fp16 else "fp32", profile)
    path = engine_path(cache_dir, onnx_path, key)
    runtime = trt.Runtime(_logger(trt))
    status = "built"
    with cuda:
        if os.path.isfile(path) and not rebuild:
            try:
                with open(path, "rb") as f:
                    engine = runtime.deserialize_cuda_engine(f.read())  # None (or raises) when corrupt
            except Exception:
                engine = None
            if engine is not None:
                return EngineInfo(engine, runtime, path, key, "cached")
            status = "rebuilt (corrupt)"
        stale = _stale_engines(cache_dir, onnx_path, path)
        if stale and status == "built":
            status = "rebuilt (stale)"
        plan = build_engine(trt, _logger(trt), onnx_path, fp16, profile, workspace_mib)
        os.makedirs(cache_dir, exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(plan)
        os.replace(path + ".tmp", path)
        for p in stale:
            os.remove(p)
        engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise ModelError(path, "TensorRT could not deserialize the engine it just built")
    return EngineInfo(engine, runtime, path, key, status)


class TensorRTRunner(Runner):
    """A TensorRT engine behind the :class:`Runner` interface: one CUDA stream, pinned host buffers,
    ``run`` synchronizes before it returns. One runner serves one thread at a time."""

    backend = NAME

    def __init__(self, path: str, cache_dir: Optional[str] = None, fp16: bool = True, workspace_mib: int = 256,
                 max_batch: int = 16, shapes: Optional[Dict[str, Any]] = None, rebuild: bool = False) -> None:
        reason = _unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        import tensorrt as trt

        self.path = str(path)
        self._cuda = _Cuda()
        if self.path.lower().endswith(".engine"):  # a prebuilt engine: used as is, no key to check
            check_model_file(self.path)
            runtime = trt.Runtime(_logger(trt))
            with open(self.path, "rb") as f, self._cuda:
                engine = runtime.deserialize_cuda_engine(f.read())
            if engine is None:
                raise ModelError(self.path, "TensorRT cannot deserialize it (other GPU / TensorRT version, or corrupt)")
            self.info = EngineInfo(engine, runtime, self.path, "", "prebuilt")
        else:
            self.info = ensure_engine(self.path, cache_dir, fp16, workspace_mib, max_batch, shapes, rebuild, self._cuda)
        eng = self._engine = self.info.engine
        with self._cuda:
            self._ctx = eng.create_execution_context()
        if self._ctx is None:
            raise ModelError(self.path, "TensorRT could not create an execution context (out of GPU memory?)")
        self._named = hasattr(eng, "num_io_tensors") and hasattr(self._ctx, "execute_async_v3")  # 8.5+
        if self._named:
            names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]
            is_in = {n: eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
            self._shape = {n: list(eng.get_tensor_shape(n)) for n in names}
            self._dtype = {n: np.dtype(trt.nptype(eng.get_tensor_dtype(n))) for n in names}
        else:  # TensorRT < 8.5: binding indices (one optimization profile: indices 0 .. num_bindings-1)
            idx = eng.get_binding_index
            names = sorted((eng.get_binding_name(i) for i in range(eng.num_bindings)), key=idx)
            is_in = {n: eng.binding_is_input(idx(n)) for n in names}
            self._shape = {n: list(eng.get_binding_shape(idx(n))) for n in names}
            self._dtype = {n: np.dtype(trt.nptype(eng.get_binding_dtype(idx(n)))) for n in names}
        self._names = names
        self._inputs = [n for n in names if is_in[n]]
        self._outputs = [n for n in names if not is_in[n]]
        self._buf = {}  # type: Dict[str, Tuple[np.ndarray, Any, int]]  # grown on demand, never shrunk

    @property
    def input_names(self) -> List[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> List[str]:
        return list(self._outputs)

    def input_shape(self, name: str) -> List[object]:
        if name not in self._inputs:
            raise KeyError(name)
        return [None if d < 0 else int(d) for d in self._shape[name]]

    def output_shape(self, name: str) -> List[object]:
        if name not in self._outputs:
            raise KeyError(name)
        return [None if d < 0 else int(d) for d in self._shape[name]]

    def _buffer(self, name: str, nbytes: int) -> Tuple[np.ndarray, int]:
        buf = self._buf.get(name)
        if buf is None or buf[0].nbytes < nbytes:
            if buf is not None:
                self._cuda.free(buf[1])
            buf = self._buf[name] = self._cuda.alloc(max(nbytes, 256))
        return buf[0], buf[2]

    def _tensor_shape(self, name: str) -> Tuple[int, ...]:
        ctx = self._ctx
        return tuple(ctx.get_tensor_shape(name) if self._named else ctx.get_binding_shape(self._engine.get_binding_index(name)))

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise ModelError(self.path, "missing inputs: {}".format(", ".join(missing)))
        ctx, cuda = self._ctx, self._cuda
        with cuda:
            for n in self._inputs:
                a = np.ascontiguousarray(feeds[n], dtype=self._dtype[n])
                if self._named:
                    ok = ctx.set_input_shape(n, a.shape)
                else:
                    ok = ctx.set_binding_shape(self._engine.get_binding_index(n), a.shape)
                if ok is False:
                    raise ModelError(self.path, "input {} shape {} is outside the engine's profile".format(n, list(a.shape)))
                host, dptr = self._buffer(n, a.nbytes)
                host[:a.nbytes] = a.reshape(-1).view(np.uint8)
                cuda.to_device(dptr, host, a.nbytes)
            shapes = {n: self._tensor_shape(n) for n in self._outputs}  # resolved now that input shapes are set
            for n, shape in shapes.items():
                if any(d < 0 for d in shape):
                    raise ModelError(self.path, "output {} has unresolved shape {}".format(n, list(shape)))
            nbytes = {n: int(np.prod(shape)) * self._dtype[n].itemsize for n, shape in shapes.items()}
            for n in self._outputs:
                self._buffer(n, nbytes[n])
            ptrs = [self._buf[n][2] for n in self._names]  # binding order for execute_async_v2
            if self._named:
                for n, ptr in zip(self._names, ptrs):
                    ctx.set_tensor_address(n, ptr)
                ok = ctx.execute_async_v3(cuda.handle)
            else:
                ok = ctx.execute_async_v2(ptrs, cuda.handle)
            if not ok:
                raise ModelError(self.path, "TensorRT inference failed")
            for n in self._outputs:
                cuda.to_host(self._buf[n][0], self._buf[n][2], nbytes[n])
            cuda.sync()
            return {n: self._buf[n][0][:nbytes[n]].view(self._dtype[n]).reshape(shapes[n]).copy() for n in self._outputs}

    def close(self) -> None:
        with self._cuda:
            for _host, owner, _dptr in self._buf.values():
                self._cuda.free(owner)
        self._buf = {}


def load(path: str, **kwargs: Any) -> Runner:
    """Options: cache_dir, fp16, workspace_mib, max_batch, shapes ({input: (min, opt, max)}), rebuild.
    Options meant for other backends (``auto`` passes the caller's through) are ignored."""
    return TensorRTRunner(path, **{k: v for k, v in kwargs.items() if k in OPTIONS})
