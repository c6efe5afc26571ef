"""Model runners with interchangeable backends.

``load_model(path, backend="auto")`` returns a :class:`Runner`. ``auto`` picks the best
backend available on this machine. A backend whose library is missing is skipped with a
reason (see :func:`available_backends`); nothing here raises ImportError at import time.

Backends, in the order ``auto`` prefers them:

* ``tensorrt``: native TensorRT (the Jetson). An ``.onnx`` model is built into an engine cached
  under ``cache_dir`` (default ``$DABAI_HOME/cache/engines`` or ``~/.cache/dabai/engines``),
  keyed by model, GPU, TensorRT version, precision and profile; ``.engine`` files load as is.
* ``onnxruntime``: CUDA / TensorRT execution providers when the build has them, else CPU.

``auto`` falls through to the next backend when one is unavailable here, or when TensorRT
fails in any way while building or loading a model that another backend can still run (one log
line; the runner it returns says why in ``note``). A TensorRT runner that ``auto`` returns is a
:class:`FallbackRunner`: the first exception TensorRT raises while running is logged once and told
to ``on_fallback``, ONNX Runtime loads the model and re-runs that input, and runs it from then on.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple  # noqa: F401 (type comments)

import numpy as np

from kiosk.inference.base import BackendUnavailable, ModelError, Runner, check_model_file, describe_io, input_array, shape_text

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "FallbackRunner",
    "ModelError",
    "Runner",
    "available_backends",
    "backend_summary",
    "check_model_file",
    "describe_io",
    "input_array",
    "load_model",
    "shape_text",
]

# name -> module path. The module must define ``available() -> bool``, ``UNAVAILABLE_REASON``
# and ``load(path, **kwargs) -> Runner``. Order = preference for "auto".
# A module may also define ``OPTIONS``: keyword arguments only it understands, which are not
# passed to other backends (so ``auto`` can fall back with the caller's options).
BACKENDS = {
    "tensorrt": "kiosk.inference.tensorrt_backend",
    "onnxruntime": "kiosk.inference.onnxruntime_backend",
}  # type: Dict[str, str]

# file suffix -> backends that can read it ("auto" tries them in this order)
_SUFFIXES = {
    ".onnx": ["tensorrt", "onnxruntime"],
    ".engine": ["tensorrt"],
}  # type: Dict[str, List[str]]

_log = logging.getLogger(__name__)


def _backend_module(name: str) -> Tuple[Optional[object], Optional[str]]:
    modpath = BACKENDS.get(name)
    if modpath is None:
        return None, "unknown backend {!r} (known: {})".format(name, ", ".join(sorted(BACKENDS)))
    try:
        mod = importlib.import_module(modpath)
    except Exception as exc:  # a broken optional backend must not break the kiosk
        return None, "{} failed to import: {}: {}".format(name, type(exc).__name__, exc)
    if not mod.available():  # type: ignore[attr-defined]
        return None, str(getattr(mod, "UNAVAILABLE_REASON", "unavailable"))
    return mod, None


def available_backends() -> Dict[str, Optional[str]]:
    """Every known backend -> None when usable, else the reason it is skipped."""
    return {name: _backend_module(name)[1] for name in BACKENDS}


def _options_for(name: str, kwargs: Dict[str, object]) -> Dict[str, object]:
    """``kwargs`` less the options that belong to other backends (their ``OPTIONS``)."""
    foreign = set()  # type: set
    for other, modpath in BACKENDS.items():
        if other != name:
            try:
                foreign.update(getattr(importlib.import_module(modpath), "OPTIONS", ()))
            except Exception:
                continue
    mine = set(getattr(importlib.import_module(BACKENDS[name]), "OPTIONS", ()))
    return {k: v for k, v in kwargs.items() if k in mine or k not in foreign}


def load_model(path: str, backend: str = "auto", cache_dir: Optional[str] = None, **kwargs: object) -> Runner:
    """Load ``path`` with ``backend`` (or the best available one for ``auto``).

    ``cache_dir``: where the TensorRT backend keeps its engines (ignored by the others).
    Raises :class:`ModelError` (naming the file) for a missing, truncated or unreadable
    model, :class:`BackendUnavailable` when the requested backend cannot run here.
    """
    p = os.fspath(path)
    check_model_file(p)
    if cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    if backend != "auto":
        mod, reason = _backend_module(backend)
        if mod is None:
            raise BackendUnavailable("backend {!r} unavailable: {}".format(backend, reason))
        return mod.load(p, **_options_for(backend, kwargs))  # type: ignore[attr-defined]
    suffix = os.path.splitext(p)[1].lower()
    candidates = _SUFFIXES.get(suffix, list(BACKENDS))
    reasons = []  # type: List[str]
    failed = None  # type: Optional[str]  # why a backend that is installed here could not load it
    for i, name in enumerate(candidates):
        mod, reason = _backend_module(name)
        if mod is None:
            reasons.append("{}: {}".format(name, reason))
            continue
        loader = mod.load  # type: Callable[..., Runner]  # type: ignore[attr-defined]
        if i == len(candidates) - 1:
            runner = loader(p, **_options_for(name, kwargs))
            if failed is not None:
                runner.note = failed  # type: ignore[attr-defined]
            return runner
        try:
            runner = loader(p, **_options_for(name, kwargs))
        except BackendUnavailable as exc:
            reasons.append("{}: {}".format(name, exc))
            continue
        except Exception as exc:  # any failure to build or load (a CUDA error, an API difference, no memory): next
            why = _one_line(exc)
            _log.warning("%s cannot run %s (%s); %s runs it", name, os.path.basename(p), why, candidates[i + 1])
            reasons.append("{}: {}".format(name, why))
            failed = "{} failed to load it: {}".format(name, why)
            continue
        rest = candidates[i + 1:]
        return FallbackRunner(runner, functools.partial(_load_next, p, rest, kwargs))
    raise BackendUnavailable("no backend can run {} ({})".format(p, "; ".join(reasons) or "unknown suffix"))


def _load_next(path: str, candidates: List[str], kwargs: Dict[str, object]) -> Runner:
    """The first of ``candidates`` that loads ``path`` (a FallbackRunner's replacement)."""
    reasons = []  # type: List[str]
    for name in candidates:
        mod, reason = _backend_module(name)
        if mod is None:
            reasons.append("{}: {}".format(name, reason))
            continue
        return mod.load(path, **_options_for(name, kwargs))  # type: ignore[attr-defined]
    raise BackendUnavailable("no backend can run {} ({})".format(path, "; ".join(reasons)))


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """``TypeName: message`` on one line, at most ``limit`` characters (a ModelError's message already names it)."""
    text = str(exc) if isinstance(exc, (ModelError, BackendUnavailable)) else "{}: {}".format(type(exc).__name__, exc)
    return " ".join(text.split())[:limit]


class FallbackRunner(Runner):
    """A TensorRT runner with ONNX Runtime behind it: the first exception from TensorRT while running (a CUDA
    error, an API difference, anything) is logged once, told to ``on_fallback`` (one line: the model, what
    failed, who runs it now), and the model is loaded with the next backend, which re-runs that input and every
    later one. ``note`` says why it fell back; attributes of the runner in use (``info``, ``providers``) show
    through."""

    def __init__(self, primary: Runner, load_fallback: Callable[[], Runner],
                 on_fallback: Optional[Callable[[str], None]] = None) -> None:
        self.primary = primary
        self.current = primary
        self._load_fallback = load_fallback
        self.on_fallback = on_fallback
        self.path = primary.path
        self.note = None  # type: Optional[str]
        self._dead = None  # type: Optional[str]  # why neither backend can run it

    @property
    def backend(self) -> str:  # type: ignore[override]
        return self.current.backend

    def __getattr__(self, name: str) -> Any:
        if name in ("primary", "current"):  # not set yet (during construction or unpickling)
            raise AttributeError(name)
        return getattr(self.current, name)

    @property
    def input_names(self) -> List[str]:
        return self.current.input_names

    @property
    def output_names(self) -> List[str]:
        return self.current.output_names

    def input_shape(self, name: str) -> List[object]:
        return self.current.input_shape(name)

    def output_shape(self, name: str) -> List[object]:
        return self.current.output_shape(name)

    def declared_output_shape(self, name: str) -> Optional[List[object]]:
        return self.current.declared_output_shape(name)

    def input_array(self, name: str, shape: Sequence[int], dtype: Any = np.float32) -> np.ndarray:
        return input_array(self.current, name, shape, dtype)

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if self.current is not self.primary:
            return self.current.run(feeds)
        if self._dead is not None:
            raise ModelError(self.path, self._dead)
        try:
            return self.primary.run(feeds)
        except Exception as exc:
            self._fall_back(exc)
        return self.current.run(feeds)  # the same input, on the backend that took over

    def run_device_image(self, *args: Any, **kwargs: Any) -> Optional[Dict[str, np.ndarray]]:
        """The primary's :meth:`~kiosk.inference.tensorrt_backend.TensorRTRunner.run_device_image`; None (the
        caller prepares the frame on the CPU and calls :meth:`run`) once fallen back or when it has none."""
        run = getattr(self.primary, "run_device_image", None)
        if self.current is not self.primary or run is None:
            return None
        try:
            return run(*args, **kwargs)
        except Exception as exc:
            self._fall_back(exc)
            return None

    def _fall_back(self, exc: BaseException) -> None:
        if self._dead is not None:  # said once already; the caller counts its failed frames
            raise ModelError(self.path, self._dead)
        why = _one_line(exc)
        name = os.path.basename(self.path)
        _log.error("%s: %s failed while running (%s); loading it with the next backend", name, self.primary.backend, why)
        try:
            self.current = self._load_fallback()
        except Exception as second:  # no backend can run it: every later run fails at once, with this reason
            self._dead = "{} failed while running ({}) and no other backend can run it: {}".format(
                self.primary.backend, why, _one_line(second))
            raise ModelError(self.path, self._dead) from second
        self.note = "{} failed while running: {}".format(self.primary.backend, why)
        if self.on_fallback is not None:
            self.on_fallback("{} runs on {} ({})".format(name, self.current.backend, self.note))

    def close(self) -> None:
        for runner in (self.primary, self.current):
            close = getattr(runner, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:  # a broken CUDA context may fail to free too
                    _log.debug("closing %s failed: %s", runner, exc)


def backend_summary(runner: object) -> str:
    """Which backend runs a model and why, on one line: ``tensorrt (engine cached, zero-copy)``,
    ``onnxruntime (tensorrt failed while running: RuntimeError: ...)``, ``onnxruntime [CPUExecutionProvider]
    (tensorrt unavailable: no CUDA Python bindings ...)``."""
    current = getattr(runner, "current", runner)
    backend = getattr(current, "backend", "?")
    note = getattr(runner, "note", None) or getattr(current, "note", None)
    if backend == "tensorrt":
        info = getattr(current, "info", None)
        bits = ["engine {}".format(info.status)] if info is not None else []
        if getattr(current, "zero_copy", False):
            bits.append("zero-copy")
        return "tensorrt ({})".format(", ".join(bits)) if bits else "tensorrt"
    providers = getattr(current, "providers", None)
    text = backend + (" [{}]".format(", ".join(providers)) if providers else "")
    if note:
        return "{} ({})".format(text, note)
    reason = available_backends().get("tensorrt") if backend != "tensorrt" else None
    return "{} (tensorrt unavailable: {})".format(text, reason) if reason else text
