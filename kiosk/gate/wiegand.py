"""Wiegand 26 / 34 bit output: the resident's card number sent to an access-control panel on a grant.

The kiosk can stand in front of an existing panel that reads card readers: it sends what a reader would. The
wire format (SIA AC-01 "Access Control: Wiegand Card Reader Interface Standard", 1996, and HID's H10301 format):

* two lines, D0 and D1, open-collector, pulled up: both idle HIGH;
* a 0 bit is a LOW pulse on D0, a 1 bit a LOW pulse on D1; pulse width 20-100 us (50 us typical), one bit
  every 200 us - 20 ms (1-2 ms typical); the most significant bit goes first;
* 26 bits (HID H10301): even parity over bits 2-13, 8-bit facility code, 16-bit card number, odd parity over
  bits 14-25 (``PFFFFFFFFCCCCCCCCCCCCCCCCP``; bits counted from 1);
* 34 bits: even parity over bits 2-17, 16-bit facility, 16-bit card (or, with facility 0, a 32-bit card number,
  as Hikvision and others send it), odd parity over bits 18-33.

Published examples these functions are tested against: facility 0xD4, card 0x1B81 (26 bits) =
``1 11010100 00011011 10000001 0``; 0x89D41B81 (34 bits) = ``1 ... 1`` (Civintec CN56 reader manual,
section 6.4); card 1234567890 (34 bits) = ``1 0100 1001 1001 0110 0000 0010 1101 0010 0`` (Hikvision manual).

The Jetson's header is 3.3 V and a panel's Wiegand inputs are usually pulled up to 5 V (or 12 V): drive each
line through an open-collector stage (an NPN transistor or an opto-coupler), never straight from the pin. With
such a stage the pin's level is inverted on the wire: set ``inverted`` (the pin goes HIGH to pull the line LOW).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

log = logging.getLogger(__name__)

FORMATS = ("26", "34")
MAX_GAP_S = 0.02  # the standard's longest bit interval: a panel may end the frame after a longer silence
RESEND_AFTER_S = 0.1  # silence before a broken frame is sent again: longer than any panel's end-of-frame wait


class WiegandError(ValueError):
    """A card number or facility code that the configured format cannot carry."""


class FrameTimingError(OSError):
    """A frame went out with a pulse or a gap too long for a panel to read it."""


def card_range(fmt: str, facility: int) -> Tuple[int, int]:
    """The card numbers ``fmt`` can send with ``facility``: 0-65535, or 0-4294967295 for 34 bits with facility 0."""
    if fmt == "34" and facility == 0:
        return 0, 0xFFFFFFFF
    return 0, 0xFFFF


def card_problem(fmt: str, facility: int, card: int) -> Optional[str]:
    """Why ``card`` cannot be sent in ``fmt`` with ``facility`` (None when it can)."""
    if fmt not in FORMATS:
        return "Wiegand format {!r}: must be 26 or 34".format(fmt)
    top = 0xFF if fmt == "26" else 0xFFFF
    if not 0 <= facility <= top:
        return "gate.wiegand_facility = {}: a {}-bit frame carries 0-{}".format(facility, fmt, top)
    low, high = card_range(fmt, facility)
    if not low <= card <= high:
        return "card number {} does not fit a Wiegand {} frame (0-{}{})".format(
            card, fmt, high, "; a 34-bit frame with facility 0 carries up to 4294967295" if fmt == "26" else "")
    return None


def _bits(value: int, width: int) -> List[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def encode(fmt: str, facility: int, card: int) -> List[int]:
    """The frame's bits, first sent first: even parity, the data (facility then card), odd parity."""
    problem = card_problem(fmt, facility, card)
    if problem:
        raise WiegandError(problem)
    data = _bits(facility, 8) + _bits(card, 16) if fmt == "26" else _bits((facility << 16) | card, 32)
    half = len(data) // 2
    even = sum(data[:half]) % 2  # makes the ones of the first half plus this bit even
    odd = 1 - sum(data[half:]) % 2  # makes the ones of the second half plus this bit odd
    return [even] + data + [odd]


def decode(bits: List[int]) -> Tuple[int, int]:
    """(facility, card) of a frame; WiegandError when its length or a parity bit is wrong (for tests and the
    recorder's own check)."""
    if len(bits) not in (26, 34):
        raise WiegandError("a Wiegand frame has 26 or 34 bits, not {}".format(len(bits)))
    data = bits[1:-1]
    half = len(data) // 2
    if (bits[0] + sum(data[:half])) % 2 != 0 or (bits[-1] + sum(data[half:])) % 2 != 1:
        raise WiegandError("parity error")
    value = int("".join(str(b) for b in data), 2)
    return value >> 16, value & 0xFFFF


def as_text(bits: List[int]) -> str:
    return "".join(str(b) for b in bits)


# ---- the output on two header pins -------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What one frame took on the wire: the bits, the longest pulse and the longest bit interval (us)."""

    bits: Tuple[int, ...]
    longest_pulse_us: float
    longest_interval_us: float


