"""Mandarin text → tone-numbered pinyin that espeak-ng's ``cmn-latn-pinyin`` voice reads well.

espeak-ng mispronounces plain Chinese characters, but it reads pinyin with tone numbers
(``ni3 hao3``) correctly and applies the third-tone sandhi itself. This module does the rest:

* characters → pinyin with pypinyin, whose phrase dictionary resolves polyphones
  (通行 → ``tong1 xing2``, 银行 → ``yin2 hang2``, 重新 → ``chong2 xin1``);
* the 不/一 tone changes that espeak-ng does not do (不是 → ``bu2 shi4``, 一个 → ``yi2 ge4``);
* digits → spoken Chinese numbers: counts as cardinals (``12`` → 十二), unit and room
  numbers digit by digit (``3-201`` → 三杠二零一), decimals, percentages, clock times, years;
* Chinese punctuation → ASCII punctuation, which espeak-ng turns into pauses;
* Latin letters are passed through unchanged.

Pure functions, no I/O; pypinyin is the only dependency.
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional, Tuple

__all__ = [
    "DIGITS",
    "digits_to_hanzi",
    "int_to_hanzi",
    "numbers_to_hanzi",
    "syllables",
    "to_pinyin",
]

DIGITS = "零一二三四五六七八九"

# Chinese (full-width) punctuation → ASCII punctuation that espeak-ng pauses on.
_PUNCT = {
    "，": ",", "、": ",", "；": ";", "：": ",", "。": ".", "．": ".", "！": "!", "？": "?",
    "…": ".", "—": ",", "～": ",", "（": ",", "）": ",", "《": "", "》": "", "「": "", "」": "",
    "“": "", "”": "", "‘": "", "’": "", "『": "", "』": "", "【": ",", "】": ",", "·": " ",
    ",": ",", ".": ".", ";": ";", ":": ",", "!": "!", "?": "?", "(": ",", ")": ",",
}
_PAUSES = ",;.!?"

# Unit / room / door numbers: 3-201, 12-1102, 5－3－201 (ASCII or full-width hyphen).
_UNIT_RE = re.compile(r"\d+(?:\s*[-－]\s*\d+)+")
_TIME_RE = re.compile(r"(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)")
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
_DECIMAL_RE = re.compile(r"\d+\.\d+")
_YEAR_RE = re.compile(r"(\d{4})(?=年)")
_INT_RE = re.compile(r"\d+")

# Numbers are spoken with these characters only; their readings are fixed here so that
# pypinyin's polyphone guesses (杠 gang1) and the 一 sandhi of running text stay out of them.
_NUMBER_PINYIN = {
    "零": "ling2", "一": "yi1", "二": "er4", "三": "san1", "四": "si4", "五": "wu3", "六": "liu4",
    "七": "qi1", "八": "ba1", "九": "jiu3", "十": "shi2", "百": "bai3", "千": "qian1", "万": "wan4",
    "亿": "yi4", "点": "dian3", "杠": "gang4", "分": "fen1", "之": "zhi1", "负": "fu4",
}
_NUM_OPEN, _NUM_CLOSE = "\ue000", "\ue001"  # private-use marks around spoken numbers

_SMALL_UNITS = ["", "十", "百", "千"]
_BIG_UNITS = ["", "万", "亿", "万亿"]


def digits_to_hanzi(digits: str) -> str:
    """Read a digit string one digit at a time: ``"201"`` → ``"二零一"``."""
    return "".join(DIGITS[int(d)] for d in digits if d.isdigit())


def _four_digits(n: int) -> str:
    """0 < n < 10000 as a cardinal, with inner zeros read once (1005 → 一千零五)."""
    out = []
    zero_pending = False
    for pos in range(3, -1, -1):
        d = (n // 10 ** pos) % 10
        if d == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(DIGITS[d] + _SMALL_UNITS[pos])
    return "".join(out)


def int_to_hanzi(n: int) -> str:
    """A non-negative integer as a spoken cardinal: 12 → 十二, 110 → 一百一十, 10086 → 一万零八十六."""
    if n < 0:
        return "负" + int_to_hanzi(-n)
    if n == 0:
        return "零"
    if n >= 10 ** 16:
        return digits_to_hanzi(str(n))
    groups = []  # least significant group of four digits first
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    need_zero = False
    for idx in range(len(groups) - 1, -1, -1):
        g = groups[idx]
        if g == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or g < 1000):
            out += "零"
        out += _four_digits(g) + _BIG_UNITS[idx]
        need_zero = False
    if out.startswith("一十"):  # 10–19 are read 十, 十一 …
        out = out[1:]
    return out


def _cardinal_or_digits(digits: str) -> str:
    """Counts as cardinals; codes, phone numbers and zero-padded strings digit by digit."""
    if len(digits) > 1 and digits.startswith("0") or len(digits) > 8:
        return digits_to_hanzi(digits)
    return int_to_hanzi(int(digits))


def _decimal(text: str) -> str:
    whole, frac = text.split(".", 1)
    return _cardinal_or_digits(whole) + "点" + digits_to_hanzi(frac)


def numbers_to_hanzi(text: str) -> str:
    """Replace every run of digits in ``text`` by how it is spoken, in Chinese characters:
    ``"3-201室"`` → ``"三杠二零一室"``, ``"12.5"`` → ``"十二点五"``."""
    return _mark_numbers(text).replace(_NUM_OPEN, "").replace(_NUM_CLOSE, "")


def _mark_numbers(text: str) -> str:
    """Like :func:`numbers_to_hanzi`, with each spoken number wrapped in private-use marks."""

    def unit(m: "re.Match[str]") -> str:
        parts = re.split(r"\s*[-－]\s*", m.group(0))
        return "杠".join(digits_to_hanzi(p) for p in parts)

    def clock(m: "re.Match[str]") -> str:
        minutes = int(m.group(2))
        tail = "" if minutes == 0 else ("零" if minutes < 10 else "") + int_to_hanzi(minutes) + "分"
        return int_to_hanzi(int(m.group(1))) + "点" + tail

    def percent(m: "re.Match[str]") -> str:
        value = m.group(1)
        return "百分之" + (_decimal(value) if "." in value else _cardinal_or_digits(value))

    def mark(fn: Callable[["re.Match[str]"], str]) -> Callable[["re.Match[str]"], str]:
        return lambda m: _NUM_OPEN + fn(m) + _NUM_CLOSE

    text = _UNIT_RE.sub(mark(unit), text)
    text = _TIME_RE.sub(mark(clock), text)
    text = _PERCENT_RE.sub(mark(percent), text)
    text = _DECIMAL_RE.sub(mark(lambda m: _decimal(m.group(0))), text)
    text = _YEAR_RE.sub(mark(lambda m: digits_to_hanzi(m.group(1))), text)
    return _INT_RE.sub(mark(lambda m: _cardinal_or_digits(m.group(0))), text)


def _number_to_pinyin(spoken: str) -> List[str]:
    """Pinyin of a spoken number; 一 before 百/千 is yi4, before 万/亿 yi2 (一百 yi4 bai3)."""
    out = []
    for i, ch in enumerate(spoken):
        syl = _NUMBER_PINYIN.get(ch)
        if syl is None:
            continue
        nxt = spoken[i + 1] if i + 1 < len(spoken) else ""
        if ch == "一" and nxt and nxt in "百千":
            syl = "yi4"
        elif ch == "一" and nxt and nxt in "万亿":
            syl = "yi2"
        out.append(syl)
    return out


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _tone(syllable: str) -> int:
    return int(syllable[-1]) if syllable and syllable[-1].isdigit() else 0


def _bu_yi_sandhi(chars: str, syls: List[str]) -> List[str]:
    """不 and 一 change tone before another syllable (espeak-ng only does the 3-3 change)."""
    out = list(syls)
    for i, ch in enumerate(chars[:-1]):
        nxt = _tone(syls[i + 1])
        if ch == "不" and out[i] == "bu4" and nxt == 4:
            out[i] = "bu2"
        elif ch == "一" and out[i] == "yi1" and (i == 0 or chars[i - 1] not in "第初") and nxt:
            out[i] = "yi2" if nxt == 4 else ("yi4" if nxt in (1, 2, 3) else out[i])
    return out


def _han_run_to_pinyin(run: str, sandhi: bool) -> List[str]:
    from pypinyin import Style, lazy_pinyin

    syls = lazy_pinyin(run, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda x: list(x))
    if len(syls) != len(run):  # should not happen for Han characters; stay safe
        return syls
    return _bu_yi_sandhi(run, syls) if sandhi else syls


def _word_lengths(run: str) -> Optional[List[int]]:
    """Lengths of the words of a run of Han characters, from jieba when it is installed
    (optional; better prosody for neural voices), else None (no word boundaries known)."""
    try:
        import jieba  # type: ignore[import-not-found]
    except Exception:
        return None
    return [len(w) for w in jieba.lcut(run, HMM=True) if w]


def syllables(text: str, sandhi: bool = True, word_breaks: bool = False) -> List[Tuple[str, str]]:
    """Tokens of ``text`` as ``(kind, value)``: kind is ``"py"`` (a pinyin syllable with tone
    number), ``"pause"`` (ASCII punctuation) or ``"latin"`` (a Latin word, unchanged).

    With ``word_breaks`` a ``("break", "")`` token also separates words: a spoken number is one
    word; inside a run of characters words come from jieba when it is installed (none otherwise)."""
    text = _mark_numbers(text)
    tokens: List[Tuple[str, str]] = []
    i = 0
    n = len(text)

    def brk() -> None:
        if word_breaks and tokens and tokens[-1][0] == "py":
            tokens.append(("break", ""))

    while i < n:
        ch = text[i]
        if ch == _NUM_OPEN:
            j = text.index(_NUM_CLOSE, i)
            brk()
            tokens.extend(("py", s) for s in _number_to_pinyin(text[i + 1:j]))
            brk()
            i = j + 1
        elif _is_han(ch):
            j = i
            while j < n and _is_han(text[j]):
                j += 1
            syls = _han_run_to_pinyin(text[i:j], sandhi)
            lengths = _word_lengths(text[i:j]) if word_breaks else None
            if lengths is None or sum(lengths) != len(syls):
                tokens.extend(("py", s) for s in syls)
            else:
                k = 0
                for length in lengths:
                    brk()
                    tokens.extend(("py", s) for s in syls[k:k + length])
                    k += length
            i = j
        elif ch.isascii() and ch.isalpha() or ch == "'":
            j = i
            while j < n and text[j].isascii() and (text[j].isalnum() or text[j] in "'"):
                j += 1
            tokens.append(("latin", text[i:j]))
            i = j
        elif ch in _PUNCT:
            mark = _PUNCT[ch]
            if mark:
                tokens.append(("pause", mark))
            i += 1
        else:  # whitespace, symbols, emoji: a word boundary, nothing spoken
            i += 1
    return tokens


def to_pinyin(text: str, sandhi: bool = True) -> str:
    """Mandarin text as a pinyin string for espeak-ng, e.g. ``"请您佩戴口罩"`` →
    ``"qing3 nin2 pei4 dai4 kou3 zhao4"``; ``"你好，我是大白。"`` → ``"ni3 hao3, wo3 shi4 da4 bai2."``."""
    out: List[str] = []
    for kind, value in syllables(text, sandhi=sandhi):
        if kind == "pause":
            # Glued to the previous word ("hao3,"); one pause per run; none at the start.
            if out and out[-1][-1] not in _PAUSES:
                out[-1] = out[-1] + value
            continue
        out.append(value)
    return " ".join(out)
