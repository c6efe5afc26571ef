"""A small IoU tracker: the same face keeps its id from frame to frame.

The decision core votes a face's mask class over its recent frames, so ids must be stable;
a face missing for a few frames keeps its id when it comes back close to where it was.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

Box = Tuple[int, int, int, int]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` (N,4) and ``b`` (M,4), x1 y1 x2 y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(aa[:, None] + ab[None, :] - inter, 1e-9)


class IouTracker:
    def __init__(self, min_iou: float = 0.3, max_missed: int = 10) -> None:
        self.min_iou = min_iou
        self.max_missed = max_missed
        self._boxes: Dict[int, Box] = {}
        self._missed: Dict[int, int] = {}
        self._next = 1

    def update(self, boxes: Sequence[Box]) -> List[int]:
        """Track ids for this frame's boxes, in the same order."""
        ids = list(self._boxes)
        old = np.array([self._boxes[i] for i in ids], np.float32).reshape(-1, 4)
        new = np.array(boxes, np.float32).reshape(-1, 4)
        iou = iou_matrix(new, old)
        assigned = [-1] * len(boxes)
        # Greedy on the best overlaps first: enough for the few faces at a gate.
        for flat in np.argsort(-iou, axis=None):
            n, o = divmod(int(flat), max(len(ids), 1))
            if not len(ids) or iou[n, o] < self.min_iou:
                break
            if assigned[n] == -1 and ids[o] not in assigned:
                assigned[n] = ids[o]
        for n, track in enumerate(assigned):
            if track == -1:
                assigned[n] = track = self._next
                self._next += 1
            self._boxes[track] = tuple(int(v) for v in boxes[n])  # type: ignore[assignment]
            self._missed[track] = 0
        for track in ids:
            if track not in assigned:
                self._missed[track] += 1
                if self._missed[track] > self.max_missed:
                    del self._boxes[track], self._missed[track]
        return assigned
