"""The project's own training pipelines (run on a workstation, never on the kiosk).

- :mod:`kiosk.train.mask_classifier`: the 3-class mask classifier (torch; ``train(...)``).
- :mod:`kiosk.train.data`: VOC parsing, the deterministic split by image, the dataset hash.
- :mod:`kiosk.train.evaluate`: test-split metrics through the kiosk's own ONNX runtime path.
- :mod:`kiosk.train.detector_offset`: YuNet recall/speed per variant and the box correction.
- :mod:`kiosk.train.peers`: the kiosk and the two peer detectors behind one ``predict`` (out-of-distribution checks).
- :mod:`kiosk.train.framing`: kiosk-framed variants of a labelled set (faces at gate distances in 640x480 frames).
- :mod:`kiosk.train.ood`: every set scored the same way for every model, side by side (``eval detector``).
- :mod:`kiosk.train.calibrate`: the classifier's temperature and its "incorrect is sure" threshold.

Importing this package does not import torch.
"""

from __future__ import annotations


def train(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`kiosk.train.mask_classifier.train` (imported lazily: it needs torch)."""
    from kiosk.train.mask_classifier import train as _train

    return _train(*args, **kwargs)
