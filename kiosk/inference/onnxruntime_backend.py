"""ONNX Runtime backend: CPU everywhere; CUDA / TensorRT execution providers when present."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from kiosk.inference.base import BackendUnavailable, ModelError, Runner, check_model_file

NAME = "onnxruntime"

try:  # the library is optional: a missing one makes the backend unavailable, never an ImportError
    import onnxruntime as _ort

    UNAVAILABLE_REASON = None  # type: Optional[str]
except Exception as exc:  # pragma: no cover - depends on the machine
    _ort = None
    UNAVAILABLE_REASON = "onnxruntime is not installed ({}: {})".format(type(exc).__name__, exc)

# Preferred order; only those the installed build offers are used.
_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def available() -> bool:
    return _ort is not None


def providers(use_gpu: bool = True) -> List[str]:
    if _ort is None:
        return []
    have = set(_ort.get_available_providers())
    wanted = _PREFERRED if use_gpu else ("CPUExecutionProvider",)
    return [p for p in wanted if p in have] or ["CPUExecutionProvider"]


class OnnxRuntimeRunner(Runner):
    backend = NAME

    def __init__(
        self,
        path: str,
        use_gpu: bool = True,
        intra_op_threads: int = 0,
        provider_list: Optional[Sequence[str]] = None,
        spin: bool = False,
    ) -> None:
        if _ort is None:
            raise BackendUnavailable(UNAVAILABLE_REASON or "onnxruntime missing")
        check_model_file(path)
        self.path = str(path)
        opts = _ort.SessionOptions()
        opts.log_severity_level = 3
        if intra_op_threads > 0:
            opts.intra_op_num_threads = int(intra_op_threads)
        if not spin:
            # Idle worker threads otherwise busy-wait after each run; with several small models
            # run back to back (face detector, then mask classifier) on a few cores they steal
            # the CPU from each other (measured here: 7 + 1 ms of work took 32 ms with spinning).
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        provs = list(provider_list) if provider_list else providers(use_gpu)
        try:
            self._sess = _ort.InferenceSession(self.path, sess_options=opts, providers=provs)
        except Exception as exc:
            raise ModelError(self.path, "cannot be loaded by onnxruntime (damaged, or not an ONNX model): {}".format(
                _one_line(exc))) from exc
        self.providers = self._sess.get_providers()
        self._inputs = self._sess.get_inputs()
        self._output_args = self._sess.get_outputs()
        self._outputs = [o.name for o in self._output_args]

    @property
    def input_names(self) -> List[str]:
        return [i.name for i in self._inputs]

    @property
    def output_names(self) -> List[str]:
        return list(self._outputs)

    def input_shape(self, name: str) -> List[object]:
        for i in self._inputs:
            if i.name == name:
                return list(i.shape)
        raise KeyError(name)

    def output_shape(self, name: str) -> List[object]:
        for o in self._output_args:
            if o.name == name:
                return list(o.shape)
        raise KeyError(name)

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            outs = self._sess.run(self._outputs, feeds)
        except Exception as exc:
            raise ModelError(self.path, "inference failed: {}".format(_one_line(exc))) from exc
        return dict(zip(self._outputs, outs))


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """onnxruntime's message on one line (it may span several), at most ``limit`` characters."""
    return " ".join(str(exc).split())[:limit]


def load(path: str, **kwargs: object) -> Runner:
    return OnnxRuntimeRunner(path, **kwargs)  # type: ignore[arg-type]
