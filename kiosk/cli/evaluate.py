"""``dabai-kiosk eval detector``: the face + mask detector on any Pascal VOC folder.

``DIR/images`` + ``DIR/annotations`` (classes with_mask / without_mask / mask_weared_incorrect);
with a split name, only the images listed in ``engines/splits/<split>.txt``. Prints mAP@0.5,
mAP@0.5:0.95 (VOC all-point AP, IoU 0.50:0.05:0.95), AP@0.5 per class, close-range accuracy, and
the same with the kiosk's live settings; writes a confusion-matrix and a PR-curve image.
Unreadable images / XML files and objects of unknown classes are skipped and counted.
The computations live in :mod:`kiosk.train.evaluate` (numpy + OpenCV, no torch).

Without ``--data`` (or with ``--sets``): the out-of-distribution evaluation of issue 12
(:mod:`kiosk.train.ood`): every set (facemask test or val, the public-domain mask_wearing check split,
and kiosk-framed variants of both), every model (the kiosk in photo mode and with the gate's own live
settings, and the two peers from ``../shared/peers``), scored the same way, side by side, with a one-line
summary per model. ``dabai-kiosk eval frame`` writes one framed variant as a VOC folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Dict, List, Optional

from kiosk.cli.common import Add, home_of
from kiosk.cli.vision import engines_dir
from kiosk.config import load_config

EVAL_MODE = "photo"  # the headline figures (kiosk.vision.mask.MODES); "live" is reported alongside


def _err(msg: str) -> None:
    print("error: " + msg, file=sys.stderr)


def _face_model(face_model: str, models_dir: Optional[str] = None) -> str:
    """A face model file: a file path as given, a models folder -> the catalogue's default face model
    in it, a catalogue name -> its file in ``models_dir``, else a path relative to the repository."""
    from kiosk.models.catalog import DEFAULT_FACE_MODEL, model_path
    from kiosk.models.selection import face_model_file

    if os.path.isfile(face_model):
        return os.path.abspath(face_model)
    if os.path.isdir(face_model):
        return str(model_path(DEFAULT_FACE_MODEL, face_model))
    return face_model_file(face_model, models_dir or ".")


def _split_names(split: str) -> List[str]:
    path = os.path.join(engines_dir(), "splits", split + ".txt")
    if not os.path.isfile(path):
        raise FileNotFoundError("no split file {}".format(path))
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


def cmd_eval_detector(data_dir: str, json_out: bool, models_dir_or_face_model: str, mask_model: str,
                      split: Optional[str], out_dir: Optional[str], backend: str = "auto",
                      multilabel: bool = False, models_dir: Optional[str] = None,
                      box_correction: Optional[str] = None) -> int:
    """Exit 0 on success, 1 when nothing could be evaluated (empty/invalid folder, no readable
    image), 2 when the models cannot be loaded.

    ``models_dir_or_face_model``: a face model file, a models folder (its default face model), or
    a catalogue name installed in ``models_dir``. ``mask_model`` empty: the classifier the face
    model's sidecar names, else ``engines/mask_classifier.onnx``. ``box_correction`` None: the face
    model's sidecar, else learned (:mod:`kiosk.models.selection`)."""
    from kiosk.inference import BackendUnavailable, ModelError
    from kiosk.models.catalog import ModelNotInstalled
    from kiosk.models.selection import mask_model_file
    from kiosk.train import evaluate as ev
    from kiosk.vision.faces import box_correction_for, parse_box_correction
    from kiosk.vision.mask import MaskDetector

    try:
        names = _split_names(split) if split else None
        anns, skipped = ev.load_eval_set(data_dir, names)
    except (OSError, ValueError) as exc:
        _err("{}: {}".format(data_dir, exc))
        return 1
    if not anns:
        _err("{}: no annotated images to evaluate{}".format(data_dir, " in split " + split if split else ""))
        return 1
    try:
        face = _face_model(models_dir_or_face_model, models_dir)
        mask = mask_model_file(mask_model, face)
        corr = box_correction_for(face) if box_correction is None else parse_box_correction(box_correction)
        dets = {m: MaskDetector.for_mode(face, mask, m, backend, box_correction=corr) for m in (EVAL_MODE, "live")}
    except (ModelNotInstalled, ModelError, BackendUnavailable, OSError, ValueError) as exc:
        _err(str(exc))
        return 2
    rep: Dict[str, object] = {}
    for mode, det in dets.items():
        kept, raws, bad, secs = ev.run_detector(det, data_dir, anns)
        curves: dict = {}
        ap = ev.detection_ap(kept, ev.to_detections(raws, multilabel), ev.IOU_THRESHOLDS, curves)
        res = ev.summarize_ap(ap)
        res["ms_per_image"] = round(1000 * secs / max(len(kept), 1), 2)
        if mode == EVAL_MODE:
            rep.update(res)
            rep["images"] = len(kept)
            rep["mode"] = mode
            rep["multilabel"] = multilabel
            rep["models"] = {"face": face, "box_correction": corr if isinstance(corr, str) else list(corr),
                             "mask": mask}
            if not kept:
                _err("{}: none of the {} images could be read".format(data_dir, len(anns)))
                return 1
            clf = ev.classifier_report(det.classifier, data_dir, kept, flip=False)
            close = clf["close_range_h>=64"]
            rep["close_range_accuracy"] = close["accuracy"]  # type: ignore[index]
            rep["close_range_faces"] = close["n"]  # type: ignore[index]
            rep["gt_crop_accuracy"] = clf["all"]["accuracy"]  # type: ignore[index]
            conf = ev.detection_confusion(kept, raws)
            rep["confusion(rows=true,cols=pred;with,without,incorrect,background)"] = conf.tolist()
            if bad or skipped:
                rep["skipped"] = dict(skipped, unreadable_images=len(bad))
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
                cm_path = os.path.join(out_dir, "confusion_matrix.png")
                pr_path = os.path.join(out_dir, "pr_curve.png")
                title = "{} ({} images, {} mode)".format(os.path.basename(os.path.normpath(data_dir)), len(kept), mode)
                try:
                    ev.plot_confusion(conf, cm_path, "detection confusion, IoU 0.5, score >= 0.25 - " + title)
                    ev.plot_pr(curves, res["ap50"], pr_path, "PR, IoU 0.5 - " + title)  # type: ignore[arg-type]
                    rep["files"] = {"confusion_matrix": cm_path, "pr_curve": pr_path}
                except ImportError:  # plots need matplotlib (train or dev extra); the figures do not
                    rep["files"] = {}
                    _err("no plots written: matplotlib is not installed (pip install 'dabai-kiosk[dev]')")
        else:
            rep["live"] = res
    if json_out:
        print(json.dumps(rep, ensure_ascii=False))
    else:
        ap50: dict = rep["ap50"]  # type: ignore[assignment]
        print("{} images ({} mode): mAP@0.5 {}  mAP@0.5:0.95 {}".format(rep["images"], EVAL_MODE, rep["map50"], rep["map50_95"]))
        for c, v in ap50.items():
            print("  AP@0.5 {:<22} {}".format(c, v))
        live: dict = rep["live"]  # type: ignore[assignment]
        print("live kiosk settings: mAP@0.5 {}  mAP@0.5:0.95 {}".format(live["map50"], live["map50_95"]))
        print("close-range (GT height >= 64 px) accuracy: {} over {} faces".format(rep["close_range_accuracy"],
                                                                                   rep["close_range_faces"]))
        if "skipped" in rep:
            print("skipped: {}".format(rep["skipped"]))
    return 0


