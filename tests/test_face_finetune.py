"""Target assignment and loss of the YuNet fine-tuning (kiosk.train.face_finetune) on hand-made boxes."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kiosk.train.face_finetune import STRIDES, assign, box_iou, decode, detection_loss, grid_points  # noqa: E402

H = W = 128


def _outputs_for(boxes_per_point, obj, cls):
    """Raw outputs (batch 1) whose decoding gives ``boxes_per_point`` (P,4) with the given scores."""
    points, strides = grid_points(H, W)
    b = boxes_per_point
    c = (b[:, :2] + b[:, 2:]) / 2
    wh = (b[:, 2:] - b[:, :2]).clamp(min=1e-3)
    raw = torch.cat([(c - points) / strides[:, None], torch.log(wh / strides[:, None])], 1)
    out, i = {}, 0
    for s in STRIDES:
        n = (H // s) * (W // s)
        out["bbox_%d" % s] = raw[i:i + n][None].clone()
        out["cls_%d" % s] = cls[i:i + n, None][None].clone()
        out["obj_%d" % s] = obj[i:i + n, None][None].clone()
        out["kps_%d" % s] = torch.zeros(1, n, 10)
        i += n
    out["_hw"] = (H, W)
    return out


def test_grid_and_decode_follow_facedetector():
    points, strides = grid_points(64, 96)
    assert points.shape[0] == (8 * 12) + (4 * 6) + (2 * 3)
    assert points[1].tolist() == [8.0, 0.0] and points[12].tolist() == [0.0, 8.0]  # rows then columns
    raw = torch.tensor([[0.5, 0.25, 0.0, float(np.log(2.0))]])
    box = decode(raw, torch.tensor([[16.0, 8.0]]), torch.tensor([8.0]))[0]
    # centre (16 + 4, 8 + 2), size (8, 16)
    assert torch.allclose(box, torch.tensor([16.0, 2.0, 24.0, 18.0]))


def test_prior_assignment_inside_box_at_fitting_stride():
    points, strides = grid_points(H, W)
    gt = torch.tensor([[30.0, 34.0, 94.0, 98.0]])  # 64 px face: the 4-stride prior fits stride 16
    idx, _ = assign(points, strides, gt)
    pos = idx >= 0
    assert pos.any()
    p = points[pos]
    assert ((p[:, 0] >= 30) & (p[:, 0] <= 94) & (p[:, 1] >= 34) & (p[:, 1] <= 98)).all()
    assert set(strides[pos].tolist()) == {16.0}
    small = torch.tensor([[40.0, 40.0, 56.0, 58.0]])  # 16 px face -> stride 8
    idx, _ = assign(points, strides, small)
    assert set(strides[idx >= 0].tolist()) == {8.0}


def test_assignment_follows_predictions_and_splits_two_faces():
    points, strides = grid_points(H, W)
    gt = torch.tensor([[8.0, 8.0, 56.0, 56.0], [72.0, 72.0, 120.0, 120.0]])
    # perfect predictions only at stride-32 points: the assignment picks them
    pred = torch.zeros(points.shape[0], 4)
    far = torch.tensor([1000.0, 1000.0, 1001.0, 1001.0])
    pred[:] = far
    for g in range(2):
        near = (strides == 32) & (points[:, 0] >= gt[g, 0]) & (points[:, 0] <= gt[g, 2]) & \
               (points[:, 1] >= gt[g, 1]) & (points[:, 1] <= gt[g, 3])
        pred[near] = gt[g]
    idx, iou = assign(points, strides, gt, pred, torch.full((points.shape[0],), 0.5))
    for g in range(2):
        sel = idx == g
        assert sel.any()
        assert set(strides[sel].tolist()) == {32.0}
        p = points[sel]
        assert ((p[:, 0] >= gt[g, 0]) & (p[:, 0] <= gt[g, 2]) & (p[:, 1] >= gt[g, 1]) & (p[:, 1] <= gt[g, 3])).all()
        assert torch.allclose(iou[sel], torch.ones(int(sel.sum())))
    # no GT: everything is background
    idx, _ = assign(points, strides, torch.zeros(0, 4), pred)
    assert (idx < 0).all()


def test_tiny_box_still_gets_a_point():
    points, strides = grid_points(H, W)
    idx, _ = assign(points, strides, torch.tensor([[33.0, 33.0, 38.0, 38.0]]))  # holds no grid point
    assert int((idx >= 0).sum()) == 1 and strides[idx >= 0].item() == 8.0


def test_loss_lower_for_perfect_than_shifted_prediction():
    points, strides = grid_points(H, W)
    gt = torch.tensor([[30.0, 34.0, 94.0, 98.0]])
    perfect = gt.expand(points.shape[0], 4).clone()
    shifted = perfect + torch.tensor([12.0, -10.0, 12.0, -10.0])
    # objectness on exactly at the points the perfect prediction gets assigned
    idx, _ = assign(points, strides, gt, perfect, torch.full((points.shape[0],), 0.9))
    obj = torch.where(idx >= 0, torch.tensor(0.95), torch.tensor(0.02))
    cls = torch.full((points.shape[0],), 0.9)
    lp, parts_p = detection_loss(_outputs_for(perfect, obj, cls), [gt])
    ls, parts_s = detection_loss(_outputs_for(shifted, obj, cls), [gt])
    assert float(lp) < float(ls)
    assert parts_p["box"] < 1e-3 < parts_s["box"]
    # objectness off on the face costs more than on
    lo, _ = detection_loss(_outputs_for(perfect, torch.full_like(obj, 0.02), cls), [gt])
    assert float(lo) > float(lp)


def test_loss_gradients_and_ignore_regions():
    points, strides = grid_points(H, W)
    obj = torch.full((points.shape[0],), 0.5)
    cls = torch.full((points.shape[0],), 0.5)
    boxes = torch.tensor([[0.0, 0.0, 20.0, 20.0]]).expand(points.shape[0], 4).clone()
    out = _outputs_for(boxes, obj, cls)
    for k, v in out.items():
        if k != "_hw":
            v.requires_grad_(True)
    gt = torch.tensor([[30.0, 34.0, 94.0, 98.0]])
    loss, parts = detection_loss(out, [gt])
    loss.backward()
    assert parts["pos"] > 0 and out["bbox_16"].grad.abs().sum() > 0
    # a whole-image ignore box removes the objectness loss of every background point
    l_all, p_all = detection_loss(out, [torch.zeros(0, 4)])
    l_ign, p_ign = detection_loss(out, [torch.zeros(0, 4)], [torch.tensor([[0.0, 0.0, 128.0, 128.0]])])
    assert p_all["obj"] > 0 and p_ign["obj"] == 0


def test_box_iou_and_giou():
    a = torch.tensor([0.0, 0.0, 10.0, 10.0])
    assert float(box_iou(a, a)) == pytest.approx(1.0)
    b = torch.tensor([20.0, 0.0, 30.0, 10.0])
    assert float(box_iou(a, b)) == 0.0 and float(box_iou(a, b, giou=True)) < 0


def test_onnx_graph_roundtrip(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from kiosk.train.onnx_graph import OnnxModule, write_onnx

    w = np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Resize", ["r", "roi", "scales"], ["u"], mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
         helper.make_node("Transpose", ["u"], ["t"], perm=[0, 2, 3, 1]),
         helper.make_node("Shape", ["u"], ["s"]),
         helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
         helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
         helper.make_node("Concat", ["n1", "m1", "four"], ["shape"], axis=0),
         helper.make_node("Reshape", ["t", "shape"], ["y"]),
         helper.make_node("Sigmoid", ["y"], ["out"])],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "d", 4])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(4, np.float32), "b"),
         numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
         numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
         numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([-1]), "m1"),
         numpy_helper.from_array(np.array([4]), "four")])
    src = str(tmp_path / "m.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), src)
    mod = OnnxModule(src)
    x = np.random.default_rng(1).normal(size=(2, 3, 16, 12)).astype(np.float32)
    ref = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = mod(torch.from_numpy(x))["out"].detach().numpy()
    assert np.abs(ref - got).max() < 1e-5
    with torch.no_grad():
        mod.param_by_onnx_name("b").add_(1.0)
    dst = str(tmp_path / "m13.onnx")
    write_onnx(mod, dst, 13)
    m13 = onnx.load(dst)
    assert m13.opset_import[0].version == 13
    ref2 = ort.InferenceSession(dst, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got2 = mod(torch.from_numpy(x))["out"].detach().numpy()
    assert np.abs(ref2 - got2).max() < 1e-5 and np.abs(ref2 - ref).max() > 1e-3


def test_a_classifier_trained_at_another_input_size_is_run_at_that_size(tmp_path) -> None:
    from kiosk.train.mask_classifier import CropSet, build_model, export_onnx, make_batch
    from kiosk.vision.mask import MaskClassifier

    cs = CropSet()
    cs.images.append(np.full((120, 160, 3), 128, np.uint8))
    cs.add(0, np.array([40, 20, 100, 100], np.float32), 0, "gt")
    assert make_batch(cs, np.array([0]), None, 96).shape == (1, 3, 96, 96)
    path = str(tmp_path / "mask_96.onnx")
    export_onnx(build_model().eval(), path, 96)
    clf = MaskClassifier(path)
    assert clf.size == 96
    probs = clf.classify_boxes(cs.images[0], np.array([[40, 20, 100, 100]], np.float32))
    assert probs.shape == (1, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)


def test_the_face_detectors_pretrained_backbone_as_a_mask_classifier(tmp_path) -> None:
    import onnx
    from onnx import numpy_helper

    from kiosk.train.mask_classifier import MEAN, STD, export_onnx, yunet_classifier
    from kiosk.vision.mask import MaskClassifier

    face = os.path.join(os.path.dirname(__file__), "..", "engines", "face_detector.onnx")
    model = yunet_classifier(face).eval()
    graph = onnx.load(face).graph
    first = numpy_helper.to_array(next(t for t in graph.initializer if t.name == graph.node[0].input[1]))
    assert np.array_equal(model.body.param_by_onnx_name(graph.node[0].input[1]).detach().numpy(), first)  # pretrained
    neck = model.body(torch.rand(2, 3, 64, 64) * 255.0)  # the three outputs the detection heads read
    assert sorted(tuple(v.shape) for v in neck.values()) == [(2, 64, 2, 2), (2, 64, 4, 4), (2, 64, 8, 8)]
    assert model((torch.rand(2, 3, 64, 64) - MEAN) / STD).shape == (2, 3)
    path = str(tmp_path / "mask_yunet.onnx")
    export_onnx(model, path, 64)
    clf = MaskClassifier(path)
    frame = np.full((120, 160, 3), 90, np.uint8)
    probs = clf.classify_boxes(frame, np.array([[40, 20, 100, 100]], np.float32))
    assert probs.shape == (1, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)


AIZOO = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "peers", "aizoo", "face_mask_detection.caffemodel")


@pytest.mark.skipif(not os.path.isfile(AIZOO), reason="the AIZOO peer is not in ../shared/peers")
def test_the_aizoo_peers_trunk_as_a_mask_classifier(tmp_path) -> None:
    from kiosk.train.mask_classifier import MEAN, STD, aizoo_classifier, export_onnx
    from kiosk.train.peers import CaffeSSD
    from kiosk.vision.mask import MaskClassifier

    model = aizoo_classifier(AIZOO).eval()
    x = np.random.RandomState(0).rand(1, 3, 260, 260).astype(np.float32)  # what the peer reads: RGB / 255
    ref = CaffeSSD(AIZOO.replace(".caffemodel", ".prototxt"), AIZOO).forward(x)["cls_2_insert_conv2d"]
    got = model.body(torch.from_numpy(x)).detach().numpy()  # the pretrained trunk, exactly the peer's
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-4
    assert model((torch.rand(2, 3, 64, 64) - MEAN) / STD).shape == (2, 3)
    path = str(tmp_path / "mask_aizoo.onnx")
    export_onnx(model, path, 64)
    probs = MaskClassifier(path).classify_boxes(np.full((120, 160, 3), 90, np.uint8), np.array([[40, 20, 100, 100]], np.float32))
    assert probs.shape == (1, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)


def test_the_shipped_opset_13_detector_runs_as_a_torch_module_for_further_fine_tuning() -> None:
    import onnxruntime as ort

    from kiosk.train.onnx_graph import OnnxModule

    path = os.path.join(os.path.dirname(__file__), "..", "engines", "face_detector.onnx")  # Unsqueeze axes as an input
    x = np.random.RandomState(0).rand(1, 3, 96, 128).astype(np.float32) * 255
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": x})))
    got = OnnxModule(path).eval()(torch.from_numpy(x))
    assert max(float(np.abs(got[n].detach().numpy() - r).max()) for n, r in ref.items()) < 1e-3
