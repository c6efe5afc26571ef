"""``dabai-kiosk run`` without a window: the configured camera, voice and gate, decisions on stdout.

The Qt app (a later issue) wraps the same parts; this is also what systemd can run on a
kiosk without a screen.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, Callable, Optional

from kiosk.config import Config, ConfigError, Home, load_config
from kiosk.gate.startup import close_on_exit, open_gate_first
from kiosk.runtime import exitcodes
from kiosk.runtime.assemble import assemble
from kiosk.runtime.kiosk import Kiosk, timeline_echo
from kiosk.runtime.watchdog import stop_supervision, supervise
from kiosk.vision.capture import Capture
from kiosk.vision.sources import open_source
from kiosk.vision.worker import VisionWorker


def start_listening(config: Config, home: Home, post: Callable[..., None], speaker: Any,
                    say: Callable[[str], None]) -> Optional[Any]:
    """The microphone loop, if the config wants it and a recognizer, the VAD and an input exist.
    Otherwise says once why there is no voice input and returns None: the kiosk runs on without it."""
    listen = config.listen
    if not listen.enabled:
        say("voice input off (listen.enabled = false)")
        return None
    from kiosk.audio.sources import AudioFileError, AudioInputUnavailable, open_audio_source
    from kiosk.audio.vad import VadModelMissing, create_vad, describe_vad
    from kiosk.speech.intent import parse_phrases
    from kiosk.speech.listen import HalfDuplex, MicLoop, SpeechPipeline, matcher_from_config, segmenter_settings
    from kiosk.speech.recognizers import RecognizerUnavailable, create_recognizer

    keywords = parse_phrases(listen.enter_phrases) + parse_phrases(listen.help_phrases)
    try:
        recognizer = create_recognizer(listen.recognizer, listen.model, home.models, keywords, threads=listen.threads,
                                       work_dir=str(home.cache))
    except RecognizerUnavailable as exc:
        say("no voice input: {} (the kiosk runs without it)".format(exc))
        return None
    try:
        vad = create_vad(listen.vad, listen.vad_model)  # Silero, or the energy fallback (logged as such)
        source = open_audio_source(listen.source)
    except (VadModelMissing, AudioInputUnavailable, AudioFileError, ValueError) as exc:
        recognizer.close()
        say("no voice input: {} (the kiosk runs without it)".format(exc))
        return None
    half = HalfDuplex(lambda: bool(getattr(speaker, "is_speaking", False)), listen.echo_tail_ms / 1000.0)
    pipeline = SpeechPipeline(vad, recognizer, matcher_from_config(listen), segmenter_settings(listen), half,
                              early_intent=listen.early_intent)
    loop = MicLoop(source, pipeline, post, on_status=say)
    say("listening on {} ({}; {})".format(source.name, recognizer.name, describe_vad(vad)))
    loop.start()
    return loop


def _print_line(line: str) -> None:
    print(line, flush=True)


def _start_fleet(home: Home, config: Config, parts: Any, kiosk: Kiosk) -> Optional[Callable[[], None]]:
    """In a community of gates: the log goes to the office, its lists come in; its policy is in force on the next
    event. None when the kiosk is on its own (or its bundle is unusable: said on stderr)."""
    from kiosk.fleet.broker import FleetError
    from kiosk.fleet.link import start_link

    def applied(name: str, version: int) -> None:
        if name == "policy":
            try:
                kiosk.config = load_config(home.config)
            except ConfigError as exc:
                print("problem: the office's policy cannot be read back: {}".format(exc), file=sys.stderr, flush=True)
            else:
                print("{}  fleet    the office's policy version {} is in force".format(
                    time.strftime("%H:%M:%S"), version), file=sys.stderr, flush=True)

    try:
        return start_link(home, config.fleet, parts.store.access_log, parts.store.db, applied)
    except FleetError as exc:
        print("problem: fleet: {}".format(exc), file=sys.stderr, flush=True)
        return None


def run_headless(home: Home, duration: float = 0.0, display: Optional[Any] = None) -> int:
    """Runs until SIGINT/SIGTERM, ``duration`` seconds, the end of a file source, or (with ``display``, a
    :class:`kiosk.runtime.display.DisplayWatch`) until a window can open: then it exits 0 for systemd to
    start the kiosk again, into the window. Under systemd it says READY=1 once running and feeds the
    watchdog while the capture, vision and decider threads are alive (:mod:`kiosk.runtime.watchdog`)."""
    gate = open_gate_first(home)  # before anything else can fail: the relay driven closed, and closed at every exit
    close_on_exit(gate.driver)
    for note in gate.notes:
        print("warning: {}".format(note), file=sys.stderr, flush=True)
    try:
        config = load_config(home.config)
        parts = assemble(home, config, gate=gate.driver)
    except BaseException:
        gate.driver.close()
        raise
    for problem in gate.problems + parts.problems:
        print("problem: {}".format(problem), file=sys.stderr, flush=True)
    kiosk = Kiosk(config, parts.gate, parts.speaker, parts.store.access_log)
    kiosk.note_listeners.append(timeline_echo(_print_line))
    cam = config.camera

    def on_status(status: str) -> None:
        print("{}  camera   {}".format(time.strftime("%H:%M:%S"), status), file=sys.stderr, flush=True)

    capture = Capture(
        lambda: open_source(cam.source, cam.width, cam.height, cam.fps, cam.loop, flip=cam.flip), on_status=on_status
    )
    def vision_status(status: str) -> None:
        print("{}  vision   {}".format(time.strftime("%H:%M:%S"), status), file=sys.stderr, flush=True)

    worker = VisionWorker(capture, parts.detector, parts.qr_reader, parts.check_pass, kiosk.post,
                          on_status=vision_status)
    home.cache.mkdir(parents=True, exist_ok=True)

    def voice_status(text: str) -> None:
        print("{}  voice    {}".format(time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    kiosk.start()
    stop_link = _start_fleet(home, config, parts, kiosk)
    capture.start()
    worker.start()
    mic = start_listening(config, home, kiosk.post, parts.speaker, voice_status)
    print("kiosk running (camera {}, gate {}); Ctrl-C to stop".format(cam.source, parts.gate.name), flush=True)
    watchdog = supervise({"decider": lambda: kiosk.heartbeat, "capture": lambda: capture.heartbeat,
                          "vision": lambda: worker.heartbeat},
                         "running headless (camera {}, gate {})".format(cam.source, parts.gate.name))
    leaving = "stopping"
    try:
        deadline = time.monotonic() + duration if duration > 0 else None
        while not stop.wait(0.5):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if capture.ended and not worker.is_alive():  # a file source played to its end
                kiosk.drain()
                break
            if display is not None and display.reachable():
                leaving = "a window can open now: stopping for systemd to restart the kiosk into it"
                print("dabai-kiosk: " + leaving, file=sys.stderr, flush=True)
                break
    finally:
        stop_supervision(watchdog, leaving)
        if stop_link is not None:
            stop_link()
        if mic is not None:
            mic.stop()
        worker.stop()
        capture.stop()
        worker.join(timeout=5)
        kiosk.stop()
        saved = parts.close()
    if parts.gate.state == "fault":  # the last close failed (retried): the supervisor's `gate close` tries again
        print("dabai-kiosk: {}".format(parts.gate.fault), file=sys.stderr)
        return exitcodes.GATE
    if not saved:  # printed on stderr by Store.close: the journal holds what the disk could not
        print("dabai-kiosk: access-log records could not be written to disk; they are on stderr", file=sys.stderr)
        return exitcodes.UNSAVED
    return exitcodes.OK
