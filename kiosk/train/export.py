"""Shared step of the training scripts' ONNX export: prove the file computes what torch computes."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np


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