def kiosk_factories(face: str, mask: str, correction: object, backend: str, face_score: float,
                    detect_scale: float) -> Dict[str, Callable[[], object]]:
    """``kiosk``: photo mode (the headline settings of ``eval detector --data``), acting on faces with score
    >= ``face_score``; ``kiosk_live``: the gate's own detector (as :func:`kiosk.runtime.assemble.build_detector`
    builds it: live mode, ``vision.detect_scale``, ``vision.face_score``)."""
    from kiosk.train.peers import KioskModel
    from kiosk.vision.mask import MaskDetector

    def photo() -> object:
        det = MaskDetector.for_mode(face, mask, EVAL_MODE, backend, box_correction=correction)
        return KioskModel(det, "kiosk", operating_face_score=face_score)

    def live() -> object:
        det = MaskDetector.for_mode(face, mask, "live", backend, face_score_threshold=face_score, scale=detect_scale,
                                    min_long_side=int(round(640 * detect_scale)), box_correction=correction)
        return KioskModel(det, "kiosk_live")

    return {"kiosk": photo, "kiosk_live": live}


def cmd_eval_sets(args: argparse.Namespace, config: object, models_dir: str) -> int:
    """The multi-set, multi-model evaluation (issue 12). Exit 0; 1 when a set cannot be built; 2 when a
    model asked for by name cannot be loaded or is absent."""
    import time

    from kiosk.inference import BackendUnavailable, ModelError
    from kiosk.models.catalog import ModelNotInstalled
    from kiosk.models.selection import mask_model_file
    from kiosk.train import ood
    from kiosk.train.peers import peer_factories
    from kiosk.vision.faces import box_correction_for, parse_box_correction

    vision = config.vision  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    wanted_models = [m.strip() for m in (args.models or ",".join(ood.MODEL_NAMES)).split(",") if m.strip()]
    unknown = [m for m in wanted_models if m not in ood.MODEL_NAMES]
    if unknown:
        _err("unknown model(s) {} (known: {})".format(", ".join(unknown), ", ".join(ood.MODEL_NAMES)))
        return 2
    factories = {}  # type: Dict[str, Callable[[], object]]
    if any(m.startswith("kiosk") for m in wanted_models):
        try:
            face = _face_model(args.face_model or vision.face_model, models_dir)
            mask = mask_model_file(args.mask_model if args.mask_model is not None else
                                   ("" if args.face_model else vision.mask_model), face)
            corr = box_correction_for(face) if args.box_correction is None else parse_box_correction(args.box_correction)
        except (ModelNotInstalled, ModelError, BackendUnavailable, OSError, ValueError) as exc:
            _err(str(exc))
            return 2
        factories.update(kiosk_factories(face, mask, corr, args.backend or vision.backend, vision.face_score,
                                         vision.detect_scale))
    factories.update(peer_factories(args.peers))
    explicit = args.models is not None
    missing = [m for m in wanted_models if m not in factories]
    if missing and explicit:
        _err("model(s) not available: {} (peers are read from {})".format(", ".join(missing), args.peers or
                                                                           "../shared/peers"))
        return 2
    factories = {m: factories[m] for m in wanted_models if m in factories}
    log = (lambda line: print(line, file=sys.stderr)) if not args.quiet else None
    try:
        sets = ood.default_sets([x.strip() for x in (args.sets or ",".join(ood.SETS)).split(",") if x.strip()],
                                split=args.split or "test", facemask_dir=args.facemask_data,
                                mask_wearing_dir=args.mask_wearing_data, frames_root=args.frames_dir,
                                seed=args.seed, log=log)
    except (OSError, ValueError) as exc:
        _err(str(exc))
        return 1
    try:
        result = ood.evaluate_models(factories, sets, log)
    except (ModelError, BackendUnavailable) as exc:
        _err(str(exc))
        return 2
    result["missing_models"] = missing
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(ood.side_by_side(result))
        print()
        print(ood.markdown_tables(result))
        print()
        for line in result["summary"].values():  # type: ignore[union-attr]
            print(line)
        if missing:
            print("not evaluated (files absent): " + ", ".join(missing))
        print("total {:.0f} s".format(result["total_seconds"]))  # type: ignore[str-format]
    return 0


