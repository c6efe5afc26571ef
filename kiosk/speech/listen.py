"""The microphone loop: audio source → VAD → utterances → recognizer → intent → ``Heard`` events.

:class:`SpeechPipeline` is the single-threaded core (also used by ``dabai-kiosk listen`` on WAV
files); :class:`MicLoop` runs it on a thread at the edge of the kiosk and posts
``Heard(text, intent)`` to the decision core. While the kiosk's ``Speaker.is_speaking`` (and
``echo_tail_ms`` after), input is dropped, so the kiosk does not hear itself (half-duplex).

Early intent (``early_intent``, on by default): an utterance is first recognized when its short
silence tail is complete (``SegmenterSettings.tail_ms``, 200 ms), on exactly the samples it will
have if no more speech comes. When those words already make an intent it is reported at once
instead of after the hangover (500 ms); otherwise, or if speech goes on, the utterance is
recognized again when it closes. An intent is never reported twice for one utterance.

Timings per utterance (:class:`ListenResult`): ``asr_ms`` (recognizer wall time), ``rtf``
(``asr_ms`` / utterance length) and ``end_to_intent_ms``: from the end of speech to the
intent, i.e. the silence waited for (the tail when early, else the hangover) plus the
processing after the deciding chunk arrived.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from kiosk.audio.sources import CHUNK, SAMPLE_RATE, AudioSource
from kiosk.audio.vad import Segmenter, SegmenterSettings, Utterance, Vad

from .intent import IntentMatcher, parse_phrases
from .recognizers import Recognizer

__all__ = ["HalfDuplex", "ListenResult", "MicLoop", "SpeechPipeline", "matcher_from_config", "segmenter_settings"]

log = logging.getLogger(__name__)


def segmenter_settings(listen: Any) -> SegmenterSettings:
    """Segmenter settings from a :class:`kiosk.config.ListenConfig`."""
    return SegmenterSettings(threshold=listen.vad_threshold, neg_threshold=max(0.05, listen.vad_threshold - 0.15),
                             preroll_ms=listen.preroll_ms, min_speech_ms=listen.min_speech_ms,
                             hangover_ms=listen.hangover_ms, max_utterance_s=listen.max_utterance_s)


def matcher_from_config(listen: Any) -> IntentMatcher:
    return IntentMatcher(parse_phrases(listen.enter_phrases), parse_phrases(listen.help_phrases), listen.match_threshold)


class HalfDuplex:
    """Tells whether input must be ignored: while ``is_speaking()`` and ``tail_s`` after it ends."""

    def __init__(self, is_speaking: Optional[Callable[[], bool]], tail_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.is_speaking = is_speaking
        self.tail_s = tail_s
        self.clock = clock
        self._until = -1.0

    def muted(self) -> bool:
        now = self.clock()
        if self.is_speaking is not None:
            try:
                speaking = bool(self.is_speaking())
            except Exception:  # a broken speaker must not stop listening
                speaking = False
            if speaking:
                self._until = now + self.tail_s
                return True
        return now < self._until


@dataclass
class ListenResult:
    """One utterance and what became of it."""

    start_s: float
    end_s: float
    duration_s: float
    text: Optional[str] = None  # None: no recognizer
    keyword: Optional[str] = None
    intent: Optional[str] = None
    score: float = 0.0
    phrase: Optional[str] = None
    asr_ms: float = 0.0
    rtf: float = 0.0
    end_to_intent_ms: float = 0.0
    truncated: bool = False
    error: Optional[str] = None
    early: bool = False  # decided at the end of the silence tail, before the hangover

    def as_dict(self) -> Dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class PipelineStats:
    chunks: int = 0
    muted_chunks: int = 0
    vad_s: float = 0.0  # wall time spent in the VAD
    utterances: int = 0
    dropped_short: int = 0
    results: List[ListenResult] = field(default_factory=list)

    @property
    def audio_s(self) -> float:
        return self.chunks * CHUNK / float(SAMPLE_RATE)

    @property
    def vad_rtf(self) -> float:
        return self.vad_s / self.audio_s if self.chunks else 0.0


class SpeechPipeline:
    """VAD → segmenter → recognizer → intent, one chunk at a time (not thread-safe)."""

    def __init__(self, vad: Vad, recognizer: Optional[Recognizer], matcher: Optional[IntentMatcher] = None,
                 settings: Optional[SegmenterSettings] = None, half_duplex: Optional[HalfDuplex] = None,
                 history: int = 200, early_intent: bool = True) -> None:
        self.vad = vad
        self.recognizer = recognizer
        self.matcher = matcher or IntentMatcher()
        self.segmenter = Segmenter(settings)
        self.half_duplex = half_duplex
        self.stats = PipelineStats()
        self.history = history
        self.early_intent = early_intent and recognizer is not None
        self._early: Optional[ListenResult] = None  # the intent already reported for the open utterance
        self._was_muted = False

    def feed(self, chunk: np.ndarray, arrived: Optional[float] = None) -> Optional[ListenResult]:
        """One 512-sample chunk; ``arrived`` is when it came off the device (perf_counter)."""
        arrived = time.perf_counter() if arrived is None else arrived
        self.stats.chunks += 1
        if self.half_duplex is not None and self.half_duplex.muted():
            self.stats.muted_chunks += 1
            if not self._was_muted:
                self.vad.reset()
            self._was_muted = True
            self.segmenter.skip(1)
            self._early = None
            return None
        self._was_muted = False
        t0 = time.perf_counter()
        p = self.vad.prob(chunk)
        self.stats.vad_s += time.perf_counter() - t0
        utt = self.segmenter.push(chunk, p)
        if utt is not None:
            return self._closed(utt, arrived)
        if self.early_intent and self._early is None:
            pending = self.segmenter.pending()
            if pending is not None:
                res = self._recognize(pending, arrived)
                if res.intent is not None:  # the words so far already decide: do not wait out the hangover
                    res.early = True
                    self._early = res
                    self._keep(res)
                    return res
        return None

    def finish(self) -> Optional[ListenResult]:
        """End of stream: the utterance in progress, if any."""
        utt = self.segmenter.flush()
        return self._closed(utt, time.perf_counter()) if utt is not None else None

    def _closed(self, utt: Utterance, arrived: float) -> Optional[ListenResult]:
        """A closed utterance: recognized, unless its intent was already reported on the same samples."""
        early, self._early = self._early, None
        self.stats.utterances += 1
        self.stats.dropped_short = self.segmenter.dropped_short
        if early is not None and early.end_s == round(utt.end_s, 3):
            return None  # no speech after the early decision: the same samples, the same answer
        res = self._recognize(utt, arrived)
        if early is not None and res.intent == early.intent:
            return None  # speech went on, the intent stands: report it once
        self._keep(res)
        return res

    def _keep(self, res: ListenResult) -> None:
        self.stats.results.append(res)
        del self.stats.results[: -self.history]

    def _recognize(self, utt: Utterance, arrived: float) -> ListenResult:
        res = ListenResult(round(utt.start_s, 3), round(utt.end_s, 3), round(utt.duration, 3), truncated=utt.truncated)
        if self.recognizer is not None:
            try:
                rec = self.recognizer.recognize(utt.samples)
            except Exception as exc:  # a recognizer failure loses one utterance, not the loop
                log.exception("recognizer failed")
                res.error = "recognizer failed: {}: {}".format(type(exc).__name__, exc)
            else:
                res.text, res.keyword, res.asr_ms = rec.text, rec.keyword, rec.ms
                res.rtf = rec.ms / 1000.0 / max(utt.duration, 1e-3)
                m = self.matcher.match(rec.keyword or rec.text)
                res.intent, res.score, res.phrase = m.intent, m.score, m.phrase
        res.end_to_intent_ms = (utt.closed_s - utt.end_s) * 1000.0 + (time.perf_counter() - arrived) * 1000.0
        return res


def listen_through(pipeline: SpeechPipeline, chunks: Any) -> List[ListenResult]:
    """Every utterance of a finite chunk stream (a recording), including one still open at the end."""
    results = []
    for chunk in chunks:
        result = pipeline.feed(chunk)
        if result is not None:
            results.append(result)
    last = pipeline.finish()
    if last is not None:
        results.append(last)
    return results


class MicLoop:
    """A thread: ``source`` → :class:`SpeechPipeline` → ``post(Heard(text, intent))``.

    ``post`` is ``Kiosk.post``; ``is_speaking`` is the speaker's property getter (half-duplex).
    An audio device that fails is reported once through ``on_status`` and the loop ends; the
    kiosk goes on without voice.
    """

    def __init__(self, source: AudioSource, pipeline: SpeechPipeline, post: Callable[..., None],
                 on_status: Optional[Callable[[str], None]] = None,
                 on_result: Optional[Callable[[ListenResult], None]] = None) -> None:
        self.source = source
        self.pipeline = pipeline
        self.post = post
        self.on_status = on_status or (lambda s: log.info("mic: %s", s))
        self.on_result = on_result
        self.error: Optional[str] = None
        self._thread = threading.Thread(target=self._run, name="mic-loop", daemon=True)

    @property
    def results(self) -> List[ListenResult]:
        return list(self.pipeline.stats.results)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        self.source.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.source.close()

    def join(self, timeout: Optional[float] = None) -> None:
        self._thread.join(timeout)

    def _emit(self, res: Optional[ListenResult]) -> None:
        if res is None:
            return
        if self.on_result is not None:
            self.on_result(res)
        if res.text:
            from kiosk.core.events import Heard

            self.post(Heard(res.text, res.intent))

    def _run(self) -> None:
        try:
            for chunk in self.source.chunks():
                self._emit(self.pipeline.feed(chunk, time.perf_counter()))
            self._emit(self.pipeline.finish())
        except Exception as exc:  # AudioInputUnavailable, a device unplugged, a bad file …
            self.error = str(exc)
            self.on_status("microphone stopped: {} (the kiosk goes on without voice)".format(exc))
            log.warning("mic loop ended: %s", exc)
