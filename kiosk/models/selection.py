"""Which face detector and mask classifier files the kiosk runs, and the box correction that goes
with the face detector (``vision.face_model`` / ``vision.mask_model``).

``vision.face_model`` is either a catalogue name (``yunet_n_dynamic``: a third-party file installed
into the data home by ``dabai-kiosk models fetch``) or a file path (``engines/face_detector.onnx``;
relative paths are resolved against the repository). The box correction of a face model is stated
next to the file, in a JSON sidecar of the same name (``engines/face_detector.json``:
``{"box_correction": "identity"}``, see :func:`kiosk.vision.faces.box_correction_for`); a model
without one — the catalogue's YuNet files — gets the learned correction fitted for YuNet.

``vision.mask_model`` is a file path; empty means the classifier named by the face model's sidecar
(``"mask_model"``, relative to the sidecar's folder), else ``engines/mask_classifier.onnx``.
The classifier and the face model are a pair: the classifier is trained on crops of that detector's
(corrected) boxes (``engines/MODEL_CARD.md``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

REPO = Path(__file__).resolve().parents[2]
MODEL_SUFFIXES = (".onnx", ".engine", ".plan", ".trt")


def repo_root() -> Path:
    return REPO


def is_catalogue_name(value: str) -> bool:
    from kiosk.models.catalog import CATALOG

    return value in CATALOG


def resolve_path(value: "Union[str, os.PathLike]", base: Optional[Path] = None) -> Path:
    """``~`` expanded; a relative path is taken relative to ``base`` (default: the repository)."""
    p = Path(os.path.expanduser(str(value)))
    if not p.is_absolute():
        p = (base or REPO) / p
    return p


def face_model_file(value: str, models_dir: "Union[str, os.PathLike]") -> str:
    """The file of ``vision.face_model``: a catalogue name -> its installed file in ``models_dir``
    (raises :class:`kiosk.models.catalog.ModelNotInstalled`), anything else -> a file path
    (raises :class:`kiosk.inference.ModelError` when there is no such file)."""
    from kiosk.models.catalog import DEFAULT_FACE_MODEL, model_path

    value = (value or "").strip() or DEFAULT_FACE_MODEL
    if is_catalogue_name(value):
        return model_path(value, str(models_dir))
    p = resolve_path(value)
    if not p.is_file():
        from kiosk.inference import ModelError
        from kiosk.models.catalog import CATALOG

        raise ModelError(str(p), "no such file (vision.face_model is a catalogue name — {} — or a model file path; "
                                 "relative paths are resolved against {})".format(", ".join(sorted(CATALOG)), REPO))
    return str(p)


def engines_dir() -> Path:
    """``$DABAI_ENGINES`` or the repository's ``engines/`` folder (the project's own model files)."""
    env = os.environ.get("DABAI_ENGINES")
    return Path(env) if env else REPO / "engines"


def default_mask_model() -> str:
    """``engines/mask_classifier.onnx``: the classifier trained on crops of YuNet's corrected boxes."""
    return str(engines_dir() / "mask_classifier.onnx")


def mask_model_file(value: str, face_file: Optional[str] = None) -> str:
    """The file of ``vision.mask_model``: a path (relative to the repository), or empty -> the
    classifier the face model's sidecar names, else :func:`default_mask_model`."""
    value = (value or "").strip()
    if value:
        return str(resolve_path(value))
    if face_file:
        from kiosk.vision.faces import read_sidecar

        named = read_sidecar(face_file).get("mask_model")
        if named:
            return str(resolve_path(str(named), Path(face_file).resolve().parent))
    return default_mask_model()


def detector_files(face_model: str, mask_model: str, models_dir: "Union[str, os.PathLike]"
                   ) -> Tuple[str, str, Union[str, Tuple[float, ...]]]:
    """(face file, mask classifier file, box correction) for ``vision.face_model`` / ``vision.mask_model``."""
    from kiosk.vision.faces import box_correction_for

    face = face_model_file(face_model, models_dir)
    return face, mask_model_file(mask_model, face), box_correction_for(face)
