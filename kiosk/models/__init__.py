"""Third-party model files: catalogue (URL + sha256 + license), install, verify."""

from __future__ import annotations

from kiosk.models.catalog import (
    CATALOG,
    DEFAULT_FACE_MODEL,
    ModelEntry,
    ModelInstallError,
    ModelNotInstalled,
    fetch,
    list_models,
    model_path,
    verify,
)

__all__ = [
    "CATALOG",
    "DEFAULT_FACE_MODEL",
    "ModelEntry",
    "ModelInstallError",
    "ModelNotInstalled",
    "fetch",
    "list_models",
    "model_path",
    "verify",
]