def cmd_eval_frame(args: argparse.Namespace) -> int:
    from kiosk.train import framing
    from kiosk.train.evaluate import load_eval_set

    try:
        names = _split_names(args.split) if args.split else None
        anns, _ = load_eval_set(args.data, names)
        manifest = framing.make_variant(args.data, anns, args.variant, args.out, args.seed)
    except (OSError, ValueError) as exc:
        _err("{}: {}".format(args.data, exc))
        return 1
    if args.json:
        print(json.dumps(manifest))
    else:
        print("{} {} frames in {} ({})".format(manifest["frames"], args.variant, args.out,
                                               manifest["framed_face_class"]))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.what == "frame":
        return cmd_eval_frame(args)
    home = home_of(args)
    config = load_config(home.config)
    if args.data is None or args.sets is not None:
        return cmd_eval_sets(args, config, str(home.models))
    # --face-model without --mask-model: the classifier that goes with that face model (its sidecar)
    mask = args.mask_model or ("" if args.face_model else config.vision.mask_model)
    return cmd_eval_detector(args.data, args.json, args.face_model or config.vision.face_model, mask, args.split,
                             args.out, backend=args.backend or config.vision.backend, multilabel=args.multilabel,
                             models_dir=str(home.models), box_correction=args.box_correction)


