"""The prompt cache: synthesized audio kept in memory and as WAV files on disk, keyed by
sha256(voice name, params, text); fixed prompts are pre-synthesized by :meth:`PromptCache.warm`."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from typing import Iterable, Optional, Set

from .voices.base import Audio, TTSError, Voice

__all__ = ["PromptCache"]

log = logging.getLogger(__name__)


class PromptCache:
    """Synthesized prompts in memory (LRU) and, when ``directory`` is given, on disk as
    ``<sha256>.wav``. Thread-safe; ``get`` synthesizes on a miss and stores the result."""

    def __init__(self, voice: Voice, directory: Optional[str] = None, max_memory_items: int = 256,
                 max_memory_bytes: int = 8 * 1024 * 1024) -> None:
        self.voice = voice
        self.directory = directory
        self.max_memory_items = max(1, int(max_memory_items))
        # Greetings name each resident: a community's worth of them would hold tens of MB for months. Fixed
        # prompts (warmed at start) stay in memory; the rest share this budget, newest first (disk keeps all).
        self.max_memory_bytes = max(0, int(max_memory_bytes))
        self._pinned: Set[str] = set()
        self._bytes = 0
        self._mem: "OrderedDict[str, Audio]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0
        if directory:
            os.makedirs(directory, exist_ok=True)

    def key(self, text: str) -> str:
        """sha256 over voice name, voice params and the text (whitespace-trimmed)."""
        material = f"{self.voice.name}\n{self.voice.params}\n{text.strip()}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path_for(self, text: str) -> Optional[str]:
        """Where ``text``'s audio lives on disk (None without a directory)."""
        if not self.directory:
            return None
        return os.path.join(self.directory, self.key(text) + ".wav")

    def __contains__(self, text: str) -> bool:
        k = self.key(text)
        with self._lock:
            if k in self._mem:
                return True
        path = self.path_for(text)
        return bool(path and os.path.isfile(path))

    @property
    def memory_bytes(self) -> int:
        """Bytes of audio held in memory."""
        return self._bytes

    def _remember(self, k: str, audio: Audio, pin: bool = False) -> None:
        with self._lock:
            if pin:
                self._pinned.add(k)
            if k in self._mem:
                self._bytes -= self._mem[k].samples.nbytes
            self._mem[k] = audio
            self._bytes += audio.samples.nbytes
            self._mem.move_to_end(k)
            for old in [key for key in self._mem if key not in self._pinned]:  # oldest first
                if len(self._mem) <= self.max_memory_items and self._bytes <= self.max_memory_bytes:
                    break
                if old != k:
                    self._bytes -= self._mem.pop(old).samples.nbytes

    def get(self, text: str, pin: bool = False) -> Audio:
        """Audio for ``text``: memory, else disk, else synthesize (and store in both). ``pin`` keeps it in
        memory for good (the fixed prompts)."""
        k = self.key(text)
        with self._lock:
            audio = self._mem.get(k)
            if audio is not None:
                self._mem.move_to_end(k)
                if pin:
                    self._pinned.add(k)
                self.hits += 1
                return audio
        path = self.path_for(text)
        if path and os.path.isfile(path):
            try:
                audio = Audio.load(path)
            except (OSError, ValueError) as exc:
                log.warning("cached prompt %s unreadable (%s); synthesizing again", path, exc)
            else:
                with self._lock:
                    self.disk_hits += 1
                self._remember(k, audio, pin)
                return audio
        audio = self.voice.synthesize(text)
        with self._lock:
            self.misses += 1
        self._remember(k, audio, pin)
        if path:
            try:
                audio.save(path)
            except OSError as exc:  # a full or read-only disk must not stop the kiosk speaking
                log.warning("could not write prompt cache %s: %s", path, exc)
        return audio

    def warm(self, texts: Iterable[str]) -> int:
        """Pre-synthesize fixed prompts (start-up). Returns how many were loaded or made;
        a prompt that fails is logged and skipped."""
        n = 0
        for text in texts:
            try:
                self.get(text, pin=True)
                n += 1
            except TTSError as exc:
                log.error("could not prepare prompt %r: %s", text, exc)
        return n

    def clear_memory(self) -> None:
        with self._lock:
            self._mem.clear()
            self._bytes = 0
