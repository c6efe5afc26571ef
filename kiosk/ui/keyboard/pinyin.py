"""A small pinyin input engine (pure Python, no Qt) for the on-screen keyboard.

Typed latin letters (``zhangsan``, ``xiaoming``, ``zs``, ``lv`` with v for ü) become ranked candidates:
words, whole-input "sentences" made of the best character of each syllable (how names are typed), and the
single characters of the first syllable (so a name can be typed character by character). Each candidate says
how many of the letters it replaces (:attr:`Candidate.used`); the rest stay in the composition, as in every
phone IME::

    engine = PinyinEngine()
    engine.candidates("zhangsan")[:3]          # ['张三', ...]
    [c for c in engine.lookup("zhangsan") if c.text == "张"]   # [Candidate(text='张', used=5)]
    "zhangsan"[5:]                             # 'san' stays in the composition

The data is ``pinyin_table.txt`` next to this file, written by ``tools/make_pinyin_table.py`` from pypinyin's
MIT-licensed dictionaries; it is read at the first lookup (about 0.1 s), not at import.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from kiosk.ui.keyboard.pinyin_data import SURNAMES

log = logging.getLogger(__name__)

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pinyin_table.txt")
MAX_LETTERS = 40  # longer compositions are not looked up (nobody types a sentence on a gate kiosk)
SEPARATOR = "'"  # typed between syllables to split them by hand: xi'an
# Costs of a segmentation piece: a whole syllable, or a syllable's beginning (zhangs → zhang + s…, zs → z… s…).
FULL_COST = 1.0
PREFIX_COST = 2.5
ALIASES = {"lue": "lve", "nue": "nve"}  # written forms of lüe / nüe that IMEs accept
SURNAME_RANK = {ch: i for i, ch in enumerate(SURNAMES)}  # the 100 most common surnames, most common first


class Candidate(NamedTuple):
    """One choice: ``text`` replaces the first ``used`` letters of the composition."""

    text: str
    used: int


class Piece(NamedTuple):
    """A piece of the segmented input: its letters, where it ends in the input, and whether it is a whole
    syllable (else the beginning of one)."""

    letters: str
    end: int
    full: bool


class PinyinTable:
    """The loaded table (see :mod:`kiosk.ui.keyboard.pinyin_data` for the format)."""

    def __init__(self) -> None:
        self.rank: Dict[str, int] = {}  # character → global frequency rank (0 = most frequent)
        self.given: Dict[str, int] = {}  # given-name character → its rank among them
        self.chars: Dict[str, str] = {}  # syllable → characters, best first
        self.surnames: Dict[str, str] = {}  # syllable → surnames read so, most common first
        self.words: Dict[str, List[str]] = {}  # "zhang'san" → words, best first
        # initials ("zs") → [(syllables, word)], best first: for abbreviations and half-typed last syllables
        self.by_initials: Dict[str, List[Tuple[Tuple[str, ...], str]]] = {}
        self.prefixes: Dict[str, List[str]] = {}  # "zh" → the syllables that begin so, most used first

    @classmethod
    def parse(cls, lines: Sequence[str]) -> "PinyinTable":
        table = cls()
        for line in lines:
            if not line or line.startswith("#"):
                continue
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "R":
                table.rank = {ch: i for i, ch in enumerate(rest)}
            elif kind == "G":
                table.given = {ch: i for i, ch in enumerate(rest)}
            elif kind in ("C", "N", "W"):
                key, _, value = rest.partition(" ")
                if kind == "C":
                    table.chars[key] = value
                elif kind == "N":
                    table.surnames[key] = value
                else:
                    table.words[key] = value.split(" ")
        table._index()
        return table

    def _index(self) -> None:
        for key, words in self.words.items():
            syllables = tuple(key.split(SEPARATOR))
            initials = "".join(s[0] for s in syllables)
            self.by_initials.setdefault(initials, []).extend((syllables, w) for w in words)
        # best first inside each initials group: by the word's rank in its own list, then its rarest character
        worst = len(self.rank)
        for items in self.by_initials.values():
            items.sort(key=lambda item: max(self.rank.get(ch, worst) for ch in item[1]))
        for syl in self.chars:
            for end in range(1, len(syl) + 1):
                self.prefixes.setdefault(syl[:end], []).append(syl)
        first = {syl: self.rank.get(chars[0], worst) for syl, chars in self.chars.items() if chars}
        for syllables in self.prefixes.values():
            syllables.sort(key=lambda s: (first.get(s, worst), s))


def load_table(path: str = TABLE_PATH) -> PinyinTable:
    """Read the table file; if it is missing, build the table from pypinyin in memory (about a second)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return PinyinTable.parse(handle.read().split("\n"))
    except FileNotFoundError:
        log.warning("%s is missing (run tools/make_pinyin_table.py); building the pinyin table from pypinyin", path)
        from kiosk.ui.keyboard.pinyin_data import build_table, table_lines

        return PinyinTable.parse(table_lines(build_table()))


