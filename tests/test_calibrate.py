"""Calibration of the mask classifier's "incorrect" (issue 12): the sidecar, the reading of a face, the fit."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from kiosk.config import PolicyConfig
from kiosk.core.events import Mask
from kiosk.inference import ModelError
from kiosk.train.calibrate import (
    TAU_MAX,
    Faces,
    choose_bias,
    choose_tau,
    fit_temperature,
    incorrect_recall,
    match_one_to_one,
    meets,
    nll,
    rates,
    write_sidecar,
)
from kiosk.ui.screen import MASK_LABELS, WAITING, steps_of
from kiosk.vision.mask import CLASSES, Calibration, Detection, MaskClassifier, read_calibration

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(REPO, "engines", "mask_classifier_ft.onnx")


class FakeRunner:
    """A mask classifier runner whose output is set by the test (``probs`` of each crop, in order)."""

    backend = "fake"
    input_names = ["input"]
    output_names = ["probs"]

    def __init__(self, probs):
        self.probs = np.asarray(probs, np.float32)

    def input_shape(self, name):
        return ["batch", 3, 64, 64]

    def declared_output_shape(self, name):
        return ["batch", 3]

    def input_array(self, name, shape, dtype=np.float32):
        return np.empty(tuple(shape), dtype)

    def run(self, feeds):
        return {"probs": self.probs[: len(feeds["input"])]}


# ---- the sidecar ----------------------------------------------------------------------------------


def test_no_sidecar_keeps_todays_behaviour(tmp_path):
    cal = read_calibration(str(tmp_path / "model.onnx"))
    assert cal == Calibration(1.0, 0.0)
    p = np.array([[0.2, 0.2, 0.6]], np.float32)
    assert np.array_equal(cal.apply(p), p)
    assert cal.readings(p) == [(Mask.INCORRECT, True)]  # every "incorrect" is sure


def test_sidecar_is_read_and_bad_ones_are_refused(tmp_path):
    model = str(tmp_path / "model.onnx")
    (tmp_path / "model.json").write_text(json.dumps({"temperature": 0.7, "incorrect_sure": 0.8, "other": 1}))
    assert read_calibration(model) == Calibration(0.7, 0.8)
    (tmp_path / "model.json").write_text(json.dumps({"temperature": 0.7, "incorrect_sure": 0.8, "incorrect_bias": -1}))
    assert read_calibration(model) == Calibration(0.7, 0.8, -1.0)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="calibration"):
        read_calibration(model)
    (tmp_path / "model.json").write_text(json.dumps({"temperature": 0.7, "incorrect_sure": 1.5}))
    with pytest.raises(ModelError, match="out of range"):
        read_calibration(model)


def test_the_shipped_classifier_has_a_calibration_that_loads():
    cal = read_calibration(SHIPPED)
    assert 0.2 < cal.temperature < 5 and 0.0 <= cal.incorrect_sure < 1 and -3.0 <= cal.incorrect_bias < 0
    with open(os.path.splitext(SHIPPED)[0] + ".json", encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["calibration"]["target_met_on_fitting_sets"] is True
    fitted = " ".join(meta["calibration"]["fitted_on"])
    assert "test.txt" not in fitted and "mask_wearing_check" not in fitted  # the withheld splits are never fitted on


def test_write_sidecar_keeps_other_keys_and_round_trips(tmp_path):
    model = str(tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text(json.dumps({"note": "keep me"}))
    r = {"masked_to_incorrect": 0.01, "faces": 3, "with": 2, "without": 1, "incorrect": 0, "masked_to_unsure": 0.0,
         "unmasked_to_incorrect": 0.0, "incorrect_recall_sure": None}
    result = {"temperature": 0.7, "incorrect_sure": 0.82, "target_masked_to_incorrect": 0.02, "nll_before": 0.2,
              "nll_after": 0.15, "ece_before": 0.07, "ece_after": 0.02, "sets": {"x": {"use": "fit", "before": r, "after": r}}}
    write_sidecar(model, result, "det", "cmd")
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["note"] == "keep me" and meta["calibration"]["command"] == "cmd"
    assert read_calibration(model) == Calibration(0.7, 0.82)


# ---- the reading of a face ------------------------------------------------------------------------


def test_temperature_keeps_the_class_and_sharpens_below_one():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]], np.float32)
    sharp = Calibration(0.5).apply(p)
    assert (sharp.argmax(1) == p.argmax(1)).all()
    assert (sharp.max(1) > p.max(1)).all() and np.allclose(sharp.sum(1), 1, atol=1e-6)
    assert (Calibration(2.0).apply(p).max(1) < p.max(1)).all()


def test_the_incorrect_shift_moves_only_a_narrow_incorrect_to_the_next_class():
    p = np.array([[0.4, 0.05, 0.55],  # "incorrect" by log(0.55 / 0.4) = 0.32: a shift of -1 reads the mask
                  [0.05, 0.25, 0.7],  # by log(0.7 / 0.25) = 1.03: still "incorrect" at -1
                  [0.1, 0.6, 0.3]], np.float32)
    shifted = Calibration(1.0, 0.0, -1.0).apply(p)
    assert list(shifted.argmax(1)) == [0, 2, 1]
    assert np.allclose(shifted.sum(1), 1, atol=1e-6) and (shifted[:, 2] < p[:, 2]).all()
    assert np.allclose(shifted[:, 0] / shifted[:, 1], p[:, 0] / p[:, 1], rtol=1e-5)  # the other two keep their odds
    assert Calibration(1.0, 0.0, -1.0).readings(shifted)[0] == (Mask.WITH, True)


def test_only_an_incorrect_below_tau_is_unsure():
    cal = Calibration(1.0, 0.8)
    p = np.array([[0.1, 0.1, 0.79], [0.1, 0.1, 0.8], [0.4, 0.35, 0.25], [0.2, 0.45, 0.35]], np.float32)
    assert cal.readings(p) == [(Mask.INCORRECT, False), (Mask.INCORRECT, True), (Mask.WITH, True), (Mask.WITHOUT, True)]


def test_detection_reading_is_unsure_only_when_not_sure():
    d = Detection((0, 0, 10, 10), Mask.INCORRECT, 0.6, 0.9, (), (0.3, 0.1, 0.6), sure=False)
    assert d.reading == Mask.UNSURE and d.mask == Mask.INCORRECT  # the model's class is kept for the figures
    assert Detection((0, 0, 10, 10), Mask.INCORRECT, 0.9, 0.9, ()).reading == Mask.INCORRECT


def test_classifier_uses_its_calibration():
    probs = [[0.1, 0.1, 0.8], [0.05, 0.05, 0.9], [0.9, 0.05, 0.05]]
    crop = np.full((40, 40, 3), 128, np.uint8)
    clf = MaskClassifier("no-such-model.onnx", runner=FakeRunner(probs), calibration=Calibration(1.0, 0.85))
    got = clf.classify([crop, crop, crop])
    assert [m for m, _ in got] == [Mask.UNSURE, Mask.INCORRECT, Mask.WITH]
    plain = MaskClassifier("no-such-model.onnx", runner=FakeRunner(probs))  # no sidecar: as before
    assert [m for m, _ in plain.classify([crop, crop, crop])] == [Mask.INCORRECT, Mask.INCORRECT, Mask.WITH]


def test_unsure_is_shown_as_waiting_with_its_own_label():
    class S:
        mask = Mask.UNSURE
        check = None
        intent = None

    assert dict(steps_of(S(), PolicyConfig()))["mask"] == WAITING
    assert MASK_LABELS[Mask.UNSURE] == "请调整口罩"
    assert Mask.UNSURE not in CLASSES  # the model never outputs it


# ---- the fit --------------------------------------------------------------------------------------


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2.0, (4000, 3))
    true_t = 0.6  # the model's probabilities are softmax(z); the truth is softmax(z / 0.6): an under-confident model
    truth = np.exp(z / true_t)
    truth /= truth.sum(1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in truth])
    probs = np.exp(z)
    probs /= probs.sum(1, keepdims=True)
    t = fit_temperature(probs.astype(np.float32), labels)
    assert abs(t - true_t) < 0.05
    assert nll(probs, labels, t) < nll(probs, labels, 1.0)


def _faces(p_incorrect_of_masked, n_masked=100, incorrect=(0.99, 0.9, 0.7)):
    """``n_masked`` masked faces, some read as "incorrect" with the given probabilities, and true incorrect ones."""
    rows, labels = [], []
    for i in range(n_masked):
        if i < len(p_incorrect_of_masked):
            q = p_incorrect_of_masked[i]
            rows.append([1 - q - 0.01, 0.01, q])
        else:
            rows.append([0.95, 0.03, 0.02])
        labels.append(0)
    for q in incorrect:
        rows.append([(1 - q) / 2, (1 - q) / 2, q])
        labels.append(2)
    return Faces(np.array(rows, np.float32), np.array(labels), np.full(len(rows), 100.0, np.float32))


def test_tau_is_the_smallest_that_meets_the_target_on_every_set():
    a = _faces([0.6, 0.7, 0.9])  # 3 % of the masked faces read as "incorrect" before
    b = _faces([0.95])  # 1 %
    assert choose_tau([a, b], 1.0, 0.02) == 0.61  # drops 0.6 from a: 2 % left
    tau = choose_tau([a, b], 1.0, 0.01)
    assert tau == 0.71  # drops 0.6 and 0.7 from a: 1 % left on both sets
    assert rates(a, Calibration(1.0, 0.70))["masked_to_incorrect"] > 0.01
    r = rates(a, Calibration(1.0, tau))
    assert r["masked_to_incorrect"] == 0.01 and r["masked_to_unsure"] == 0.02
    assert r["incorrect_recall_sure"] == round(2 / 3, 4) and r["incorrect_to_unsure"] == round(1 / 3, 4)  # 0.7: unsure
    # sure mistakes: no threshold meets the target; the fit stops at TAU_MAX rather than switch "incorrect" off
    assert choose_tau([_faces([0.999] * 5)], 1.0, 0.02) == TAU_MAX == 0.95
    assert not meets([_faces([0.999] * 5)], Calibration(1.0, TAU_MAX), 0.02)


def test_the_shift_stops_before_it_loses_real_incorrect_faces():
    # true incorrect faces whose "incorrect" leads by log(q / ((1 - q) / 2)): 0.99 -> 5.3, 0.9 -> 2.9, 0.7 -> 1.5
    a = _faces([0.6, 0.7], incorrect=(0.99, 0.9, 0.7) * 7)  # 21 incorrect faces; 5 % may be lost: one
    assert incorrect_recall([a], Calibration(1.0)) == 1.0
    assert incorrect_recall([a], Calibration(1.0, 0.0, -1.5)) == 1.0
    assert incorrect_recall([a], Calibration(1.0, 0.0, -1.75)) == pytest.approx(14 / 21)  # the seven 0.7s go at once
    assert choose_bias([a], 1.0, recall_drop=0.05) == -1.5
    assert choose_bias([a], 1.0, recall_drop=0.5) == -2.75  # the 0.9s (2.94) go at -3.0
    # the two masked faces read as "incorrect" lead by only 0.43 and 0.88: the shift reads them as masks
    assert rates(a, Calibration(1.0))["masked_to_incorrect"] == 0.02
    assert rates(a, Calibration(1.0, 0.0, -1.5))["masked_to_incorrect"] == 0.0
    # masked faces only (mask_wearing has no incorrect label): nothing to keep, so nothing is shifted
    assert choose_bias([_faces([0.6], incorrect=())], 1.0) == 0.0
    # the shift comes before τ: τ is chosen on the shifted probabilities
    assert choose_tau([a], 1.0, 0.01) == 0.61 and choose_tau([a], 1.0, 0.01, bias=-1.5) == 0.0


def test_match_one_to_one_takes_each_box_once_best_first():
    det = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    gt = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    assert match_one_to_one(det, gt, 0.3) == [(0, 0)]
    assert match_one_to_one(det[:0], gt, 0.3) == []


def test_the_vision_worker_hands_the_core_the_reading():
    from kiosk.vision.worker import VisionWorker

    class FakeDetector:
        def detect(self, image):
            return [Detection((10, 10, 110, 110), Mask.INCORRECT, 0.6, 0.9, (), (0.3, 0.1, 0.6), sure=False),
                    Detection((200, 10, 300, 110), Mask.INCORRECT, 0.97, 0.9, (), (0.02, 0.01, 0.97))]

    worker = VisionWorker(None, FakeDetector(), None, lambda code: None, lambda *a: None)  # type: ignore[arg-type]
    faces = worker._faces(np.zeros((240, 320, 3), np.uint8), {})
    assert [f.mask for f in faces] == [Mask.UNSURE, Mask.INCORRECT]
    assert faces[0].confidence == pytest.approx(0.6)


def test_calibrate_command_refuses_a_folder_without_the_data(tmp_path, capsys):
    from kiosk.cli.train import cmd_train_calibrate

    assert cmd_train_calibrate(str(tmp_path)) == 2
    assert "facemask/annotations" in capsys.readouterr().err


def test_the_optional_aizoo_classifier_is_selectable_with_its_own_calibration(tmp_path):
    from kiosk.config import Config, Home
    from kiosk.config import replace as config_replace
    from kiosk.runtime.assemble import build_detector

    path = os.path.join(os.path.dirname(SHIPPED), "mask_classifier_aizoo.onnx")
    cal = read_calibration(path)
    assert 0.2 < cal.temperature < 5 and 0.5 <= cal.incorrect_sure < 1 and cal != read_calibration(SHIPPED)
    config = config_replace(Config(), "vision", mask_model="engines/mask_classifier_aizoo.onnx")
    det = build_detector(config, Home(tmp_path))
    assert det.classifier.calibration == cal and det.classifier.size == 64
    frame = np.full((480, 640, 3), 120, np.uint8)
    probs = det.classifier.classify_boxes(frame, np.array([[250, 150, 390, 330]], np.float32))
    assert probs.shape == (1, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)
