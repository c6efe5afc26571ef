"""Speaking: text → pinyin → espeak-ng (or another voice) → prompt cache → audio sink.

Import from here::

    from kiosk.speech import EspeakVoice, PromptCache, Speaker, WavFileSink

    voice = EspeakVoice()                        # VoiceUnavailable if espeak-ng is missing
    cache = PromptCache(voice, "/var/cache/dabai/tts")
    cache.warm(PROMPTS)                          # fixed prompts ready before the first visitor
    speaker = Speaker(cache, WavFileSink("out/speech"))
    speaker.say("mask_required", "请您佩戴口罩")

Only numpy and pypinyin are needed at import; espeak-ng and sounddevice are looked up when a
voice or sink is constructed.
"""

from kiosk.core.prompts import PROMPTS as _PROMPT_TABLE
from kiosk.core.prompts import prompt as _prompt

from .audio_out import (
    AudioDeviceUnavailable,
    AudioSink,
    NullSink,
    SounddeviceSink,
    Speaker,
    SpeechRecord,
    WavFileSink,
    WrittenUtterance,
    resample,
)
from .pinyin import numbers_to_hanzi, to_pinyin
from .prompt_cache import PromptCache
from .voices import Audio, SynthesisError, TTSError, Voice, VoiceUnavailable, create_voice
from .voices.espeak import EspeakVoice

#: The kiosk's fixed prompts, from the one table in kiosk.core.prompts (the greeting with a
#: resident's name is made at run time).
PROMPTS = tuple(dict.fromkeys(text for text in _PROMPT_TABLE.values() if "{" not in text))


def greeting(name: str) -> str:
    """The granted prompt for a resident: 「您好，张三，欢迎回家，二维码有效请您通过」."""
    return _prompt("granted", name=name)


__all__ = [
    "PROMPTS",
    "Audio",
    "AudioDeviceUnavailable",
    "AudioSink",
    "EspeakVoice",
    "NullSink",
    "PromptCache",
    "SounddeviceSink",
    "Speaker",
    "SpeechRecord",
    "SynthesisError",
    "TTSError",
    "Voice",
    "VoiceUnavailable",
    "WavFileSink",
    "WrittenUtterance",
    "create_voice",
    "greeting",
    "numbers_to_hanzi",
    "resample",
    "to_pinyin",
]
