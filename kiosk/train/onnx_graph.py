"""A small ONNX graph as a trainable torch module, and the way back (training-time only).

Runs the nodes of a plain feed-forward ONNX model (the op set YuNet uses: Conv, Relu, Sigmoid,
MaxPool, Resize (nearest, x2), Add, Transpose, Shape/Gather/Unsqueeze/Concat/Reshape) eagerly in
torch, with every float initializer as a parameter. :func:`write_onnx` puts trained parameters
back into the ORIGINAL graph, so the exported model has exactly the original's structure, input
and output names and shapes (optionally converted to another opset). No torchvision needed.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED = {"Conv", "Relu", "Sigmoid", "MaxPool", "Resize", "Add", "Transpose", "Shape", "Gather",
             "Unsqueeze", "Concat", "Reshape"}


def _attrs(node) -> Dict[str, object]:  # type: ignore[no-untyped-def]
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxModule(nn.Module):
    """``OnnxModule(path)(x)`` -> dict output name -> tensor, the same values onnxruntime gives."""

    def __init__(self, path: str) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper

        model = onnx.load(path)
        self.path = path
        self.names = {}  # type: Dict[str, str]  # ONNX initializer name -> attribute name
        self.params = nn.ParameterDict()
        self.consts = {}  # type: Dict[str, torch.Tensor]
        for i, t in enumerate(model.graph.initializer):
            arr = numpy_helper.to_array(t)
            if arr.dtype == np.float32 and arr.size > 0 and arr.ndim >= 1 and t.name not in self._scale_inputs(model):
                key = "p%d" % i
                self.names[t.name] = key
                self.params[key] = nn.Parameter(torch.from_numpy(arr.copy()))
            else:
                self.consts[t.name] = torch.from_numpy(np.array(arr))
        for n in model.graph.node:  # Constant nodes (a converted opset writes some) are constants
            if n.op_type == "Constant":
                self.consts[n.output[0]] = torch.from_numpy(np.array(numpy_helper.to_array(_attrs(n)["value"])))
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in model.graph.node
                      if n.op_type != "Constant"]
        bad = sorted({op for op, *_ in self.nodes} - SUPPORTED)
        if bad:
            raise ValueError("unsupported ONNX ops: " + ", ".join(bad))
        self.input_name = model.graph.input[0].name
        self.output_names = [o.name for o in model.graph.output]

    @staticmethod
    def _scale_inputs(model) -> set:  # type: ignore[no-untyped-def]
        out = set()
        for n in model.graph.node:
            if n.op_type == "Resize":
                out.update(n.input[1:])
        return out

    def param_by_onnx_name(self, name: str) -> nn.Parameter:
        return self.params[self.names[name]]

    def _get(self, env: Dict[str, torch.Tensor], name: str) -> torch.Tensor:
        if name in env:
            return env[name]
        if name in self.names:
            return self.params[self.names[name]]
        return self.consts[name]

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        env = {self.input_name: x}  # type: Dict[str, torch.Tensor]
        for op, ins, outs, at in self.nodes:
            a = [self._get(env, n) if n else None for n in ins]
            if op == "Conv":
                pads = list(at.get("pads", [0, 0, 0, 0]))
                if pads[:2] != pads[2:]:
                    raise ValueError("asymmetric padding")
                y = F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=list(at.get("strides", [1, 1])),
                             padding=pads[:2], dilation=list(at.get("dilations", [1, 1])), groups=int(at.get("group", 1)))
            elif op == "Relu":
                y = F.relu(a[0])
            elif op == "Sigmoid":
                y = torch.sigmoid(a[0])
            elif op == "Add":
                y = a[0] + a[1]
            elif op == "MaxPool":
                pads = list(at.get("pads", [0, 0, 0, 0]))
                y = F.max_pool2d(a[0], list(at["kernel_shape"]), list(at.get("strides", at["kernel_shape"])),
                                 pads[:2], ceil_mode=bool(at.get("ceil_mode", 0)))
            elif op == "Resize":
                if at.get("mode", b"nearest") not in (b"nearest", "nearest"):
                    raise ValueError("only nearest Resize is supported")
                scales = a[2] if len(a) > 2 and a[2] is not None and a[2].numel() else None
                if scales is not None:
                    y = F.interpolate(a[0], scale_factor=(float(scales[2]), float(scales[3])), mode="nearest")
                else:
                    size = a[3]
                    y = F.interpolate(a[0], size=(int(size[2]), int(size[3])), mode="nearest")
            elif op == "Transpose":
                y = a[0].permute(*at["perm"])
            elif op == "Shape":
                y = torch.tensor(list(a[0].shape), dtype=torch.int64)
            elif op == "Gather":
                y = torch.index_select(a[0], int(at.get("axis", 0)), a[1].reshape(-1)).reshape(a[1].shape)
            elif op == "Unsqueeze":
                y = a[0]
                axes = at["axes"] if "axes" in at else [int(v) for v in a[1].reshape(-1).tolist()]  # opset 13: an input
                for ax in sorted(axes):
                    y = y.unsqueeze(ax)
            elif op == "Concat":
                y = torch.cat([t.reshape(-1) if t.ndim == 0 else t for t in a], int(at["axis"]))
            elif op == "Reshape":
                shape = [int(v) for v in a[1].tolist()]
                shape = [a[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
                y = a[0].reshape(shape)
            else:  # pragma: no cover - guarded in __init__
                raise ValueError(op)
            env[outs[0]] = y
        return {n: env[n] for n in self.output_names}


def write_onnx(module: OnnxModule, out_path: str, opset: Optional[int] = 13,
               doc: str = "", metadata: Optional[Dict[str, str]] = None) -> None:
    """The original graph of ``module.path`` with ``module``'s current parameters, at ``opset``."""
    import onnx
    from onnx import numpy_helper, version_converter

    from kiosk.train.export import flush_denormals

    model = onnx.load(module.path)
    for t in model.graph.initializer:
        if t.name in module.names:
            arr, _ = flush_denormals(module.params[module.names[t.name]].detach().cpu().numpy().astype(np.float32))
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    if opset is not None and model.opset_import[0].version != opset:
        model = version_converter.convert_version(model, opset)
    if doc:
        model.doc_string = doc
    for k, v in (metadata or {}).items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    import os

    tmp = out_path + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, out_path)


def list_params(module: OnnxModule) -> List[str]:
    return sorted(module.names)
