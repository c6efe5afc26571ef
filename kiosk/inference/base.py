"""The one small interface every model runs behind: a :class:`Runner`.

A backend turns a model file into a Runner. Backends whose library is missing are
skipped with a reason (see :func:`kiosk.inference.available_backends`), never an
ImportError at import time.
"""

from __future__ import annotations

import os
from typing import Dict, List

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

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return "<{} backend={} model={}>".format(type(self).__name__, self.backend, self.path)


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
