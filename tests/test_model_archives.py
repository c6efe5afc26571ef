"""Catalogue entries that are tar archives (sherpa-onnx model releases): sha256 first, then a
member-by-member unpack into one folder under the models folder, swapped in whole."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Dict, Optional

import pytest

from kiosk.cli.models import cmd_models_fetch, cmd_models_verify
from kiosk.models import catalog
from kiosk.models.catalog import ModelEntry, ModelInstallError, fetch, list_models, model_path, sha256_file, verify

FOLDER = "sherpa-onnx-tiny-2026-11-28"


def make_archive(path: Path, files: Dict[str, bytes], link: Optional[str] = None) -> Path:
    with tarfile.open(str(path), "w:bz2") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(FOLDER + "/escape")
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tf.addfile(info)
    return path


def register(monkeypatch, archive: Path, name: str = "tiny_archive") -> ModelEntry:
    e = ModelEntry(name, archive.name, "https://example.invalid/" + archive.name, sha256_file(str(archive)),
                   "Apache-2.0", "a test archive", size=archive.stat().st_size, unpack_to="asr", folder=FOLDER)
    monkeypatch.setitem(catalog.CATALOG, name, e)
    return e


GOOD = {FOLDER + "/tokens.txt": b"a 0\nb 1\n", FOLDER + "/model.int8.onnx": b"onnx bytes",
        FOLDER + "/test_wavs/0.wav": b"RIFF"}


def test_an_archive_installs_as_its_folder_and_only_once(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "downloads"
    src.mkdir()
    e = register(monkeypatch, make_archive(src / "sherpa-onnx-tiny-2026-11-28.tar.bz2", GOOD))
    models = tmp_path / "models"
    assert verify(str(models))[e.name] == "missing"
    got = fetch([e.name], str(models), str(src))[e.name]
    assert got == str(models / "asr" / FOLDER) == model_path(e.name, str(models))
    assert sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()) == [
        "asr/{}/.dabai-sha256".format(FOLDER), "asr/{}/model.int8.onnx".format(FOLDER),
        "asr/{}/test_wavs/0.wav".format(FOLDER), "asr/{}/tokens.txt".format(FOLDER)]  # no archive, no temp files
    assert (models / "asr" / FOLDER / "tokens.txt").read_bytes() == b"a 0\nb 1\n"
    assert verify(str(models))[e.name] == "ok" and cmd_models_verify(str(models), required=None) == 0
    assert [r["installed"] for r in list_models(str(models)) if r["name"] == e.name] == [True]
    # already installed: nothing is read again (the source may be gone)
    (src / "sherpa-onnx-tiny-2026-11-28.tar.bz2").unlink()
    assert fetch([e.name], str(models), str(src))[e.name] == got
    # a marker from another archive is reported, and a fetch replaces the folder whole
    (models / "asr" / FOLDER / ".dabai-sha256").write_text("0" * 64 + "\n")
    (models / "asr" / FOLDER / "stale.onnx").write_bytes(b"old")
    assert verify(str(models))[e.name].startswith("corrupt") and cmd_models_verify(str(models), required=None) == 1
    make_archive(src / "sherpa-onnx-tiny-2026-11-28.tar.bz2", GOOD)
    fetch([e.name], str(models), str(src))
    assert not (models / "asr" / FOLDER / "stale.onnx").exists() and verify(str(models))[e.name] == "ok"


@pytest.mark.parametrize("files, link, why", [
    ({FOLDER + "/../../evil.txt": b"x"}, None, "outside"),
    ({"/etc/evil.txt": b"x"}, None, "outside"),
    ({"other-folder/tokens.txt": b"x"}, None, "outside"),
    (GOOD, "/etc/passwd", "a link"),
])
def test_an_archive_reaching_outside_its_folder_installs_nothing(tmp_path: Path, monkeypatch, files, link, why) -> None:
    src = tmp_path / "downloads"
    src.mkdir()
    e = register(monkeypatch, make_archive(src / "bad.tar.bz2", files, link))
    models = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="refusing the archive, member .* is {}".format(why)):
        fetch([e.name], str(models), str(src))
    assert [p for p in models.rglob("*") if p.is_file()] == [] and not (tmp_path / "evil.txt").exists()
    assert verify(str(models))[e.name] == "missing"


def test_a_tampered_or_garbage_archive_is_rejected(tmp_path: Path, monkeypatch, capsys) -> None:
    src = tmp_path / "downloads"
    src.mkdir()
    archive = make_archive(src / "sherpa-onnx-tiny-2026-11-28.tar.bz2", GOOD)
    e = register(monkeypatch, archive)
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    models = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="sha256 mismatch"):
        fetch([e.name], str(models), str(src))
    garbage = src / "garbage.tar.bz2"
    garbage.write_bytes(b"this is not a tar archive")
    g = register(monkeypatch, garbage, "garbage")
    with pytest.raises(ModelInstallError, match="not a readable tar archive"):
        fetch([g.name], str(models), str(src))
    assert [p for p in models.rglob("*") if p.is_file()] == []
    assert cmd_models_fetch([e.name], str(src), str(models)) == 1 and "sha256 mismatch" in capsys.readouterr().err


def test_the_sherpa_archives_are_pinned() -> None:
    for name in ("sherpa_kws_zh", "sherpa_sense_voice"):
        e = catalog.entry(name)
        assert e.url.startswith("https://github.com/k2-fsa/sherpa-onnx/releases/download/") and e.url.endswith(e.file_name)
        assert len(e.sha256) == 64 and int(e.sha256, 16) and e.size and e.size > 1_000_000
        assert e.unpack_to == "asr" and e.file_name == e.folder + ".tar.bz2"
        assert os.path.join("asr", e.folder) == e.installs_as
