"""Native TensorRT backend: ONNX -> cached ``.engine`` -> :class:`TensorRTRunner`.

Written against the documented Python APIs of TensorRT 8.5 (JetPack 5) and TensorRT 10 (JetPack 6);
not run on hardware by its authors. Features are detected with ``hasattr``, never by version string:

* named-tensor API (``num_io_tensors``, ``get_tensor_name/mode/shape/dtype``, ``set_input_shape``,
  ``set_tensor_address``, ``execute_async_v3``): added in 8.5, the only one in 10;
* binding API (``get_binding_index``, ``set_binding_shape``, ``execute_async_v2``): deprecated in 8.5,
  removed in 10 -- used only when the named API is missing (TensorRT < 8.5);
* ``IBuilderConfig.set_memory_pool_limit``: added in 8.4 (``max_workspace_size``: deprecated 8.4, removed 10);
* ``build_serialized_network``: since 8.0; ``EXPLICIT_BATCH``: required in 8.x, ignored (deprecated) in 10.

Engines are specific to GPU and TensorRT version, so they are cached under a key of everything that changes a
build (model sha256, GPU name, TensorRT version, precision, optimization profile, workspace size) and rebuilt when
the key changes or the file does not deserialize. A build writes a temporary file of its own and renames it into
place, under a per-key lock (``flock``), so concurrent builders of one engine build it once.

Tensor types go through :data:`NUMPY_DTYPES`, this module's own map: ``trt.nptype`` of TensorRT 8.5 uses
``np.bool``, which numpy 1.24 removed (JetPack 5 with pip's numpy).

On an integrated GPU (Jetson: CPU and GPU share memory) the I/O buffers are mapped pinned host memory that the
engine reads and writes in place: no copies. A discrete GPU gets pinned host buffers and async copies.
``tensorrt`` and the CUDA bindings are imported lazily: importing this module never fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import os
import tempfile
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kiosk.inference.base import BackendUnavailable, ModelError, Runner, check_model_file
from kiosk.models.catalog import sha256_file

NAME = "tensorrt"
UNAVAILABLE_REASON = None  # type: Optional[str]
# options only this backend understands (kiosk.inference strips them before calling another backend)
OPTIONS = ("cache_dir", "fp16", "workspace_mib", "max_batch", "shapes", "rebuild")
# default optimization profile for dynamic axes: batch 1..32 (mask classifier; a larger batch is run in chunks of
# the profile's maximum), images 32..1280 around 640x480
DEFAULT_PROFILE = {"max_batch": 32, "min_hw": [32, 32], "opt_hw": [480, 640], "max_hw": [1280, 1280]}
DEFAULT_WORKSPACE_MIB = 256
_probe = None  # type: Optional[List[Optional[str]]]
_LOGGER = None  # type: Any
_log = logging.getLogger(__name__)

# TensorRT DataType name -> numpy dtype. None: numpy has no such type (the tensor cannot be fed or read here).
NUMPY_DTYPES = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "BF16": None,
    "FP8": None,
    "INT4": None,
    "FP4": None,
}  # type: Dict[str, Optional[np.dtype]]


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """The numpy dtype of a TensorRT ``DataType`` (by its name, never ``trt.nptype``); TypeError for a type
    numpy cannot hold (BF16, FP8, INT4) or one this map does not know."""
    name = getattr(trt_dtype, "name", None) or str(trt_dtype).rsplit(".", 1)[-1]
    name = str(name).upper()
    if name not in NUMPY_DTYPES:
        raise TypeError("TensorRT data type {} is not known to this backend".format(name))
    dtype = NUMPY_DTYPES[name]
    if dtype is None:
        raise TypeError("TensorRT data type {} has no numpy equivalent: the model's inputs and outputs must be "
                        "FLOAT, HALF, INT8, INT32, INT64, BOOL or UINT8".format(name))
    return dtype


def default_cache_dir() -> str:
    home = os.environ.get("DABAI_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "cache", "engines")
    return os.path.join(os.path.expanduser("~"), ".cache", "dabai", "engines")


def engine_key(model_sha256: str, gpu_name: str, trt_version: str, precision: str, profile: Dict[str, Any],
               workspace_mib: int) -> str:
    """Pure function: the hex sha256 identifying an engine build (everything that changes what is built)."""
    blob = json.dumps([model_sha256, gpu_name, trt_version, precision, profile, int(workspace_mib)], sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def engine_path(cache_dir: str, model_path: str, key: str) -> str:
    stem = os.path.splitext(os.path.basename(model_path))[0]
    return os.path.join(cache_dir, "{}-{}.engine".format(stem, key[:16]))


def lock_path(engine_file: str) -> str:
    """``<model>-<key16>.lock`` beside the engine: held (flock) while that engine is built."""
    return os.path.splitext(engine_file)[0] + ".lock"


@contextlib.contextmanager
def _locked(path: str) -> Iterator[float]:
    """Hold an exclusive flock on ``path`` (created if needed); yields the seconds spent waiting for it.
    The OS releases it when the holder dies, so a killed build never blocks the next one."""
    import fcntl

    started = time.monotonic()
    with open(path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file of this call's own in ``path``'s folder, fsync it, rename it over ``path``:
    a reader sees the old file or the whole new one, and two writers never share a temporary file."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=os.path.splitext(name)[0] + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


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
    """Device 0: its name, one stream, I/O buffers (cuda-python runtime API, else pycuda).

    ``mapped``: the GPU is integrated (a Jetson), so buffers are mapped pinned host memory the GPU uses in place
    and :meth:`to_device` / :meth:`to_host` have nothing to copy; else pinned host + device memory."""

    def __init__(self) -> None:
        self.rt, self.drv = _cuda_modules()
        self._ctx = None
        if self.rt is not None:
            props = self._ok(self.rt.cudaGetDeviceProperties(0))
            self.name = props.name  # bytes (char[256])
            self.mapped = bool(getattr(props, "integrated", 0))
            self.stream = self._ok(self.rt.cudaStreamCreate())
            self.handle = int(self.stream)
        else:
            self.drv.init()
            dev = self.drv.Device(0)
            self.name = dev.name()
            self.mapped = bool(dev.get_attribute(self.drv.device_attribute.INTEGRATED))
            self._ctx = dev.retain_primary_context()  # the context TensorRT's runtime-API calls use as well
            with self:
                self.stream = self.drv.Stream()
            self.handle = self.stream.handle
        if isinstance(self.name, bytes):
            self.name = self.name.split(b"\0", 1)[0].decode("utf-8", "replace")
        if os.environ.get("DABAI_TRT_MAPPED") == "0":  # for measuring the copies against mapped memory
            self.mapped = False

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
        """(pinned host bytes, what to free, device address); mapped: the device address is the host memory's."""
        if self.drv is not None:
            if self.mapped:
                host = self.drv.pagelocked_empty(nbytes, np.uint8, mem_flags=self.drv.host_alloc_flags.DEVICEMAP)
                return host, None, int(host.base.get_device_pointer())
            dev = self.drv.mem_alloc(nbytes)
            return self.drv.pagelocked_empty(nbytes, np.uint8), dev, int(dev)
        if self.mapped:
            mapped_flag = getattr(self.rt, "cudaHostAllocMapped", 2)  # 0x02 in cuda_runtime_api.h
            hptr = self._ok(self.rt.cudaHostAlloc(nbytes, mapped_flag))
            host = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(hptr))
            return host, (hptr, None), int(self._ok(self.rt.cudaHostGetDevicePointer(hptr, 0)))
        hptr = self._ok(self.rt.cudaMallocHost(nbytes))
        host = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(hptr))
        dptr = self._ok(self.rt.cudaMalloc(nbytes))
        return host, (hptr, dptr), dptr

    def free(self, owner: Any) -> None:
        if self.drv is not None:
            if owner is not None:
                owner.free()  # the pinned host array is freed with its last reference
        else:
            if owner[1] is not None:
                self._ok(self.rt.cudaFree(owner[1]))
            self._ok(self.rt.cudaFreeHost(owner[0]))

    def to_device(self, dptr: int, host: np.ndarray, nbytes: int) -> None:
        if self.mapped:
            return  # the engine reads the host memory itself
        if self.drv is not None:
            self.drv.memcpy_htod_async(dptr, host[:nbytes], self.stream)
        else:
            kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._ok(self.rt.cudaMemcpyAsync(dptr, host.ctypes.data, nbytes, kind, self.stream))

    def to_host(self, host: np.ndarray, dptr: int, nbytes: int) -> None:
        if self.mapped:
            return  # the engine wrote the host memory itself (read it after sync)
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
    """The serialized engine (a plan) of an ONNX file: explicit batch, one optimization profile."""
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
    status: str  # 'cached', 'built', 'rebuilt', 'rebuilt (stale)', 'rebuilt (corrupt)' or 'prebuilt'


