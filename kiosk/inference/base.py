"""The one small interface every model runs behind: a :class:`Runner`.

A backend turns a model file into a Runner. Backends whose library is missing are
skipped with a reason (see :func:`kiosk.inference.available_backends`), never an
ImportError at import time.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np


class ModelError(Exception):
    """A model file is missing, truncated, of the wrong kind, or cannot run.

    The message always names the file.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__("model file {}: {}".format(self.path, reason))


class BackendUnavailable(Exception):
    """The requested backend cannot be used on this machine (its library is missing)."""


class Runner:
    """A loaded model: named inputs in, named outputs out (numpy arrays)."""

    backend: str = "?"
    path: str = ""

    @property
    def input_names(self) -> List[str]:
        raise NotImplementedError

    @property
    def output_names(self) -> List[str]:
        raise NotImplementedError

    def input_shape(self, name: str) -> List[object]:
        """Shape of an input; dynamic axes are strings or None."""
        raise NotImplementedError

    def output_shape(self, name: str) -> List[object]:
        """Shape of an output as the model declares it; dynamic axes are strings or None."""
        raise NotImplementedError

    def declared_output_shape(self, name: str) -> Optional[List[object]]:
        """:meth:`output_shape`, or None when this runner cannot tell."""
        try:
            return self.output_shape(name)
        except (NotImplementedError, KeyError):
            return None

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def input_array(self, name: str, shape: Sequence[int], dtype: Any = np.float32) -> np.ndarray:
        """An array to build input ``name`` in before :meth:`run`; a backend with its own input buffers (TensorRT)
        hands out a view of one, so :meth:`run` has nothing to copy. Here: a new array."""
        return np.empty(tuple(shape), np.dtype(dtype))

    def __repr__(self) -> str:
        return "<{} backend={} model={}>".format(type(self).__name__, self.backend, self.path)


def shape_text(shape: Optional[Sequence[object]]) -> str:
    """A tensor shape for a message: ``[batch,3,64,64]`` (dynamic axes by their name, ``?`` unnamed)."""
    if shape is None:
        return "[?]"
    return "[{}]".format(",".join("?" if d is None else str(d) for d in shape))


def describe_io(runner: "Runner", most: int = 4) -> str:
    """What a loaded model takes and gives, on one line: ``1 input: input [batch,3,64,64]; 1 output: probs
    [batch,3]`` (at most ``most`` tensors of each kind are named)."""

    def part(kind: str, names: List[str], shape: "Callable[[str], Optional[Sequence[object]]]") -> str:
        shown = ", ".join("{} {}".format(n, shape_text(shape(n))) for n in names[:most])
        more = ", ... ({} in all)".format(len(names)) if len(names) > most else ""
        return "{} {}{}: {}{}".format(len(names), kind, "" if len(names) == 1 else "s", shown or "none", more)

    def input_shape(name: str) -> Optional[Sequence[object]]:
        try:
            return runner.input_shape(name)
        except (NotImplementedError, KeyError):
            return None

    return "{}; {}".format(part("input", runner.input_names, input_shape),
                           part("output", runner.output_names, runner.declared_output_shape))


def check_model_file(path: str, min_bytes: int = 64) -> None:
    """Raise :class:`ModelError` unless ``path`` is a plausible, non-empty ONNX file."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise ModelError(p, "not found")
    if not os.path.isfile(p):
        raise ModelError(p, "not a regular file")
    size = os.path.getsize(p)
    if size < min_bytes:
        raise ModelError(p, "truncated or empty ({} bytes)".format(size))


def input_array(runner: object, name: str, shape: Sequence[int], dtype: Any = np.float32) -> np.ndarray:
    """``runner.input_array(...)`` where the runner has one (any :class:`Runner`), else a new array (stand-ins)."""
    make = getattr(runner, "input_array", None)
    return make(name, shape, dtype) if make is not None else np.empty(tuple(shape), np.dtype(dtype))
