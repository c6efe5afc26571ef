"""False faces of a face detector at the kiosk's live settings, on images with no labelled face left (issue 12).

    .venv/bin/python tools/false_faces.py engines/face_detector.onnx out/face_kv3/face_detector.onnx

Every labelled face of the facemask VAL + TEST photos and of mask_wearing_train is painted out (its box grown
by 60 % on each side, filled with the photo's mean colour), and the photo is letterboxed into a 640x480 frame.
Whatever the live detector (``vision.detect_scale`` 0.5, face score 0.5, coarse and search passes) still finds
is counted. Crowds hold unlabelled faces too, so the count is not zero for any detector: compare detectors in
one run. A detector trained on pasted faces with hard edges found more faces along the painted-out patches'
edges (the model card, "Levers tried on 2026-12-03").
"""

import os
import sys

import cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kiosk.cli.evaluate import kiosk_factories  # noqa: E402
from kiosk.train import ood  # noqa: E402
from kiosk.train.evaluate import letterbox, load_eval_set  # noqa: E402
from kiosk.vision.faces import box_correction_for  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def face_free_frames() -> list:
    out = []
    for d, names in ((os.path.join(SHARED, "facemask"), ood.split_names("val") + ood.split_names("test")),
                     (os.path.join(SHARED, "mask_wearing"), ood.split_names("mask_wearing_train"))):
        anns, _ = load_eval_set(d, names)
        for a in anns:
            im = cv2.imread(os.path.join(d, "images", a.image))
            if im is None:
                continue
            fill = im.reshape(-1, 3).mean(0)
            for b in a.boxes:
                w, h = b[2] - b[0], b[3] - b[1]
                im[max(0, int(b[1] - .6 * h)):int(b[3] + .6 * h), max(0, int(b[0] - .6 * w)):int(b[2] + .6 * w)] = fill
            out.append(letterbox(im))
    return out


def main(argv: list) -> int:
    frames = face_free_frames()
    for face in argv:
        # the gate's own detector (as eval detector's kiosk_live): detect_scale 0.5, face score 0.5
        det = kiosk_factories(face, "engines/mask_classifier_ft.onnx", box_correction_for(face), "onnxruntime", 0.5,
                              0.5)["kiosk_live"]().detector  # type: ignore[attr-defined]
        n = [len(det.detect(f)) for f in frames]
        print("{}: {} frames, {} with a face found, {} faces".format(face, len(frames), sum(1 for x in n if x), sum(n)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
