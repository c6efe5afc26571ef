"""Which face model / box correction / mask classifier the kiosk runs (kiosk.models.selection):
``vision.face_model`` as a catalogue name or a file path, the box correction from the model's JSON
sidecar, and the classifier that goes with the face model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from kiosk.inference import ModelError
from kiosk.models import ModelNotInstalled
from kiosk.models.selection import REPO, detector_files, face_model_file, mask_model_file
from kiosk.vision.faces import (
    DEFAULT_BOX_CORRECTION,
    FaceDetector,
    box_correction_for,
    correct_boxes,
    parse_box_correction,
    sidecar_path,
)

ENGINES = REPO / "engines"
FT_FACE = ENGINES / "face_detector.onnx"
FT_MASK = ENGINES / "mask_classifier_ft.onnx"
MASK = ENGINES / "mask_classifier.onnx"
SHARED = Path(os.environ.get("DABAI_SHARED", str(REPO.parent / "shared")))
DATA = SHARED / "data" / "facemask"
YUNET_DIR = SHARED / "models" / "yunet"

needs_ft = pytest.mark.skipif(not (FT_FACE.is_file() and FT_MASK.is_file()),
                              reason="engines/face_detector.onnx or engines/mask_classifier_ft.onnx missing")
needs_shared = pytest.mark.skipif(not (DATA.is_dir() and (YUNET_DIR / "yunet_n_dynamic.onnx").is_file()),
                                  reason="shared data/models not found at {} (set DABAI_SHARED)".format(SHARED))


def test_parse_box_correction():
    assert parse_box_correction("identity") == "identity"
    assert parse_box_correction(" learned ") == "learned"
    assert parse_box_correction("constant") == "constant"
    assert parse_box_correction("-0.005,0.18,0.04,0.08") == (-0.005, 0.18, 0.04, 0.08)
    for bad in ("bogus", "1,2,3", "a,b,c,d", ""):
        with pytest.raises(ValueError):
            parse_box_correction(bad)


def test_named_corrections():
    b = np.array([[10, 20, 50, 70]], np.float32)
    kps = np.array([[[22, 40], [38, 40], [30, 50], [24, 60], [36, 60]]], np.float32)
    s = np.array([0.9], np.float32)
    np.testing.assert_allclose(correct_boxes(b, s, kps, "identity"), b)
    np.testing.assert_allclose(correct_boxes(b, s, kps, "constant"), correct_boxes(b, s, kps, DEFAULT_BOX_CORRECTION))
    assert not np.allclose(correct_boxes(b, s, kps, "learned"), b)


def test_sidecar_selects_the_box_correction(tmp_path):
    model = tmp_path / "det.onnx"
    assert sidecar_path(model) == str(tmp_path / "det.json")
    assert box_correction_for(model) == "learned"  # no sidecar: the original YuNet's learned correction
    side = tmp_path / "det.json"
    side.write_text(json.dumps({"box_correction": "identity"}))
    assert box_correction_for(model) == "identity"
    side.write_text(json.dumps({"box_correction": [0, 0.1, 0, 0.05]}))
    assert box_correction_for(model) == (0.0, 0.1, 0.0, 0.05)
    side.write_text(json.dumps({"note": "no correction stated"}))
    assert box_correction_for(model) == "learned"
    side.write_text(json.dumps({"box_correction": "upside-down"}))
    with pytest.raises(ValueError, match="det.json"):
        box_correction_for(model)
    side.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        box_correction_for(model)


def test_shipped_sidecars():
    # the fine-tuned detector emits the dataset's boxes itself; the catalogue's YuNet keeps the learned map
    assert box_correction_for(FT_FACE) == "identity"
    assert box_correction_for(YUNET_DIR / "yunet_n_dynamic.onnx") == "learned"
    assert mask_model_file("", str(FT_FACE)) == str(FT_MASK)


def test_face_model_by_catalogue_name_or_path(tmp_path):
    with pytest.raises(ModelNotInstalled, match="models fetch"):
        face_model_file("yunet_n_dynamic", tmp_path)
    # a relative path is resolved against the repository, whatever the working directory
    assert face_model_file("engines/face_detector.onnx", tmp_path) == str(FT_FACE)
    assert face_model_file(str(FT_FACE), tmp_path) == str(FT_FACE)
    with pytest.raises(ModelError, match="no such file"):
        face_model_file("engines/no_such_detector.onnx", tmp_path)


def test_mask_model_selection(tmp_path):
    assert mask_model_file("", None) == str(MASK)
    assert mask_model_file("engines/mask_classifier_ft.onnx") == str(FT_MASK)
    assert mask_model_file(str(tmp_path / "x.onnx"), str(FT_FACE)) == str(tmp_path / "x.onnx")  # explicit wins
    # empty: the classifier the face model's sidecar names, relative to the sidecar's folder
    face = tmp_path / "m" / "det.onnx"
    face.parent.mkdir()
    face.write_bytes(b"")
    assert mask_model_file("", str(face)) == str(MASK)
    (tmp_path / "m" / "det.json").write_text(json.dumps({"box_correction": "identity", "mask_model": "clf.onnx"}))
    assert mask_model_file("", str(face)) == str(tmp_path / "m" / "clf.onnx")


@needs_ft
def test_detector_files_of_the_two_pairs(tmp_path):
    face, mask, corr = detector_files("engines/face_detector.onnx", "", tmp_path)
    assert (face, mask, corr) == (str(FT_FACE), str(FT_MASK), "identity")
    models = tmp_path / "models"
    models.mkdir()
    (models / "yunet_n_dynamic.onnx").write_bytes(b"")  # only its presence matters here
    face, mask, corr = detector_files("yunet_n_dynamic", "", models)
    assert (face, mask, corr) == (str(models / "yunet_n_dynamic.onnx"), str(MASK), "learned")
    face, mask, corr = detector_files("engines/face_detector.onnx", "engines/mask_classifier.onnx", tmp_path)
    assert mask == str(MASK) and corr == "identity"


@needs_ft
def test_build_detector_with_a_face_model_path(home):
    from kiosk.config import Config
    from kiosk.config import replace as config_replace
    from kiosk.runtime.assemble import build_detector

    config = config_replace(Config(), "vision", face_model="engines/face_detector.onnx", mask_model="")
    det = build_detector(config, home)
    assert det.faces.model_path == str(FT_FACE) and det.faces.box_correction == "identity"
    assert det.classifier.model_path == str(FT_MASK)
    frame = np.zeros((480, 640, 3), np.uint8)
    assert det.detect(frame) == []
    # a path that does not exist: a clear error naming it
    bad = config_replace(config, "vision", face_model="engines/nope.onnx")
    with pytest.raises(ModelError, match="nope.onnx"):
        build_detector(bad, home)


@needs_ft
def test_identity_correction_is_the_raw_output(tmp_path):
    # the same network with a sidecar saying identity == box_correction (0, 0, 0, 0)
    face = tmp_path / "det.onnx"
    shutil.copyfile(str(FT_FACE), str(face))
    (tmp_path / "det.json").write_text(json.dumps({"box_correction": "identity"}))
    rng = np.random.RandomState(0)
    frame = (rng.rand(240, 320, 3) * 255).astype(np.uint8)
    frame[60:180, 100:220] = 200
    a = FaceDetector(str(face), score_threshold=0.05, box_correction=box_correction_for(face)).detect_arrays(frame)
    b = FaceDetector(str(face), score_threshold=0.05, box_correction=(0, 0, 0, 0)).detect_arrays(frame)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@needs_ft
@needs_shared
def test_eval_detector_command_with_a_face_model_path(tmp_path, capsys):
    from kiosk.cli import main

    names = ["maksssksksss0.png", "maksssksksss1.png"]
    data = tmp_path / "voc"
    (data / "images").mkdir(parents=True)
    (data / "annotations").mkdir()
    for n in names:
        shutil.copy(str(DATA / "images" / n), str(data / "images" / n))
        shutil.copy(str(DATA / "annotations" / n.replace(".png", ".xml")), str(data / "annotations"))
    home = str(tmp_path / "home")
    capsys.readouterr()
    assert main(["--home", home, "eval", "detector", "--data", str(data), "--json",
                 "--face-model", "engines/face_detector.onnx"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["models"] == {"face": str(FT_FACE), "box_correction": "identity", "mask": str(FT_MASK)}
    assert 0 < rep["map50"] <= 1
    # the original YuNet by file: learned correction and the original classifier
    assert main(["--home", home, "eval", "detector", "--data", str(data), "--json",
                 "--face-model", str(YUNET_DIR / "yunet_n_dynamic.onnx")]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["models"]["box_correction"] == "learned" and rep["models"]["mask"] == str(MASK)
    # explicit overrides
    assert main(["--home", home, "eval", "detector", "--data", str(data), "--json",
                 "--face-model", "engines/face_detector.onnx", "--box-correction", "learned",
                 "--mask-model", "engines/mask_classifier.onnx"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["models"]["box_correction"] == "learned" and rep["models"]["mask"] == str(MASK)
