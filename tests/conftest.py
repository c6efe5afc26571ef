from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DABAI_SHARED", str(REPO.parent / "shared")))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh data home, selected the way systemd and the tests select it: $DABAI_HOME."""
    from kiosk.config import resolve_home

    monkeypatch.setenv("DABAI_HOME", str(tmp_path / "home"))
    return resolve_home()