def normalize(letters: str) -> Optional[str]:
    """Lower-case letters with ü as v and ``'`` kept; None when anything else is in it. Same length as the input,
    so positions in the result are positions in what was typed."""
    text = letters.lower().replace("ü", "v")
    if len(text) != len(letters) or any(not ("a" <= c <= "z" or c == SEPARATOR) for c in text):
        return None
    return text


class PinyinEngine:
    """Ranked candidates for typed pinyin letters. The table is read at the first lookup (thread-safe)."""

    def __init__(self, table_path: str = TABLE_PATH) -> None:
        self.table_path = table_path
        self._table: Optional[PinyinTable] = None
        self._lock = threading.Lock()

    @property
    def table(self) -> PinyinTable:
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = load_table(self.table_path)
        return self._table

    def load(self) -> "PinyinEngine":
        """Read the table now (e.g. in the background while the operator screen opens)."""
        _ = self.table
        return self

    # ---- the public lookups -------------------------------------------------------------------

    def candidates(self, letters: str, limit: int = 30) -> List[str]:
        """Candidate texts for ``letters``, best first (see :meth:`lookup` for what each one replaces)."""
        return [c.text for c in self.lookup(letters, limit)]

    def lookup(self, letters: str, limit: int = 30) -> List[Candidate]:
        """Candidates for ``letters``, best first, each with how many letters it replaces. Empty for letters that
        are not pinyin (``xqz``) or too long; never raises on user input."""
        text = normalize(letters)
        if not text or len(text) > MAX_LETTERS:
            return []
        pieces = self.segment(text)
        if not pieces:
            return []
        out: List[Candidate] = []
        seen = set()

        def add(word: str, used: int) -> None:
            if word and (word, used) not in seen:
                seen.add((word, used))
                out.append(Candidate(word, used))

        end = pieces[-1].end
        abbreviation = len(pieces) > 1 and all(not p.full for p in pieces)
        if abbreviation and len(pieces) > 2:
            return []  # only two-letter abbreviations (zs → 知识); longer runs of consonants are taken as typos
        words = self._words(pieces) if len(pieces) > 1 else []
        sentences = self._sentences(pieces) if len(pieces) > 1 and pieces[0].full else []
        # a word of the whole input first, then the best sentence (a name), then the others
        for word in words[:1]:
            add(word, end)
        for word in sentences[:1]:
            add(word, end)
        for word in words[1:8]:
            add(word, end)
        for word in sentences[1:]:
            add(word, end)
        for word in words[8:]:
            add(word, end)
        if abbreviation:
            return out[:limit]  # an abbreviation (zs): only words; single letters of it would be noise
        # words of the first syllables (beijingdaxue → 北京 for beijing), then the first syllable's characters
        for count in range(len(pieces) - 1, 1, -1):
            for word in self._words(pieces[:count])[:5]:
                add(word, pieces[count - 1].end)
        for ch in self._characters(pieces[0], position=0):
            add(ch, pieces[0].end)
            if len(out) >= limit:
                break
        return out[:limit]

    def segment(self, letters: str) -> List[Piece]:
        """Split normalized letters into syllables, allowing syllable beginnings (``zhangs`` → zhang|s,
        ``zs`` → z|s) at a cost, fewest and whole syllables preferred. [] when no split exists."""
        table = self.table
        letters = normalize(letters) or ""
        n = len(letters)
        INF = float("inf")
        best: List[Tuple[float, int, bool]] = [(INF, -1, False)] * (n + 1)  # cost, start of last piece, full
        best[0] = (0.0, -1, False)
        for start in range(n):
            cost = best[start][0]
            if cost == INF:
                continue
            if letters[start] == SEPARATOR:  # a typed separator ends a piece and costs nothing
                if cost < best[start + 1][0]:
                    best[start + 1] = (cost, start, False)
                continue
            for stop in range(start + 1, min(n, start + 6) + 1):
                piece = letters[start:stop]
                if SEPARATOR in piece:
                    break
                piece = ALIASES.get(piece, piece)
                if piece in table.chars:
                    step = FULL_COST
                elif piece in table.prefixes:
                    step = PREFIX_COST
                else:
                    break  # no syllable begins so; a longer piece cannot either
                # on a tie the later, longer piece wins (liang'a before lian'ga)
                if cost + step <= best[stop][0]:
                    best[stop] = (cost + step, start, step == FULL_COST)
        if best[n][0] == INF:
            return []
        pieces: List[Piece] = []
        stop = n
        while stop > 0:
            _, start, full = best[stop]
            piece = letters[start:stop]
            if piece != SEPARATOR:
                pieces.append(Piece(ALIASES.get(piece, piece), stop, full))
            stop = start
        pieces.reverse()
        return pieces

    # ---- pieces → characters, sentences and words ----------------------------------------------

    def _characters(self, piece: Piece, position: int, after_surname: bool = False) -> List[str]:
        """The characters a piece may stand for, best first. At the start of the input surnames come first (a
        name is what an operator types most); after a surname, characters common in given names."""
        table = self.table
        syllables = [piece.letters] if piece.full else table.prefixes.get(piece.letters, [])
        worst = len(table.rank)
        ordered: List[str] = []
        if position == 0:
            names = [ch for syl in syllables for ch in table.surnames.get(syl, "")]
            ordered.extend(sorted(dict.fromkeys(names), key=SURNAME_RANK.__getitem__))
        if after_surname:
            given = [ch for syl in syllables for ch in table.chars.get(syl, "")[:40] if ch in table.given]
            ordered.extend(sorted(dict.fromkeys(given), key=lambda ch: table.given[ch]))
        if piece.full:
            ordered.extend(table.chars.get(piece.letters, ""))
        else:  # several syllables: merge their lists by place in their list, then by global frequency
            merged = [(i, table.rank.get(ch, worst), ch) for syl in syllables
                      for i, ch in enumerate(table.chars.get(syl, ""))]
            ordered.extend(ch for _, _, ch in sorted(merged))
        return list(dict.fromkeys(ordered))

    def _sentences(self, pieces: Sequence[Piece], width: int = 12) -> List[str]:
        """Whole-input candidates (beam search over the pieces): each step is one character or a word of the
        table; a word costs about one character, so 北京+大学 beats four single characters, and a name with no
        word in it is the best character of each syllable (张+三: surnames first, then given-name characters)."""
        if len(pieces) > 8:
            return []
        beams: List[List[Tuple[float, str]]] = [[] for _ in range(len(pieces) + 1)]
        beams[0] = [(0.0, "")]
        options: Dict[Tuple[int, bool], List[str]] = {}
        last = len(pieces) - 1
        for position, piece in enumerate(pieces):
            beams[position].sort()
            # a half-typed last syllable (zhangs) varies the last character after the two best heads
            heads = 2 if position == last and not piece.full else width
            for cost, text in beams[position][:heads]:
                after_surname = position in (1, 2) and text[:1] in SURNAME_RANK
                key = (position, after_surname)
                if key not in options:
                    options[key] = self._characters(piece, position, after_surname)[:6 if piece.full else 16]
                for index, ch in enumerate(options[key]):
                    beams[position + 1].append((cost + 1.0 + math.log(index + 1) + (0.0 if piece.full else 0.5), text + ch))
                for stop in range(position + 2, min(len(pieces), position + 3) + 1):  # words of two or three
                    guess = 0.0 if pieces[stop - 1].full else 0.8  # a word ending in a half-typed syllable
                    for index, word in enumerate(self._words(pieces[position:stop])[:4]):
                        beams[stop].append((cost + 1.2 + guess + 0.5 * math.log(index + 1), text + word))
        beams[-1].sort()
        limit = 3 if pieces[-1].full else 16
        return list(dict.fromkeys(text for _, text in beams[-1]))[:limit]

    def _words(self, pieces: Sequence[Piece]) -> List[str]:
        """Words whose syllables are the pieces (whole syllables equal, beginnings begin them)."""
        table = self.table
        if all(p.full for p in pieces):
            return list(table.words.get(SEPARATOR.join(p.letters for p in pieces), []))
        initials = "".join(p.letters[0] for p in pieces)
        found = []
        for syllables, word in table.by_initials.get(initials, []):
            if all((s == p.letters) if p.full else s.startswith(p.letters) for s, p in zip(syllables, pieces)):
                found.append(word)
        return found


_ENGINE: Optional[PinyinEngine] = None


def default_engine() -> PinyinEngine:
    """The engine every keyboard shares (one table in memory)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = PinyinEngine()
    return _ENGINE