def _logger(trt: Any) -> Any:
    global _LOGGER
    if _LOGGER is None:  # one logger per process: TensorRT 8 warns when builders/runtimes get different ones
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def _stale_files(cache_dir: str, onnx_path: str, current: str) -> List[str]:
    """Engines (and their lock files) of this model under another key, and temporary files a killed build left
    (over an hour old): ``<model>-<key16>.engine|.lock``, ``<model>-<key16>.<random>.tmp``."""
    stem = os.path.splitext(os.path.basename(onnx_path))[0] + "-"
    keep = os.path.splitext(os.path.basename(current))[0]
    names = os.listdir(cache_dir) if os.path.isdir(cache_dir) else []
    stale = []
    for n in names:
        if not n.startswith(stem):
            continue
        key16 = n[len(stem):len(stem) + 16]
        if len(key16) != 16 or any(c not in "0123456789abcdef" for c in key16):
            continue  # another model whose name starts with this one's ("mask" vs "mask-small")
        rest = n[len(stem) + 16:]
        p = os.path.join(cache_dir, n)
        if rest in (".engine", ".lock") and n[:len(stem) + 16] != keep:
            stale.append(p)
        elif rest.startswith(".") and rest.endswith(".tmp"):
            try:
                if time.time() - os.path.getmtime(p) > 3600:
                    stale.append(p)
            except OSError:
                continue
    return stale


