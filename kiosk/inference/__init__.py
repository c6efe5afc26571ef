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
cannot build or load a model that another backend can still run.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Callable, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

from kiosk.inference.base import BackendUnavailable, ModelError, Runner, check_model_file, describe_io, shape_text

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "ModelError",
    "Runner",
    "available_backends",
    "check_model_file",
    "describe_io",
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
    for i, name in enumerate(candidates):
        mod, reason = _backend_module(name)
        if mod is None:
            reasons.append("{}: {}".format(name, reason))
            continue
        loader = mod.load  # type: Callable[..., Runner]  # type: ignore[attr-defined]
        if i == len(candidates) - 1:
            return loader(p, **_options_for(name, kwargs))
        try:
            return loader(p, **_options_for(name, kwargs))
        except (BackendUnavailable, ModelError) as exc:  # e.g. TensorRT cannot build it: try the next backend
            _log.warning("%s cannot run %s, trying the next backend: %s", name, p, exc)
            reasons.append("{}: {}".format(name, exc))
    raise BackendUnavailable("no backend can run {} ({})".format(p, "; ".join(reasons) or "unknown suffix"))