def add_parsers(add: Add, common: argparse.ArgumentParser) -> None:
    p = add("eval", cmd_eval, "accuracy of the models on a labelled folder")
    es = p.add_subparsers(dest="what", metavar="WHAT")
    es.required = True
    a = es.add_parser("detector", help="with --data: AP@0.5 per class, mAP@0.5, mAP@0.5:0.95 on a VOC folder; "
                                       "without: every set x every model, side by side (issue 12)", parents=[common])
    a.add_argument("--data", help="folder with images/ and annotations/ (VOC XML); omit for the multi-set report")
    a.add_argument("--split", help="only the images of engines/splits/SPLIT.txt (train, val, test); in the "
                                   "multi-set report the facemask split (default test)")
    a.add_argument("--sets", help="multi-set report: comma-separated, of facemask, mask_wearing, facemask_frame, "
                                  "facemask_paste, facemask_crop, mask_wearing_frame, mask_wearing_paste, "
                                  "mask_wearing_crop (default all)")
    a.add_argument("--models", help="multi-set report: comma-separated, of kiosk (photo mode), kiosk_live (the "
                                    "gate's settings), ultraface, aizoo (default: all whose files are present)")
    a.add_argument("--peers", help="peer model folder (default $DABAI_PEERS or ../shared/peers)")
    a.add_argument("--facemask-data", help="default ../shared/data/facemask")
    a.add_argument("--mask-wearing-data", help="default ../shared/data/mask_wearing")
    a.add_argument("--frames-dir", default="out/ood/frames", help="where framed variants are generated and cached")
    a.add_argument("--seed", type=int, default=0, help="seed of the framed variants")
    a.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a.add_argument("--out", help="write confusion_matrix.png and pr_curve.png here")
    a.add_argument("--face-model", help="face model: a catalogue name (installed in the data home), an ONNX file "
                                        "(relative to the repository, e.g. engines/face_detector.onnx) or a models "
                                        "folder (default: vision.face_model)")
    a.add_argument("--box-correction", help="learned, constant, identity or 4 fractions (default: the face model's "
                                            "JSON sidecar, else learned)")
    a.add_argument("--mask-model", help="mask classifier ONNX (default: with --face-model the one its sidecar names, "
                                        "else vision.mask_model; finally engines/mask_classifier.onnx)")
    a.add_argument("--backend", help="inference backend (default: vision.backend)")
    a.add_argument("--multilabel", action="store_true", help="score each face once per class (as YOLO papers do)")
    a.add_argument("--json", action="store_true")
    f = es.add_parser("frame", help="write a kiosk-framed variant of a VOC set (640x480 frames, seeded)", parents=[common])
    f.add_argument("--data", required=True, help="folder with images/ and annotations/ (VOC XML)")
    f.add_argument("--split", help="only the images of engines/splits/SPLIT.txt")
    f.add_argument("--variant", default="frame", choices=("frame", "paste", "crop"),
                   help="frame: the photo's own surroundings; paste: a tight crop on another photo's background; "
                        "crop: the tight crop alone")
    f.add_argument("--out", required=True, help="output folder (images/, annotations/, manifest.json)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--json", action="store_true")