def busy_wait_until(deadline: float, clock: Callable[[], float] = time.perf_counter) -> None:
    """Spin until ``clock()`` reaches ``deadline``: sleeping is far coarser than a 50 us pulse."""
    while clock() < deadline:
        pass


class WiegandOutput:
    """D0 and D1 on two Jetson header pins (BOARD numbers), through Jetson.GPIO. Both idle released.

    ``send`` toggles the lines with busy-waits timed by ``time.perf_counter``; a pulse that came out longer than the
    bit interval (the thread was descheduled) makes the frame unreadable, so it is an error, not a silent success.
    """

    def __init__(self, d0_pin: int, d1_pin: int, pulse_us: int = 50, interval_us: int = 2000,
                 inverted: bool = False, gpio: Any = None, clock: Callable[[], float] = time.perf_counter) -> None:
        if d0_pin == d1_pin:
            raise WiegandError("gate.wiegand_d0_pin and gate.wiegand_d1_pin are the same pin ({})".format(d0_pin))
        if interval_us <= 2 * pulse_us:
            raise WiegandError("gate.wiegand_interval_us = {} must be well above the pulse ({} us)".format(
                interval_us, pulse_us))
        if gpio is None:
            try:
                import Jetson.GPIO as gpio  # type: ignore[import-not-found, no-redef]
            except (ImportError, RuntimeError) as exc:
                raise OSError("Wiegand output needs Jetson.GPIO on a Jetson ({})".format(exc)) from None
        self.gpio = gpio
        self.pins = (d0_pin, d1_pin)
        self.pulse_s = pulse_us / 1e6
        self.interval_s = interval_us / 1e6
        self.clock = clock
        # The line is pulled LOW for a bit: the pin level that does that, and the idle one.
        self.active, self.idle = (gpio.HIGH, gpio.LOW) if inverted else (gpio.LOW, gpio.HIGH)
        try:
            gpio.setwarnings(False)
            gpio.setmode(gpio.BOARD)
            gpio.setup(list(self.pins), gpio.OUT, initial=self.idle)
        except (ValueError, RuntimeError, OSError) as exc:
            raise OSError("Wiegand pins D0 = {}, D1 = {}: Jetson.GPIO cannot drive them: {}".format(
                d0_pin, d1_pin, exc)) from None

    def send(self, bits: List[int]) -> Sent:
        """Send one frame; a frame whose timing broke (the thread was descheduled mid-frame) is sent once more
        after a silence that makes the panel drop the broken one. OSError when a line could not be driven or the
        timing broke twice. Both lines end idle whatever happens."""
        try:
            return self._send_once(bits)
        except FrameTimingError as exc:
            log.warning("%s; sending it again", exc)
        time.sleep(RESEND_AFTER_S)
        return self._send_once(bits)

    def _send_once(self, bits: List[int]) -> Sent:
        """One frame; stops at the first pulse or gap too long for a panel (FrameTimingError), so that the panel
        gets a frame too short to accept rather than a misread one."""
        longest_pulse = longest_gap = 0.0
        try:
            next_bit = self.clock()
            previous: Optional[float] = None
            for number, bit in enumerate(bits, 1):
                busy_wait_until(next_bit, self.clock)
                pin = self.pins[bit]
                before = self.clock()
                self.gpio.output(pin, self.active)
                start = self.clock()  # after the call: the line is low by now, the pulse is at least pulse_us
                busy_wait_until(start + self.pulse_s, self.clock)
                self.gpio.output(pin, self.idle)
                end = self.clock()
                longest_pulse = max(longest_pulse, end - before)  # the most the line can have been low
                if previous is not None:
                    longest_gap = max(longest_gap, start - previous)
                if longest_pulse >= self.interval_s / 2 or longest_gap > MAX_GAP_S:
                    raise FrameTimingError(
                        "Wiegand frame timing broke at bit {} of {} (a pulse of {:.0f} us, a gap of {:.0f} us): "
                        "stopped there, the panel drops a short frame".format(
                            number, len(bits),
                            longest_pulse * 1e6, longest_gap * 1e6))
                previous = start
                next_bit = start + self.interval_s
        except FrameTimingError:
            self.release()
            raise
        except (ValueError, RuntimeError, OSError) as exc:
            self.release()
            raise OSError("Wiegand line could not be driven: {}".format(exc)) from None
        return Sent(tuple(bits), longest_pulse * 1e6, longest_gap * 1e6)

    def release(self) -> None:
        """Both lines idle (best effort)."""
        for pin in self.pins:
            try:
                self.gpio.output(pin, self.idle)
            except Exception as exc:  # closing: say it, carry on with the other line
                log.warning("Wiegand pin %d could not be set idle: %s", pin, exc)

    def read_back(self) -> Tuple[int, int]:
        """The two pins' levels as Jetson.GPIO reads them back."""
        return self.gpio.input(self.pins[0]), self.gpio.input(self.pins[1])

    def close(self) -> None:
        self.release()
        try:
            self.gpio.cleanup(list(self.pins))
        except Exception as exc:
            log.warning("Wiegand pins could not be cleaned up: %s", exc)
