"""What a spoken sentence asks for: "enter", "help", or nothing.

A first, plain matcher on the transcript text; the speech issue adds pinyin-tolerant fuzzy
matching for recognizer output.
"""

from __future__ import annotations

from typing import Optional, Sequence

ENTER_PHRASES: Sequence[str] = ("让我进", "进入小区", "我要进", "开门", "开一下门", "回家")
HELP_PHRASES: Sequence[str] = ("帮助", "帮忙", "物业", "怎么用")


def intent_of(text: str) -> Optional[str]:
    compact = "".join(ch for ch in text if not ch.isspace() and ch not in "，。,.!！?？、：:")
    if any(p in compact for p in ENTER_PHRASES):
        return "enter"
    if any(p in compact for p in HELP_PHRASES):
        return "help"
    return None
