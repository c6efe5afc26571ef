"""``espeak``: espeak-ng speaking pinyin (voice ``cmn-latn-pinyin``). Mandarin text is converted by
:mod:`kiosk.speech.pinyin` first, because espeak-ng reads characters wrongly. The program is looked up
when a voice is made."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import List, Optional

import numpy as np

from ..pinyin import to_pinyin
from .base import Audio, SynthesisError, Voice, VoiceUnavailable

__all__ = ["PINYIN_RULES_VERSION", "EspeakVoice"]

#: Bumped whenever the text → pinyin rules change, so cached audio is not reused across them.
PINYIN_RULES_VERSION = 1


def _find_program(binary: str) -> Optional[str]:
    if os.sep in binary or (os.altsep and os.altsep in binary):
        return binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None
    return shutil.which(binary)


class EspeakVoice(Voice):
    """espeak-ng reading tone-numbered pinyin with its ``cmn-latn-pinyin`` voice.

    ``speed`` is in espeak words (= syllables here) per minute, ``pitch`` 0–99, ``amplitude``
    0–200, ``word_gap`` extra pause between syllables in units of 10 ms. The program is looked up
    at construction; a missing program or voice raises :class:`VoiceUnavailable`.
    """

    INSTALL_HINT = "apt-get install espeak-ng"

    def __init__(
        self,
        binary: str = "espeak-ng",
        voice: str = "cmn-latn-pinyin",
        speed: int = 165,
        pitch: int = 50,
        amplitude: int = 100,
        word_gap: int = 0,
        sandhi: bool = True,
        timeout_s: float = 15.0,
        check_voice: bool = True,
    ) -> None:
        path = _find_program(binary)
        if path is None:
            raise VoiceUnavailable(
                f"espeak-ng not found: {self.INSTALL_HINT} (looked for {binary!r})")
        if not (80 <= speed <= 450):
            raise ValueError(f"espeak-ng speed must be 80..450 words per minute, got {speed!r}")
        if not (0 <= pitch <= 99):
            raise ValueError(f"espeak-ng pitch must be 0..99, got {pitch!r}")
        if not (0 <= amplitude <= 200):
            raise ValueError(f"espeak-ng amplitude must be 0..200, got {amplitude!r}")
        self.binary = path
        self.voice = voice
        self.speed = int(speed)
        self.pitch = int(pitch)
        self.amplitude = int(amplitude)
        self.word_gap = int(word_gap)
        self.sandhi = bool(sandhi)
        self.timeout_s = float(timeout_s)
        self.name = f"espeak-ng:{voice}"
        if check_voice:
            self._check_voice()

    def _check_voice(self) -> None:
        try:
            res = subprocess.run([self.binary, "--voices"], capture_output=True,
                                 timeout=self.timeout_s, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise VoiceUnavailable(f"espeak-ng at {self.binary} cannot run ({exc}): {self.INSTALL_HINT}") from exc
        names = set()
        for line in res.stdout.decode("utf-8", "replace").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 2:
                names.add(cols[1].lower())
        if self.voice.lower() not in names:
            raise VoiceUnavailable(
                f"espeak-ng at {self.binary} has no voice {self.voice!r} (espeak-ng >= 1.51 ships cmn-latn-pinyin; "
                "on older systems install a newer espeak-ng)")

    @property
    def params(self) -> str:
        return (f"s{self.speed} p{self.pitch} a{self.amplitude} g{self.word_gap} "
                f"sandhi{int(self.sandhi)} rules{PINYIN_RULES_VERSION}")

    def to_pinyin(self, text: str) -> str:
        """The exact string espeak-ng is given for ``text``."""
        return to_pinyin(text, sandhi=self.sandhi)

    def command(self) -> List[str]:
        return [self.binary, "-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch),
                "-a", str(self.amplitude), "-g", str(self.word_gap), "--stdout", "--stdin"]

    def synthesize(self, text: str) -> Audio:
        spoken = self.to_pinyin(text)
        if not spoken.strip():
            return Audio(np.zeros(0, dtype=np.int16), 22050)
        try:
            res = subprocess.run(self.command(), input=(spoken + "\n").encode("utf-8"),
                                 capture_output=True, timeout=self.timeout_s, check=False)
        except FileNotFoundError as exc:
            raise VoiceUnavailable(f"espeak-ng not found: {self.INSTALL_HINT} (looked for {self.binary!r})") from exc
        except subprocess.TimeoutExpired as exc:
            raise SynthesisError(f"espeak-ng took longer than {self.timeout_s:.0f} s for {text!r}") from exc
        except OSError as exc:
            raise VoiceUnavailable(f"espeak-ng at {self.binary} cannot run: {exc}") from exc
        if res.returncode != 0:
            err = res.stderr.decode("utf-8", "replace").strip()
            raise SynthesisError(f"espeak-ng failed (exit {res.returncode}) for {text!r}: {err}")
        try:
            return Audio.from_wav_bytes(res.stdout)
        except ValueError as exc:
            raise SynthesisError(f"espeak-ng gave no valid WAV for {text!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"EspeakVoice({self.voice!r}, {self.params})"
