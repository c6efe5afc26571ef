"""Shared steps of the training scripts' ONNX export: no denormal weights, and proof that the file computes
what torch computes."""

from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

# Below this a float32 is denormal. x86 CPUs compute with denormals in microcode, tens of times slower: the
# AIZOO trunk's dead first-layer filter (27 weights near 1e-39) made a 0.4 ms classifier take 3.3 ms per face.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def flush_denormals(array: np.ndarray) -> Tuple[np.ndarray, int]:
    """``array`` with its denormal float32 values set to zero (they add nothing a float32 sum can hold
    beside a normal number), and how many there were."""
    a = np.asarray(array)
    if a.dtype != np.float32:
        return a, 0
    tiny = (a != 0) & (np.abs(a) < FLOAT32_TINY)
    n = int(tiny.sum())
    if n:
        a = np.where(tiny, np.float32(0), a).astype(np.float32)
    return a, n


def flush_module_denormals(module) -> int:  # type: ignore[no-untyped-def]
    """Zero the denormal values of a torch module's float32 parameters and buffers in place; how many."""
    import torch

    count = 0
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype == torch.float32:
                tiny = (t != 0) & (t.abs() < FLOAT32_TINY)
                count += int(tiny.sum())
                t[tiny] = 0.0
    return count


def replace_if_matches(
    wrapped, tmp: str, path: str, x: np.ndarray, input_name: str, output_name: Optional[str] = None
) -> None:  # type: ignore[no-untyped-def]
    """Run ``x`` through torch and through onnxruntime on ``tmp``; move ``tmp`` to ``path`` only if they agree."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        ref = wrapped(torch.from_numpy(x)).numpy()
    outputs = None if output_name is None else [output_name]
    got = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"]).run(outputs, {input_name: x})[0]
    if not np.allclose(ref, got, atol=1e-4):
        raise RuntimeError("ONNX export differs from torch: max err {}".format(np.abs(ref - got).max()))
    os.replace(tmp, path)
