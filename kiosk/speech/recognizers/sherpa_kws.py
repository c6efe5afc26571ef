"""``sherpa-kws``: a sherpa-onnx streaming zipformer keyword spotter (``sherpa_onnx.KeywordSpotter``)
with the kiosk's own keywords (the request and help phrases, spelled in the model's tokens as
``sherpa_onnx.text2token`` would). sherpa-onnx is imported only when a spotter is built."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .base import (
    RATE,
    Recognition,
    Recognizer,
    RecognizerUnavailable,
    check_online_encoder,
    check_sherpa_metadata,
    float16k,
    import_sherpa,
    pick_file,
)

__all__ = ["SherpaKeywordSpotter", "spell_keywords"]

log = logging.getLogger(__name__)


def _kws_tokens_type(tokens: Path) -> str:
    """How a keyword spotter's tokens spell Mandarin: ``ppinyin`` (initials + tonal finals, the
    wenetspeech KWS models), ``phone+ppinyin`` (the zh-en models) or ``cjkchar``."""
    syms = set(_read_tokens(tokens))
    if (tokens.parent / "en.phone").exists() or (tokens.parent / "lexicon.txt").exists():
        return "phone+ppinyin"
    if {"zh", "ch", "sh"} & syms or any(s in syms for s in ("ǎo", "ài", "ǐ")):
        return "ppinyin"
    return "cjkchar"


def _read_tokens(tokens: Path) -> List[str]:
    """The symbols of a sherpa-onnx ``tokens.txt`` (``symbol id`` a line)."""
    text = tokens.read_text(encoding="utf-8", errors="replace")
    return [line.split()[0] for line in text.splitlines() if line.split()]


def _ppinyin(text: str) -> List[str]:
    """Mandarin as partial pinyin (initial + tonal final a syllable), as ``sherpa_onnx.text2token``
    spells it for ``ppinyin`` tokens."""
    from pypinyin import pinyin
    from pypinyin.contrib.tone_convert import to_finals_tone, to_initials

    out: List[str] = []
    for syl in (x[0] for x in pinyin(text)):
        initial, final = to_initials(syl, strict=False), to_finals_tone(syl, strict=False)
        out.extend([p for p in (initial, final) if p] or [syl])
    return out


def _is_cjk(text: str) -> bool:
    return bool(text) and all("\u4e00" <= ch <= "\u9fff" for ch in text)


def spell_keywords(phrases: Sequence[str], tokens: Path, kind: str,
                   lexicon: Optional[Path] = None) -> Tuple[List[Tuple[str, List[str]]], List[str]]:
    """Each phrase in a keyword spotter's tokens: ``([(phrase, tokens), ...], [why a phrase was left out, ...])``.

    The same spelling as ``sherpa_onnx.text2token`` (``cjkchar``, ``ppinyin``, ``phone+ppinyin``), done
    here because text2token needs sentencepiece even for Mandarin and silently drops a phrase with a
    token the model lacks (shifting every later phrase onto the wrong keyword). Punctuation is not
    spoken and is left out; a phrase with a token outside ``tokens.txt`` is reported, never written
    (sherpa-onnx exit()s the process on one)."""
    import unicodedata

    table = set(_read_tokens(tokens))
    words: Dict[str, List[str]] = {}
    if kind == "phone+ppinyin" and lexicon is not None and lexicon.is_file():
        for line in lexicon.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                words.setdefault(parts[0], parts[1:])
    spelled: List[Tuple[str, List[str]]] = []
    skipped: List[str] = []
    for phrase in phrases:
        spoken = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in phrase)
        if kind == "cjkchar":
            toks = list("".join(spoken.split()))
        elif kind == "ppinyin":
            toks = _ppinyin("".join(spoken.split()))
        elif kind == "phone+ppinyin":
            toks = []
            for word in spoken.split():
                if word in words or word.upper() in words:
                    toks.extend(words.get(word) or words[word.upper()])
                elif _is_cjk(word):
                    toks.extend(_ppinyin(word))
                else:
                    toks.append(word)  # reported below as outside the tokens
        else:
            raise ValueError("unknown tokens type {!r}".format(kind))
        oov = [t for t in toks if t not in table]
        if not toks or oov:
            skipped.append("{!r}: {} not in tokens.txt".format(phrase, " ".join(dict.fromkeys(oov)) or "no tokens"))
        else:
            spelled.append((phrase, toks))
    return spelled, skipped


class SherpaKeywordSpotter(Recognizer):
    """sherpa-onnx keyword spotter (streaming zipformer transducer) with the kiosk's keywords.

    ``keywords`` are Mandarin phrases; each becomes a line ``<tokens> @<phrase>`` of a keywords
    file written next to the cache (:func:`spell_keywords` spells them in the model's tokens, as
    ``sherpa_onnx.text2token`` would). A keyword found in the utterance is returned as
    ``Recognition(text=phrase, keyword=phrase)``; a phrase the model cannot spell is left out (logged).
    """

    def __init__(self, model_dir: str, keywords: Sequence[str], threads: int = 1, score: float = 1.5,
                 threshold: float = 0.25, work_dir: Optional[str] = None) -> None:
        sherpa = import_sherpa()
        folder = Path(model_dir)
        enc = pick_file(folder, ["encoder*.onnx"], prefer=("chunk-16-left-64.int8", "int8"))
        dec = pick_file(folder, ["decoder*.onnx"], prefer=("chunk-16-left-64", ""))
        join = pick_file(folder, ["joiner*.onnx"], prefer=("chunk-16-left-64.int8", "int8"))
        tokens = folder / "tokens.txt"
        if not (enc and dec and join and tokens.is_file()):
            raise RecognizerUnavailable("{} is not a sherpa-onnx keyword-spotter folder (needs encoder*.onnx, "
                                        "decoder*.onnx, joiner*.onnx, tokens.txt)".format(folder))
        phrases = [k for k in dict.fromkeys(k.strip() for k in keywords) if k]
        if not phrases:
            raise ValueError("no keywords given")
        kind = _kws_tokens_type(tokens)
        lexicon = folder / "en.phone" if (folder / "en.phone").exists() else folder / "lexicon.txt"
        try:
            spelled, skipped = spell_keywords(phrases, tokens, kind, lexicon if kind == "phone+ppinyin" else None)
        except ImportError as exc:  # pypinyin, for ppinyin tokens
            raise RecognizerUnavailable("cannot spell the keywords in {}'s tokens ({}): {}".format(folder, kind, exc)) from exc
        if skipped:
            log.warning("sherpa-kws %s: keywords left out (%s tokens): %s", folder.name, kind, "; ".join(skipped))
        if not spelled:
            raise RecognizerUnavailable("none of the keywords can be spelled in {}'s tokens ({}): {}".format(
                folder, kind, "; ".join(skipped)))
        # one line a keyword: ``tokens @label``; the label must be one word (sherpa-onnx splits the line
        # on whitespace and exit()s on a word it cannot find), so it is the phrase without spaces
        self.labels: Dict[str, str] = {}
        lines = []
        for phrase, toks in spelled:
            label = "".join(phrase.split())
            self.labels.setdefault(label, phrase)
            lines.append("{} @{}".format(" ".join(toks), label))
        # sherpa-onnx segfaults (no model_type) or exit()s (a missing key) on an encoder or decoder
        # without its metadata: refuse such files first
        check_online_encoder(enc)
        check_sherpa_metadata(dec, "transducer-decoder")
        fd, kw_path = tempfile.mkstemp(prefix="dabai-keywords-", suffix=".txt", dir=work_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        self.keywords_file = kw_path
        self.keywords = [phrase for phrase, _ in spelled]
        try:
            self.kws = sherpa.KeywordSpotter(tokens=str(tokens), encoder=str(enc), decoder=str(dec), joiner=str(join),
                                             keywords_file=kw_path, num_threads=max(1, threads),
                                             keywords_score=score, keywords_threshold=threshold)
        except Exception as exc:
            self.close()
            raise RecognizerUnavailable("sherpa-onnx could not load the keyword spotter in {}: {}".format(folder, exc)) from exc
        self.name = "sherpa-kws:{}".format(folder.name)

    def recognize(self, samples_16k: np.ndarray) -> Recognition:
        t0 = time.perf_counter()
        x = float16k(samples_16k)
        stream = self.kws.create_stream()
        stream.accept_waveform(RATE, x)
        stream.accept_waveform(RATE, np.zeros(int(0.5 * RATE), dtype=np.float32))  # flush the streaming encoder
        stream.input_finished()
        found: List[str] = []
        while self.kws.is_ready(stream):
            self.kws.decode_stream(stream)
            hit = self.kws.get_result(stream)
            if hit:
                found.append(self.labels.get(hit, hit))
                self.kws.reset_stream(stream)
        ms = (time.perf_counter() - t0) * 1000.0
        keyword = found[0] if found else None
        return Recognition(text=keyword or "", keyword=keyword, confidence=1.0 if keyword else 0.0, ms=ms, backend=self.name)

    def close(self) -> None:
        try:
            os.unlink(self.keywords_file)
        except OSError:
            pass
