"""``dabai-kiosk doctor``: what is wrong with this kiosk and how to fix it, one line per part."""

from __future__ import annotations

import shutil
import time
from typing import List, Optional, Tuple

from kiosk.config import Config, ConfigError, Home, load_config

Check = Tuple[str, bool, str]  # part, ok, what we found or how to fix it
MIN_FREE_MB = 200


def _config(home: Home) -> Tuple[Check, Optional[Config]]:
    try:
        config = load_config(home.config)
    except ConfigError as exc:
        return ("config", False, "; ".join(exc.problems)), None
    where = str(home.config) if home.config.exists() else "defaults (no config file yet)"
    return ("config", True, where), config


def _keys(home: Home) -> Check:
    from kiosk.store.passes import KeyFileError, load_public_key

    try:
        load_public_key(home.public_key)
    except KeyFileError as exc:
        return "community key", False, str(exc)
    return "community key", True, str(home.public_key)


def _operator_pin(home: Home) -> Check:
    from kiosk.ui.operator.pinstore import PinStore

    store = PinStore.in_home(home)
    if not store.is_set():
        return "operator PIN", False, "not set — run dabai-kiosk operator set-pin"
    status = store.status()
    if status.error:
        return "operator PIN", False, status.error
    if status.locked_until is not None:
        return "operator PIN", False, "locked until {} after too many wrong tries — dabai-kiosk operator reset-lock".format(
            time.strftime("%Y-%m-%d %H:%M", time.localtime(status.locked_until)))
    return "operator PIN", True, "set ({})".format(store.path)


def _camera(config: Config) -> Check:
    """Opens the configured camera and waits for a frame: a live camera's reads may time out for up to
    ``Capture.first_frame_grace_s`` (a CSI sensor starts in seconds). A camera that fails names those present."""
    from kiosk.vision.cameras import list_cameras
    from kiosk.vision.capture import Capture
    from kiosk.vision.sources import CameraUnavailable, open_source

    cam = config.camera
    frame = None
    try:
        source = open_source(cam.source, cam.width, cam.height, cam.fps, flip=cam.flip)
        try:
            due = time.monotonic() + Capture.first_frame_grace_s
            frame = source.read()
            while frame is None and source.live and time.monotonic() < due:
                time.sleep(0.05)
                frame = source.read()
        finally:
            source.close()
        problem = "" if frame is not None else "{} opened but gave no frame".format(cam.source)
    except CameraUnavailable as exc:
        problem = str(exc)
    if not problem:
        return "camera", True, "{}: {}x{}".format(cam.source, frame.shape[1], frame.shape[0])
    present = list_cameras()
    return "camera", False, "{}; cameras present: {}".format(
        problem, "; ".join(c.label for c in present) if present else "none found")


def _vision(config: Config, home: Home) -> Check:
    from kiosk.runtime.assemble import build_detector

    try:
        detector = build_detector(config, home)
    except Exception as exc:
        return "face + mask models", False, str(exc)
    # which backend each model actually runs on, and why (TensorRT unavailable, or failed to load it)
    runs_on = "; ".join(getattr(detector, "backend_lines", lambda: [])())
    return "face + mask models", True, "{} + mask classifier ({}){}".format(
        config.vision.face_model, config.vision.backend, ": " + runs_on if runs_on else "")


def _backends() -> Check:
    from kiosk.inference import available_backends

    found = available_backends()
    usable = [name for name, reason in found.items() if reason is None]
    detail = ", ".join(name if reason is None else "{} ({})".format(name, reason) for name, reason in found.items())
    return "inference backends", bool(usable), detail


def _voice(config: Config, home: Home) -> Check:
    from kiosk.speech import TTSError
    from kiosk.speech.voices import voice_from_config

    if config.speech.tts == "none":
        return "voice", True, "disabled (speech.tts = none)"
    try:
        voice = voice_from_config(config.speech, str(home.models))
    except (TTSError, ValueError) as exc:
        return "voice", False, str(exc)
    return "voice", True, voice.name


def _audio() -> List[Check]:
    try:
        import sounddevice as sd  # type: ignore[import-not-found]
    except (ImportError, OSError) as exc:
        reason = "sounddevice unusable ({}): pip install 'dabai-kiosk[audio]'; apt-get install libportaudio2".format(exc)
        return [("microphone", False, reason), ("speaker", False, reason)]
    checks = []
    for part, kind in (("microphone", "input"), ("speaker", "output")):
        try:
            device = sd.query_devices(kind=kind)
            checks.append((part, True, str(device["name"])))
        except Exception as exc:  # PortAudio raises plain errors for "no default device"
            checks.append((part, False, "no default {} device: {}".format(kind, exc)))
    return checks


def _gate_hardware(config: Config) -> List[Check]:
    from kiosk.gate.checks import hardware_checks

    return hardware_checks(config.gate)


def _gate(config: Config) -> List[Check]:
    """The relay driven closed and read back, the Wiegand lines, each header pin's mux, the JetPack note."""
    from kiosk.gate.checks import driven_checks, hardware_checks

    return driven_checks(config.gate) + hardware_checks(config.gate)


def _font() -> Check:
    from kiosk.fonts import cjk_font_path

    path = cjk_font_path()
    if path is None:
        return "CJK font", False, "no Chinese font: apt-get install fonts-noto-cjk (Chinese text would show as boxes)"
    return "CJK font", True, path


