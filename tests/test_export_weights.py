"""Exported weights hold no denormal floats: x86 CPUs compute with them in microcode, tens of times slower
(the AIZOO trunk's dead first-layer filter made its classifier take 3.3 ms per face instead of 0.4 ms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk.train.export import FLOAT32_TINY, flush_denormals, flush_module_denormals

ENGINES = Path(__file__).resolve().parent.parent / "engines"


def test_flush_zeroes_denormals_and_nothing_else() -> None:
    a = np.array([1e-39, -1e-40, 1e-30, 0.0, 1.0, -2.5, FLOAT32_TINY], np.float32)
    out, n = flush_denormals(a)
    assert n == 2
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([0.0, 0.0, 1e-30, 0.0, 1.0, -2.5, FLOAT32_TINY], np.float32))
    assert a[0] != 0  # the input is not changed
    ints, n = flush_denormals(np.arange(4))
    assert n == 0 and ints.tolist() == [0, 1, 2, 3]


def test_flush_module_zeroes_a_dead_filter_in_place() -> None:
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(3, 2, 3)
    with torch.no_grad():
        conv.weight[1] = 1e-39
        kept = conv.weight[0].clone()
    assert flush_module_denormals(conv) == 27
    assert float(conv.weight[1].abs().max()) == 0.0
    assert torch.equal(conv.weight[0], kept)
    assert flush_module_denormals(conv) == 0


@pytest.mark.parametrize("path", sorted(ENGINES.glob("*.onnx")), ids=lambda p: p.name)
def test_no_shipped_model_has_denormal_weights(path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(path))
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    bad = {t.name: flush_denormals(numpy_helper.to_array(t))[1] for t in tensors}
    assert not {k: v for k, v in bad.items() if v}, "denormal weights (flush them at export)"
