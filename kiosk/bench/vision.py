"""Speed of the vision step, side by side with a peer model on the same frames in the same run.

The kiosk's step is what the vision worker does per frame: faces + mask classes
(``MaskDetector.detect``) and the live QR reader. The peer is UltraFace "RFB-640 masked_face v2"
(MIT; a one-stage face / masked-face detector from ../shared/peers, for comparison only), timed
as network + decoding + NMS on the same frames. The two are interleaved frame by frame so that
a noisy machine slows both alike.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from kiosk.bench import timing_summary
from kiosk.train.peers import UltraFaceMasked  # the peer (kiosk.train.peers has both peers)

PEER_FILE = "RFB-640-masked_face-v2.onnx"


def demo_frames(n: int = 60) -> List[np.ndarray]:
    """640x480 frames of a masked resident holding a pass: the kiosk's everyday view."""
    import base64
    import os

    from kiosk.demo.scenes import Shot, render

    token = "DABAI1." + base64.urlsafe_b64encode(os.urandom(89)).rstrip(b"=").decode()
    shots = [Shot(0, n, person=("person1", "with_mask")), Shot(n // 2, n, code=token)]
    return render(shots, n, seed=1)


def _stats(values: Sequence[float]) -> Dict[str, float]:
    s = timing_summary(values, 2)
    return {"p50_ms": s["p50"], "p95_ms": s["p95"]}


def run_vision_bench(
    detector: Any,
    qr_reader: Any,
    frames: List[np.ndarray],
    peer_path: Optional[Path] = None,
    repeats: int = 3,
    warmup: int = 5,
) -> Dict[str, Any]:
    peer = UltraFaceMasked(str(peer_path)) if peer_path is not None and peer_path.exists() else None
    for frame in frames[:warmup]:
        detector.detect(frame)
        if peer is not None:
            peer.detect(frame)
    step, detect, qr, peer_ms = [], [], [], []  # type: List[float], List[float], List[float], List[float]
    for _ in range(repeats):
        for frame in frames:
            t0 = time.perf_counter()
            detector.detect(frame)
            t1 = time.perf_counter()
            if qr_reader is not None:
                qr_reader.read(frame)
            t2 = time.perf_counter()
            detect.append((t1 - t0) * 1000)
            qr.append((t2 - t1) * 1000)
            step.append((t2 - t0) * 1000)
            if peer is not None:
                t3 = time.perf_counter()
                peer.detect(frame)
                peer_ms.append((time.perf_counter() - t3) * 1000)
    result = dict(_stats(step))  # type: Dict[str, Any]
    result["fps"] = round(1000.0 / statistics.mean(step), 1)
    result["frames"] = len(step)
    result["frame_size"] = "{}x{}".format(frames[0].shape[1], frames[0].shape[0])
    result["stages"] = {"detect_classify": _stats(detect), "qr": _stats(qr)}
    result["peers"] = {}
    if peer is not None:
        result["peers"]["ultraface_masked_v2"] = dict(_stats(peer_ms), fps=round(1000.0 / statistics.mean(peer_ms), 1))
        # Like for like: the peer detects faces and masks; it reads no QR code.
        result["detect_classify_vs_peer_p50"] = round(
            result["stages"]["detect_classify"]["p50_ms"] / result["peers"]["ultraface_masked_v2"]["p50_ms"], 2
        )
    return result