def _window() -> Check:
    """Whether ``dabai-kiosk run`` can open its window here (else it runs headless)."""
    from kiosk.ui import display_missing, qt_missing

    why = qt_missing() or display_missing()
    if why is None:  # a QApplication really opened, in a child process (Qt aborts one that cannot reach its display)
        from kiosk.runtime.display import prepare_session_env, probe_window

        prepare_session_env()
        why = probe_window()
    if why is not None:
        return "kiosk window", False, "{} (dabai-kiosk run falls back to headless)".format(why)
    from PyQt5.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    return "kiosk window", True, "PyQt5 {} (Qt {})".format(PYQT_VERSION_STR, QT_VERSION_STR)


def _disk(home: Home) -> Check:
    probe = home.root if home.root.exists() else home.root.parent
    while not probe.exists():
        probe = probe.parent
    free_mb = shutil.disk_usage(str(probe)).free // (1024 * 1024)
    ok = free_mb >= MIN_FREE_MB
    detail = "{} MB free at {}".format(free_mb, probe)
    return "disk", ok, detail if ok else detail + ": free some space (the access log spools when the disk is full)"


def _database(home: Home) -> List[Check]:
    """The database: opens, passes sqlite's quick_check, can be written; the access log is whole and not in alarm."""
    import sqlite3

    from kiosk.runtime.assemble import open_store
    from kiosk.store.chain import load_kiosk_public_key
    from kiosk.store.db import StoreError

    if not home.database.exists():
        return [("database", True, "{} will be made at the first start".format(home.database))]
    try:
        store = open_store(home, check=True)
    except StoreError as exc:
        return [("database", False, str(exc))]
    try:
        try:
            store.db.execute("CREATE TABLE IF NOT EXISTS doctor_probe (x INTEGER)")  # a write, rolled into nothing
            store.db.execute("DROP TABLE doctor_probe")
        except sqlite3.Error as exc:
            from kiosk.store.db import describe_sqlite_error

            return [("database", False, describe_sqlite_error(home.database, exc))]
        pub = home.keys / "kiosk.pub"
        verdict = store.access_log.verify(load_kiosk_public_key(pub) if pub.exists() else None)
        pending = store.access_log.pending
    finally:
        store.close()
    checks: List[Check] = [("database", True, "{}: intact and writable".format(home.database))]
    if verdict.ok:
        checks.append(("access log", True, "{} record(s), chain intact{}".format(
            verdict.records, "; {} waiting in the spool".format(pending) if pending else "")))
    else:
        checks.append(("access log", False, "{} (dabai-kiosk log verify)".format(verdict.problems[0])))
    return checks


def _fleet(home: Home, config: Config) -> Check:
    """In a community of gates: the bundle, and whether the office's broker was reached lately."""
    from kiosk.fleet.broker import OFFICE, FleetError, member_files
    from kiosk.fleet.link import bundle_of, out_of_touch, read_contact
    from kiosk.fleet.office import office_database, overview

    if office_database(home).exists():  # the office: every gate it heard of, and those silent for too long
        try:
            gates = overview(office_database(home), recent=0)
        except Exception as exc:  # sqlite: damaged, locked
            return "fleet", False, "the office's database {} cannot be read: {}".format(office_database(home), exc)
        silent = [g["kiosk"] for g in gates if g["silent_s"] is None or g["silent_s"] > config.fleet.out_of_touch_s]
        if silent:
            return "fleet", False, "office: no word for more than {:.0f} s from {} (dabai-kiosk office status)".format(
                config.fleet.out_of_touch_s, ", ".join(silent))
        return "fleet", True, "office: {} gate{}, all heard from within {:.0f} s".format(
            len(gates), "" if len(gates) == 1 else "s", config.fleet.out_of_touch_s)
    bundle = bundle_of(home, config.fleet)
    if bundle is None:
        return "fleet", True, "on its own (no fleet bundle; dabai-kiosk fleet join BUNDLE to join a community)"
    try:
        name = member_files(bundle)[0]
    except FleetError as exc:
        return "fleet", False, str(exc)
    if name == OFFICE:
        return "fleet", True, "the community's office (dabai-kiosk office run; office status shows every gate)"
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        return "fleet", False, "paho-mqtt is not installed: pip install 'dabai-kiosk[fleet]'"
    why = out_of_touch(home, config.fleet)
    if why is not None:
        return "fleet", False, "kiosk {}: {} (more than {:.0f} s allowed)".format(name, why, config.fleet.out_of_touch_s)
    last = read_contact(home).get("last_contact")
    seen = time.strftime("%H:%M:%S", time.localtime(last)) if isinstance(last, (int, float)) else "not yet"
    return "fleet", True, "kiosk {}: last contact with the office's broker {}".format(name, seen)


def diagnose(home: Home) -> List[Check]:
    config_check, config = _config(home)
    checks: List[Check] = [config_check, _keys(home), _operator_pin(home)] + _database(home)
    checks += [_disk(home), _font(), _window(), _backends()]
    if config is not None:
        from kiosk.runtime.assemble import kiosk_running

        checks.append(_fleet(home, config))

        if kiosk_running(home):
            # The running kiosk owns the camera and the relay: opening them here would find the camera busy and
            # drive (on JetPack 5 even unexport) the guardian's pin under it.
            checks += [("camera", True, "{}: in use by the running kiosk (not opened)".format(config.camera.source)),
                       _vision(config, home), _voice(config, home),
                       ("gate", True, "{} driver: held by the running kiosk (not driven; dabai-kiosk gate status while "
                        "it is stopped)".format(config.gate.driver))]
            checks += _gate_hardware(config) + _audio()
        else:
            checks += [_camera(config), _vision(config, home), _voice(config, home)] + _gate(config) + _audio()
    return checks


def run_doctor(home: Home) -> int:
    checks = diagnose(home)
    for part, ok, detail in checks:
        print("{:<5} {:<20} {}".format("ok" if ok else "FIX", part, detail))
    return 0 if all(ok for _, ok, _ in checks) else 1
