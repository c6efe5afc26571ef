from __future__ import annotations

import os
import shutil
import subprocess
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


@pytest.fixture
def run_home(tmp_path):
    """A data home for the real ``dabai-kiosk run`` process that starts fast: a still image looped as the camera,
    no face model, no voice, no microphone, a community key."""
    import cv2
    import numpy as np

    from kiosk.config import Config, Home, replace, save_config
    from kiosk.store.passes import create_keys

    home = Home(tmp_path / "home")
    home.root.mkdir(parents=True)
    image = tmp_path / "lobby.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 90, np.uint8))
    config = replace(Config(), "speech", tts="none")
    config = replace(config, "listen", enabled=False)
    config = replace(config, "vision", face_model=str(tmp_path / "missing.onnx"))  # fast: no models
    config = replace(config, "camera", source=str(image), loop=True)  # a camera that never ends
    save_config(config, home.config)
    create_keys(home.private_key, home.public_key)
    return home


def _silero_installed() -> bool:
    from kiosk.audio.vad import VadModelMissing, silero_model_path

    try:
        silero_model_path()
    except VadModelMissing:
        return False
    return True


# What the machine has, asked once for every test file that needs it.
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
HAVE_SILERO = _silero_installed()
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed (apt-get install espeak-ng)")
needs_silero = pytest.mark.skipif(not HAVE_SILERO, reason="silero-vad not installed (pip install --no-deps silero-vad)")


@pytest.fixture
def xvfb_env():
    """The environment of a program drawing on a real X server (Xvfb at 1024x600, the kiosk's panel) through
    Qt's xcb plugin, not offscreen; skips where Xvfb is not installed (the bootstrap installs it)."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (the bootstrap installs it with the dev extras)")
    # -displayfd: Xvfb picks a free display itself and writes its number once it accepts clients (no guessed
    # number that another server may hold, no socket file taken for readiness).
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x600x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,))
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as ready:
            number = ready.readline().decode().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        env = dict(os.environ, DISPLAY=":{}".format(number), QT_QPA_PLATFORM="xcb")
        env.pop("XAUTHORITY", None)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def fast_pin_hash(monkeypatch):
    """A cheap scrypt for speed; the parameters are stored with each hash, so checking uses them too."""
    from kiosk.ui.operator import pinstore

    monkeypatch.setattr(pinstore, "_SCRYPT", dict(pinstore._SCRYPT, n=2 ** 10))
    monkeypatch.setattr(pinstore, "_PBKDF2", dict(pinstore._PBKDF2, iterations=1000))


@pytest.fixture
def operator_screens(qtbot, home):
    """Make operator screens on the test's home at the kiosk panel's 1024x600 (``show=True`` to show them; the
    rest goes to OperatorScreen); each is closed (threads stopped, database closed) at the end."""
    from kiosk.ui.operator import OperatorScreen

    made = []

    def make(status=lambda: {}, show=False, **kwargs):
        screen = OperatorScreen(home, status, **kwargs)
        qtbot.addWidget(screen)
        screen.resize(1024, 600)
        if show:
            screen.show()
        made.append(screen)
        return screen

    yield make
    for screen in made:
        screen.close_screen()