def _deserialize(runtime: Any, path: str) -> Any:
    """The engine in ``path``, or None when it is missing, truncated or from another GPU / TensorRT."""
    try:
        with open(path, "rb") as f:
            return runtime.deserialize_cuda_engine(f.read())  # None (or raises) when corrupt
    except Exception:
        return None


def ensure_engine(onnx_path: str, cache_dir: Optional[str] = None, fp16: bool = True,
                  workspace_mib: int = DEFAULT_WORKSPACE_MIB, max_batch: int = DEFAULT_PROFILE["max_batch"],
                  shapes: Optional[Dict[str, Any]] = None, rebuild: bool = False,
                  cuda: Optional[_Cuda] = None) -> EngineInfo:
    """The cached engine for ``onnx_path``, built (or rebuilt when stale or corrupt) as needed.

    Builders of one key take turns on its lock file: the second one waits, then loads what the first built."""
    import tensorrt as trt

    check_model_file(onnx_path)
    cuda = cuda or _Cuda()
    cache_dir = cache_dir or default_cache_dir()
    profile = dict(DEFAULT_PROFILE, max_batch=int(max_batch), shapes=shapes or {})
    key = engine_key(sha256_file(onnx_path), cuda.name, trt.__version__, "fp16" if fp16 else "fp32", profile,
                     workspace_mib)
    path = engine_path(cache_dir, onnx_path, key)
    runtime = trt.Runtime(_logger(trt))
    with cuda:
        if not rebuild and os.path.isfile(path):
            engine = _deserialize(runtime, path)
            if engine is not None:
                return EngineInfo(engine, runtime, path, key, "cached")
        os.makedirs(cache_dir, exist_ok=True)
        with _locked(lock_path(path)):
            existed = os.path.isfile(path)
            if existed and not rebuild:  # built by the holder of the lock while this one waited (or corrupt)
                engine = _deserialize(runtime, path)
                if engine is not None:
                    return EngineInfo(engine, runtime, path, key, "cached")
            stale = _stale_files(cache_dir, onnx_path, path)
            if existed and not rebuild:
                status = "rebuilt (corrupt)"
            elif any(p.endswith(".engine") for p in stale):
                status = "rebuilt (stale)"
            else:
                status = "rebuilt" if existed else "built"
            plan = build_engine(trt, _logger(trt), onnx_path, fp16, profile, workspace_mib)
            write_atomically(path, plan)
            for p in stale:
                with contextlib.suppress(OSError):
                    os.remove(p)
        engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise ModelError(path, "TensorRT could not deserialize the engine it just built")
    return EngineInfo(engine, runtime, path, key, status)


