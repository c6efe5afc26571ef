"""Model runners with interchangeable backends.

``load_model(path, backend="auto")`` returns a :class:`Runner`. ``auto`` picks the best
backend available on this machine. A backend whose library is missing is skipped with a
reason (see :func:`available_backends`); nothing here raises ImportError at import time.

Backends: ``onnxruntime`` (CPU; CUDA/TensorRT execution providers when the build has them).
A native TensorRT backend (``tensorrt``, for ``.engine`` files built on the Jetson) plugs in
through :data:`BACKENDS` in a later change.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable, Dict, List, Optional, Tuple  # noqa: F401 (type comments)

from kiosk.inference.base import BackendUnavailable, ModelError, Runner, check_model_file

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "ModelError",
    "Runner",
    "available_backends",
    "check_model_file",
    "load_model",
]

# name -> module path. The module must define ``available() -> bool``, ``UNAVAILABLE_REASON``
# and ``load(path, **kwargs) -> Runner``. Order = preference for "auto".
BACKENDS = {
    "onnxruntime": "kiosk.inference.onnxruntime_backend",
}  # type: Dict[str, str]

# file suffix -> backends that can read it ("auto" tries them in this order)
_SUFFIXES = {
    ".onnx": ["onnxruntime"],
}  # type: Dict[str, List[str]]


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


def load_model(path: str, backend: str = "auto", **kwargs: object) -> Runner:
    """Load ``path`` with ``backend`` (or the best available one for ``auto``).

    Raises :class:`ModelError` (naming the file) for a missing, truncated or unreadable
    model, :class:`BackendUnavailable` when the requested backend cannot run here.
    """
    p = os.fspath(path)
    check_model_file(p)
    if backend != "auto":
        mod, reason = _backend_module(backend)
        if mod is None:
            raise BackendUnavailable("backend {!r} unavailable: {}".format(backend, reason))
        return mod.load(p, **kwargs)  # type: ignore[attr-defined]
    suffix = os.path.splitext(p)[1].lower()
    candidates = _SUFFIXES.get(suffix, list(BACKENDS))
    reasons = []  # type: List[str]
    for name in candidates:
        mod, reason = _backend_module(name)
        if mod is None:
            reasons.append("{}: {}".format(name, reason))
            continue
        loader = mod.load  # type: Callable[..., Runner]  # type: ignore[attr-defined]
        return loader(p, **kwargs)
    raise BackendUnavailable("no backend can run {} ({})".format(p, "; ".join(reasons) or "unknown suffix"))
