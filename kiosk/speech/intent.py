"""What a spoken sentence asks for: ``"enter"``, ``"help"`` or nothing (None).

Recognizers get Mandarin wrong in ways that sound right: 你好大拜, 进去小区, 让我进去, 开们. So the
sentence and every phrase are compared as toneless pinyin syllables (pypinyin), with a
syllable distance that forgives the usual confusions (zh/z, ch/c, sh/s, n/l, an/ang, en/eng,
in/ing) and a little more for one differing initial or final. Each phrase is aligned with the
best-matching stretch of the sentence (extra syllables inside it cost a little, missing ones a
lot); the score is ``1 - cost / len(phrase)``, and a short phrase (2-3 syllables) must match all
but a usual confusion or so, or 「进度怎么样」 would be 「怎么用」. The best phrase at or above ``threshold`` wins
(help over enter on a tie); a negation word (不, 别, 没, 甭) just before or inside the stretch
cancels it: 「我不要进去」 is not a request. A transcript with punctuation is read clause by clause and
the last clause that decides anything wins, so a change of mind counts: 「请让我进入小区。算了，我不要进去了」
(a negated request or 算了 / 不用了 / 取消) is no request, 「我不进去，开门吧」 is one.

``intent_of(text)`` uses the default phrases; :class:`IntentMatcher` takes the configured ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

from pypinyin import Style, lazy_pinyin

__all__ = [
    "ENTER_PHRASES",
    "HELP_PHRASES",
    "IntentMatch",
    "IntentMatcher",
    "intent_of",
    "parse_phrases",
    "syllables",
]

#: The request and its variants (recognizers' homophones are handled by the matcher).
ENTER_PHRASES: Sequence[str] = (
    "你好大白请让我进入小区", "让我进入小区", "请让我进去", "让我进去", "让我进", "我要进去", "我要进小区",
    "进入小区", "进去小区", "我要进", "开门", "请开门", "开一下门", "我要回家", "回家",
)
HELP_PHRASES: Sequence[str] = ("帮助", "帮忙", "帮帮我", "求助", "物业", "怎么用", "怎么进", "人工服务", "找保安")

_NEGATIONS = frozenset("不别没甭")
_RETRACTIONS = ("算了", "不用了", "不要了", "不进了", "取消")
_CLAUSES = re.compile(r"[，。！？；,.!?;]+")
_SEPARATORS = re.compile(r"[,，|;；、/]+")
_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"))
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z",
             "c", "s", "y", "w")


def parse_phrases(text: str) -> List[str]:
    """Phrases from a config string separated by ``,`` ``，`` ``|`` ``;`` or ``、``."""
    return [p.strip() for p in _SEPARATORS.split(text or "") if p.strip()]


def _is_hanzi(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def syllables(text: str) -> Tuple[List[str], List[str]]:
    """``(syllables, source characters)``: one toneless pinyin syllable per Chinese character
    (pypinyin with its phrase dictionary for polyphones), one token per ASCII letter or digit
    run; punctuation and spaces are dropped."""
    units: List[str] = []
    chars: List[str] = []
    run = ""
    kept = []
    for ch in text:
        if _is_hanzi(ch):
            if run:
                kept.append(run)
                run = ""
            kept.append(ch)
        elif ch.isascii() and ch.isalnum():
            run += ch.lower()
        elif run:
            kept.append(run)
            run = ""
    if run:
        kept.append(run)
    hanzi = "".join(k for k in kept if _is_hanzi(k[0]))
    py = iter(lazy_pinyin(hanzi, style=Style.NORMAL, errors="ignore", v_to_u=False)) if hanzi else iter(())
    for k in kept:
        if _is_hanzi(k[0]):
            units.append(next(py, k))
            chars.append(k)
        else:
            units.append(k)
            chars.append(k)
    return units, chars


@lru_cache(maxsize=4096)
def _split(syl: str) -> Tuple[str, str]:
    for ini in _INITIALS:
        if syl.startswith(ini) and len(syl) > len(ini):
            return ini, syl[len(ini):]
    return "", syl


@lru_cache(maxsize=4096)
def _fuzzy(syl: str) -> Tuple[str, str]:
    ini, fin = _split(syl)
    for a, b in _FUZZY_INITIALS:
        if ini == a:
            ini = b
    for a, b in _FUZZY_FINALS:
        if fin.endswith(a):
            fin = fin[: len(fin) - len(a)] + b
            break
    return ini, fin


@lru_cache(maxsize=65536)
def _cost(a: str, b: str) -> float:
    """Substitution cost between two syllables: 0 same, 0.2 a usual confusion, 0.6 one of
    initial / final differs, 1 otherwise."""
    if a == b:
        return 0.0
    fa, fb = _fuzzy(a), _fuzzy(b)
    if fa == fb:
        return 0.2
    if fa[0] == fb[0] and fa[0] or fa[1] == fb[1]:
        return 0.6
    return 1.0


_INSERT = 0.5  # an extra syllable of the sentence inside the phrase's stretch (请让我*先*进去)
_DELETE = 1.0  # a syllable of the phrase the sentence lacks


def _align(phrase: Sequence[str], text: Sequence[str]) -> Tuple[float, int, int]:
    """Best alignment of all of ``phrase`` with a stretch ``text[start:end]``: (cost, start, end)."""
    m, n = len(phrase), len(text)
    inf = float("inf")
    # prev[j]: cost of aligning phrase[:i] ending at text position j; start[j]: where that stretch began
    prev = [0.0] * (n + 1)
    prev_start = list(range(n + 1))
    for i in range(1, m + 1):
        cur = [inf] * (n + 1)
        cur_start = [0] * (n + 1)
        cur[0] = prev[0] + _DELETE
        cur_start[0] = 0
        p = phrase[i - 1]
        for j in range(1, n + 1):
            best, src = prev[j - 1] + _cost(p, text[j - 1]), prev_start[j - 1]
            c = prev[j] + _DELETE
            if c < best:
                best, src = c, prev_start[j]
            c = cur[j - 1] + _INSERT
            if c < best:
                best, src = c, cur_start[j - 1]
            cur[j] = best
            cur_start[j] = src
        prev, prev_start = cur, cur_start
    end = min(range(n + 1), key=lambda j: (prev[j], -j))
    return prev[end], prev_start[end], end


@dataclass(frozen=True)
class IntentMatch:
    intent: Optional[str]  # "enter", "help" or None
    score: float  # of the best phrase, 0..1
    phrase: Optional[str] = None  # the phrase that matched best (also below the threshold)
    negated: bool = False


class IntentMatcher:
    """Pinyin-tolerant fuzzy matching of a sentence against the enter and help phrases."""

    def __init__(self, enter: Sequence[str] = ENTER_PHRASES, help: Sequence[str] = HELP_PHRASES,  # noqa: A002
                 threshold: float = 0.75) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1], got {!r}".format(threshold))
        self.threshold = float(threshold)
        self._phrases: List[Tuple[str, str, List[str]]] = []
        for intent, phrases in (("help", help), ("enter", enter)):
            for p in phrases:
                syl, _ = syllables(p)
                if syl:
                    self._phrases.append((intent, p, syl))

    def match(self, text: Optional[str]) -> IntentMatch:
        """The best phrase for ``text`` and its intent (None below the threshold or negated); with
        several clauses, the last one that asks for something or takes it back."""
        clauses = [c for c in _CLAUSES.split(text or "") if c.strip()]
        decided: Optional[IntentMatch] = None
        if len(clauses) > 1:
            for clause in clauses:
                m = self._match_clause(clause)
                if any(r in clause for r in _RETRACTIONS):
                    decided = IntentMatch(None, m.score, m.phrase, negated=True)
                elif m.intent is not None or (m.negated and m.score >= self.threshold):
                    decided = m
        return decided if decided is not None else self._match_clause(text)

    def _match_clause(self, text: Optional[str]) -> IntentMatch:
        syl, chars = syllables(text or "")
        if not syl:
            return IntentMatch(None, 0.0)
        best: Optional[IntentMatch] = None
        for intent, phrase, psyl in self._phrases:
            cost, start, end = _align(psyl, syl)
            score = max(0.0, 1.0 - cost / len(psyl))
            if cost > max(0.2, 0.35 * (len(psyl) - 2)):  # short phrases may differ only by a usual confusion
                score = min(score, self.threshold - 0.001)
            window = set(chars[max(0, start - 2):end]) - set(phrase)
            negated = bool(window & _NEGATIONS)
            cand = IntentMatch(intent if score >= self.threshold and not negated else None, round(score, 3), phrase, negated)
            if best is None or (cand.intent is not None, cand.score) > (best.intent is not None, best.score):
                best = cand  # phrases are tried help first, so help wins a tie
        assert best is not None
        return best

    def intent(self, text: Optional[str]) -> Optional[str]:
        return self.match(text).intent


_DEFAULT = IntentMatcher()


def intent_of(text: str) -> Optional[str]:
    """``"enter"``, ``"help"`` or None for a sentence, with the default phrases."""
    return _DEFAULT.intent(text)