class TensorRTRunner(Runner):
    """A TensorRT engine behind the :class:`Runner` interface: one CUDA stream, pinned (on a Jetson: mapped)
    host buffers, ``run`` synchronizes before it returns. One runner serves one thread at a time.

    A batch larger than the engine profile's maximum is run in chunks of that maximum. :meth:`input_array`
    hands out the input buffer itself, so a caller can build its input in place (no copy in :meth:`run`);
    :meth:`run_device_image` fills a detector's input from a CUDA image with a kernel (no host round trip)."""

    backend = NAME

    def __init__(self, path: str, cache_dir: Optional[str] = None, fp16: bool = True,
                 workspace_mib: int = DEFAULT_WORKSPACE_MIB, max_batch: int = DEFAULT_PROFILE["max_batch"],
                 shapes: Optional[Dict[str, Any]] = None, rebuild: bool = False) -> None:
        reason = _unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        import tensorrt as trt

        self.path = str(path)
        self._buf = {}  # type: Dict[str, Tuple[np.ndarray, Any, int]]  # grown on demand, never shrunk
        self._retired = []  # type: List[Tuple[np.ndarray, Any, int]]  # outgrown buffers, freed by close()
        self._cuda = _Cuda()
        self.zero_copy = bool(self._cuda.mapped)
        if self.path.lower().endswith(".engine"):  # a prebuilt engine: used as is, no key to check
            check_model_file(self.path)
            runtime = trt.Runtime(_logger(trt))
            with self._cuda:
                engine = _deserialize(runtime, self.path)
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
        try:
            if self._named:
                names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]
                is_in = {n: eng.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
                self._shape = {n: list(eng.get_tensor_shape(n)) for n in names}
                self._dtype = {n: numpy_dtype(eng.get_tensor_dtype(n)) for n in names}
            else:  # TensorRT < 8.5: binding indices (one optimization profile: indices 0 .. num_bindings-1)
                idx = eng.get_binding_index
                names = sorted((eng.get_binding_name(i) for i in range(eng.num_bindings)), key=idx)
                is_in = {n: eng.binding_is_input(idx(n)) for n in names}
                self._shape = {n: list(eng.get_binding_shape(idx(n))) for n in names}
                self._dtype = {n: numpy_dtype(eng.get_binding_dtype(idx(n))) for n in names}
        except TypeError as exc:
            raise ModelError(self.path, str(exc)) from exc
        self._names = names
        self._inputs = [n for n in names if is_in[n]]
        self._outputs = [n for n in names if not is_in[n]]
        self.max_batch = self._profile_max_batch()
        self._pre = None  # type: Any  # the CUDA preprocessing kernel, compiled on first use
        self._pre_failed = None  # type: Optional[str]

    def _profile_max_batch(self) -> Optional[int]:
        """The largest batch the engine's profile 0 takes, when every input has a dynamic batch axis; else None."""
        most = []
        for n in self._inputs:
            if not self._shape[n] or self._shape[n][0] >= 0:
                return None
            try:
                if self._named:
                    hi = self._engine.get_tensor_profile_shape(n, 0)[2]
                else:
                    hi = self._engine.get_profile_shape(0, self._engine.get_binding_index(n))[2]
            except Exception:  # an API without it: run the batch whole, as before
                return None
            most.append(int(hi[0]))
        return min(most) if most else None

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
                self._retired.append(buf)  # an input_array view may still point into it
            with self._cuda:
                buf = self._buf[name] = self._cuda.alloc(max(nbytes, 256))
        return buf[0], buf[2]

    def input_array(self, name: str, shape: Sequence[int], dtype: Any = np.float32) -> np.ndarray:
        """A view of this input's own (pinned / mapped) buffer: fill it and pass it to :meth:`run`, which then
        copies nothing. Valid until the next call for this input."""
        dt = np.dtype(dtype)
        if name not in self._inputs or dt != self._dtype[name]:
            return np.empty(tuple(shape), dt)
        nbytes = int(np.prod(shape)) * dt.itemsize
        host, _ = self._buffer(name, nbytes)
        return host[:nbytes].view(dt).reshape(tuple(shape))

    def _is_own_buffer(self, name: str, a: np.ndarray) -> bool:
        buf = self._buf.get(name)
        return (buf is not None and a.dtype == self._dtype[name] and a.flags.c_contiguous
                and a.ctypes.data == buf[0].ctypes.data and a.nbytes <= buf[0].nbytes)

    def _tensor_shape(self, name: str) -> Tuple[int, ...]:
        ctx = self._ctx
        return tuple(ctx.get_tensor_shape(name) if self._named else ctx.get_binding_shape(self._engine.get_binding_index(name)))

    def _set_shape(self, name: str, shape: Sequence[int]) -> None:
        if self._named:
            ok = self._ctx.set_input_shape(name, tuple(shape))
        else:
            ok = self._ctx.set_binding_shape(self._engine.get_binding_index(name), tuple(shape))
        if ok is False:
            raise ModelError(self.path, "input {} shape {} is outside the engine's profile".format(name, list(shape)))

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise ModelError(self.path, "missing inputs: {}".format(", ".join(missing)))
        arrays = {n: np.asarray(feeds[n]) for n in self._inputs}
        batch = {a.shape[0] if a.ndim else 0 for a in arrays.values()}
        most = self.max_batch
        if most and len(batch) == 1 and batch.pop() > most:  # more than the profile takes: in chunks
            arrays = {n: np.array(a) if self._is_own_buffer(n, a) else a for n, a in arrays.items()}
            n = next(iter(arrays.values())).shape[0]
            parts = [self._run_once({k: a[i:i + most] for k, a in arrays.items()}) for i in range(0, n, most)]
            return {k: np.concatenate([p[k] for p in parts]) for k in self._outputs}
        return self._run_once(arrays)

    def _run_once(self, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        cuda = self._cuda
        with cuda:
            for n in self._inputs:
                a = arrays[n]
                self._set_shape(n, a.shape)
                if self._is_own_buffer(n, a):  # built in place (input_array): nothing to copy on the host
                    host, dptr = self._buf[n][0], self._buf[n][2]
                else:
                    a = np.ascontiguousarray(a, dtype=self._dtype[n])
                    host, dptr = self._buffer(n, a.nbytes)
                    host[:a.nbytes] = a.reshape(-1).view(np.uint8)
                cuda.to_device(dptr, host, a.nbytes)
            return self._execute()

    def _execute(self) -> Dict[str, np.ndarray]:
        """Run the engine on the inputs already set and in their buffers; the outputs, copied out."""
        ctx, cuda = self._ctx, self._cuda
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

    def _preprocessor(self) -> Any:
        """The compiled CUDA preprocessing kernel, or None when it cannot be had here (said once in the log)."""
        if self._pre is None and self._pre_failed is None:
            from kiosk.inference import cuda_preprocess

            try:
                with self._cuda:
                    self._pre = cuda_preprocess.compile_kernel(self._cuda)
            except Exception as exc:  # no NVRTC / nvcc: the detector keeps its CPU preprocessing, on TensorRT
                self._pre_failed = "{}: {}".format(type(exc).__name__, exc)
                _log.warning("tensorrt: the CUDA preprocessing kernel is not available (%s); frames are prepared "
                             "on the CPU", self._pre_failed)
        return self._pre

    def run_device_image(self, name: str, image: Any, size: Tuple[int, int], padded: Tuple[int, int],
                         area: bool) -> Optional[Dict[str, np.ndarray]]:
        """Run a detector on a CUDA image (jetson-utils ``cudaImage``, bgr8): a kernel resizes it to ``size``
        (w, h; box average when ``area`` else bilinear, as cv2 INTER_AREA / INTER_LINEAR), writes it as CHW
        float32 (0..255, BGR) zero-padded to ``padded`` (w, h) straight into the engine's input buffer; then
        the engine runs. None when the kernel is not available here (the caller prepares the frame itself)."""
        pre = self._preprocessor()
        if pre is None or name not in self._inputs or self._dtype[name] != np.float32:
            return None
        (rw, rh), (pw, ph) = size, padded
        shape = (1, 3, int(ph), int(pw))
        cuda = self._cuda
        with cuda:
            self._set_shape(name, shape)
            _host, dptr = self._buffer(name, int(np.prod(shape)) * 4)
            pre.launch(int(image.ptr), int(image.width), int(image.height), int(image.width) * 3, dptr,
                       int(rw), int(rh), int(pw), int(ph), bool(area), cuda.handle)
            return self._execute()

    def close(self) -> None:
        with self._cuda:
            for _host, owner, _dptr in list(self._buf.values()) + self._retired:
                self._cuda.free(owner)
        self._buf, self._retired = {}, []


def load(path: str, **kwargs: Any) -> Runner:
    """Options: cache_dir, fp16, workspace_mib, max_batch, shapes ({input: (min, opt, max)}), rebuild.
    Options meant for other backends (``auto`` passes the caller's through) are ignored."""
    return TensorRTRunner(path, **{k: v for k, v in kwargs.items() if k in OPTIONS})
