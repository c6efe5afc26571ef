"""``dabai-kiosk run`` without a window: the configured camera, voice and gate, decisions on stdout.

The Qt app (a later issue) wraps the same parts; this is also what systemd can run on a
kiosk without a screen.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any

from kiosk.config import Home, load_config
from kiosk.runtime.assemble import assemble
from kiosk.runtime.kiosk import Kiosk
from kiosk.vision.capture import Capture
from kiosk.vision.sources import open_source
from kiosk.vision.worker import VisionWorker


def run_headless(home: Home, duration: float = 0.0) -> int:
    config = load_config(home.config)
    parts = assemble(home, config)
    for problem in parts.problems:
        print("problem: {}".format(problem), file=sys.stderr, flush=True)
    kiosk = Kiosk(config, parts.gate, parts.speaker, parts.store.access_log)
    printed = [0]

    def echo(action: Any, state: Any) -> None:
        for entry in kiosk.timeline[printed[0] :]:
            if entry.kind != "show":
                print("{}  {:<8} {}".format(time.strftime("%H:%M:%S"), entry.kind, entry.text), flush=True)
        printed[0] = len(kiosk.timeline)

    kiosk.listeners.append(echo)
    cam = config.camera

    def on_status(status: str) -> None:
        print("{}  camera   {}".format(time.strftime("%H:%M:%S"), status), file=sys.stderr, flush=True)

    capture = Capture(
        lambda: open_source(cam.source, cam.width, cam.height, cam.fps, cam.loop), on_status=on_status
    )
    worker = VisionWorker(capture, parts.detector, parts.qr_reader, parts.check_pass, kiosk.post)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    kiosk.start()
    capture.start()
    worker.start()
    print("kiosk running (camera {}, gate {}); Ctrl-C to stop".format(cam.source, parts.gate.name), flush=True)
    try:
        deadline = time.monotonic() + duration if duration > 0 else None
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if capture.ended and not worker.is_alive():  # a file source played to its end
                kiosk.drain()
                break
    finally:
        worker.stop()
        capture.stop()
        worker.join(timeout=5)
        kiosk.stop()
        parts.close()
    return 0
