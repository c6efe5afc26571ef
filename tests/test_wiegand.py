"""Wiegand output beside the relay: the encoder against published frames, the two-line driver through a fake
Jetson.GPIO with a recorded timeline, and a grant that sends the resident's number (or fails without touching
the relay)."""

from __future__ import annotations

import pytest
from test_gate import FakeGPIO, install_fake_gpio

from kiosk.config import Config, GateConfig, replace
from kiosk.gate.drivers import SimulatedGate, open_gate_driver
from kiosk.gate.wiegand import WiegandError, WiegandOutput, as_text, card_problem, decode, encode

# ---- the encoder: known answers -------------------------------------------------------------------------------


def test_26_bit_frames_match_published_examples():
    # Civintec CN56 reader manual, 6.4.2: data D4 1B 81 -> 1 11010100 00011011 10000001 0
    assert as_text(encode("26", 0xD4, 0x1B81)) == "1" + "11010100" "0001101110000001" + "0"
    # HID H10301, facility 1, card 1: even parity 1 (one 1 in bits 2-13), odd parity 0 (one 1 in bits 14-25)
    bits = encode("26", 1, 1)
    assert as_text(bits) == "1" + "00000001" + "0000000000000001" + "0" and int(as_text(bits), 2) == 0x2020002
    # all zeros: even parity 0, odd parity 1
    assert as_text(encode("26", 0, 0)) == "0" + "0" * 24 + "1"


def test_34_bit_frames_match_published_examples():
    # Civintec CN56 manual, 6.4.5: 89 D4 1B 81 -> 1 10001001 11010100 00011011 10000001 1
    assert as_text(encode("34", 0x89D4, 0x1B81)) == "1" + "10001001110101000001101110000001" + "1"
    # Hikvision manual: card 1234567890 = 0x499602D2 -> 1 0100 1001 1001 0110 0000 0010 1101 0010 0
    assert as_text(encode("34", 0, 1234567890)) == "1" + "01001001100101100000001011010010" + "0"


def test_decode_checks_parity_and_round_trips():
    for fmt, facility, card in (("26", 0, 0), ("26", 255, 65535), ("26", 18, 4660), ("34", 65535, 65535)):
        assert decode(encode(fmt, facility, card)) == (facility, card)
    bits = encode("26", 18, 4660)
    bits[5] ^= 1
    with pytest.raises(WiegandError, match="parity"):
        decode(bits)


def test_numbers_outside_the_format_are_refused_with_the_range():
    with pytest.raises(WiegandError, match="card number 65536 does not fit a Wiegand 26 frame"):
        encode("26", 1, 65536)
    assert "gate.wiegand_facility = 256" in card_problem("26", 256, 1)
    assert card_problem("34", 0, 0xFFFFFFFF) is None  # a 32-bit card number with facility 0
    assert "0-65535" in card_problem("34", 7, 70000)
    with pytest.raises(WiegandError):
        encode("26", 1, -1)


# ---- the driver: a timeline of levels and times ----------------------------------------------------------------


class Clock:
    """A clock that moves 1 us each time it is read: busy-waits end exactly, the timeline is exact."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        self.t += 1e-6
        return self.t


def low_pulses(gpio):
    out, start = [], {}
    for t, pin, level in gpio.timeline:
        if level == gpio.LOW:
            start[pin] = t
        elif pin in start:
            out.append((start[pin], pin, (t - start.pop(pin)) * 1e6))
    return out


def test_a_frame_is_low_pulses_on_d0_and_d1_at_the_configured_timing():
    clock = Clock()
    gpio = FakeGPIO(clock=clock)
    out = WiegandOutput(29, 31, pulse_us=50, interval_us=1000, gpio=gpio, clock=clock)
    assert gpio.levels == {29: 1, 31: 1}  # set up idle HIGH
    bits = encode("26", 0xD4, 0x1B81)
    sent = out.send(bits)
    seen = low_pulses(gpio)
    assert [1 if pin == 31 else 0 for _, pin, _ in seen] == bits  # a 0 on D0, a 1 on D1, first bit first
    widths = [w for _, _, w in seen]
    assert all(50 <= w < 55 for w in widths)
    gaps = [(b[0] - a[0]) * 1e6 for a, b in zip(seen, seen[1:])]
    assert all(1000 <= g < 1005 for g in gaps)
    assert gpio.levels == {29: 1, 31: 1} and sent.bits == tuple(bits)
    assert 50 <= sent.longest_pulse_us < 55 and 1000 <= sent.longest_interval_us < 1005
    out.close()
    assert ("cleanup", [29, 31]) in gpio.calls


def test_an_inverting_stage_flips_the_pin_levels():
    clock = Clock()
    gpio = FakeGPIO(clock=clock)
    out = WiegandOutput(29, 31, pulse_us=50, interval_us=1000, inverted=True, gpio=gpio, clock=clock)
    assert gpio.levels == {29: 0, 31: 0}  # the transistor is off: the panel's line idles HIGH
    out.send([1, 0])
    assert [(p, lvl) for _, p, lvl in gpio.timeline[2:]] == [(31, 1), (31, 0), (29, 1), (29, 0)]


def test_the_real_clock_keeps_the_pulses_and_intervals():
    """time.perf_counter and busy-waits, as on the device. This machine is shared: a frame the scheduler broke is
    refused by the driver itself (and sent again), so up to three sends are allowed for one whole frame."""
    bits = encode("34", 0x89D4, 0x1B81)
    for _ in range(3):
        gpio = FakeGPIO()
        out = WiegandOutput(29, 31, pulse_us=50, interval_us=1500, gpio=gpio)
        try:
            out.send(bits)
        except OSError:
            continue
        break
    else:
        pytest.fail("no whole Wiegand frame in three sends (six tries)")
    seen = low_pulses(gpio)[-34:]  # the frame that went out whole (after a broken try, if there was one)
    assert [1 if pin == 31 else 0 for _, pin, _ in seen] == bits
    assert all(50 <= w < 750 for _, _, w in seen)
    gaps = sorted((b[0] - a[0]) * 1e6 for a, b in zip(seen, seen[1:]))
    assert 1500 <= gaps[len(gaps) // 2] < 1800  # the median bit interval: busy-waited on time.perf_counter


def test_a_pulse_stretched_past_the_interval_is_an_error_and_the_lines_end_idle():
    clock = Clock()
    gpio = FakeGPIO(clock=clock)
    out = WiegandOutput(29, 31, pulse_us=50, interval_us=1000, gpio=gpio, clock=clock)
    real_output = gpio.output

    def slow_output(pin, level):  # the thread was descheduled while D1 was held LOW
        real_output(pin, level)
        if level == gpio.LOW and pin == 31:
            clock.t += 0.005

    gpio.output = slow_output
    with pytest.raises(OSError, match="timing broke at bit 2 of 3"):
        out.send([0, 1, 0])  # broken twice: sent once more, then an error
    assert gpio.levels == {29: 1, 31: 1}
    # each try stops at the stretched pulse (bit 2): the panel gets two short frames, never a misread one
    assert [pin for _, pin, level in gpio.timeline if level == gpio.LOW] == [29, 31, 29, 31]


def test_a_frame_broken_once_is_sent_again_after_a_silence():
    clock = Clock()
    gpio = FakeGPIO(clock=clock)
    out = WiegandOutput(29, 31, pulse_us=50, interval_us=1000, gpio=gpio, clock=clock)
    real_output = gpio.output
    stalls = [0.005]

    def stall_once(pin, level):
        real_output(pin, level)
        if level == gpio.LOW and stalls:
            clock.t += stalls.pop()

    gpio.output = stall_once
    sent = out.send([1, 0, 1])
    assert sent.longest_pulse_us < 60
    # the first try stops after its first (stretched) bit; the second frame goes out whole
    assert [pin for _, pin, level in gpio.timeline if level == gpio.LOW] == [31, 31, 29, 31]


def test_a_line_that_cannot_be_driven_is_an_error_and_both_lines_are_released():
    gpio = FakeGPIO()
    out = WiegandOutput(29, 31, gpio=gpio)
    real_output = gpio.output
    calls = []

    def failing(pin, level):
        calls.append((pin, level))
        if len(calls) == 3:
            raise RuntimeError("line released by another process")
        real_output(pin, level)

    gpio.output = failing
    with pytest.raises(OSError, match="could not be driven"):
        out.send([0, 1, 1])
    assert gpio.levels == {29: 1, 31: 1}


def test_bad_pin_settings_are_refused():
    with pytest.raises(WiegandError, match="same pin"):
        WiegandOutput(29, 29, gpio=FakeGPIO())
    with pytest.raises(OSError, match="Channel 3 is invalid"):
        WiegandOutput(3, 31, gpio=FakeGPIO())


# ---- beside the relay: a grant sends the resident's number; a failure never touches the relay -------------


WIEGAND = dict(wiegand="26", wiegand_facility=18, wiegand_pulse_us=50, wiegand_interval_us=1000)


def fake_jetson(monkeypatch):
    """A fake Jetson.GPIO and a Wiegand output timed by the fake's stepping clock (the real clock is tested above;
    here a busy shared machine must not break frames)."""
    import functools

    from kiosk.gate import drivers

    clock = Clock()
    gpio = install_fake_gpio(monkeypatch, FakeGPIO(clock=clock))
    monkeypatch.setattr(drivers, "WiegandOutput", functools.partial(WiegandOutput, clock=clock))
    return gpio


def test_the_driver_sends_a_card_and_a_failure_is_a_wiegand_fault_only(monkeypatch):
    gpio = fake_jetson(monkeypatch)
    gate = open_gate_driver(GateConfig(**WIEGAND))
    assert isinstance(gate, SimulatedGate) and gate.wiegand is not None and gate.wiegand_fault is None
    assert gate.send_card(4660) is True
    bits = [1 if pin == 31 else 0 for _, pin, _ in low_pulses(gpio)]
    assert decode(bits) == (18, 4660)
    assert gate.send_card(70000) is False and "does not fit a Wiegand 26 frame" in gate.wiegand_fault
    assert gate.state == "closed" and gate.pulse(60) and gate.state == "open"  # the relay is not affected
    assert gate.send_card(1) is True and gate.wiegand_fault is None  # the next good frame clears it
    gate.close()


def test_wiegand_that_cannot_be_set_up_leaves_the_relay_working(monkeypatch, home):
    from kiosk.gate.startup import open_gate_first

    fake_jetson(monkeypatch)
    config = GateConfig(driver="gpio", gpio_pin=29, guardian=False, **WIEGAND)
    opened = open_gate_first(home, config)
    assert opened.problems == ["gate: Wiegand output unavailable: gate.wiegand_d0_pin = 29 is the relay's pin "
                               "(gate.gpio_pin): a frame would pulse the relay"]
    opened.driver.close()
    gate = open_gate_driver(config)
    assert gate.state == "closed" and gate.wiegand is None
    assert "is the relay's pin" in gate.wiegand_fault
    assert gate.send_card(5) is False and gate.pulse(100) is True
    gate.close()


def test_config_check_names_wiegand_problems(home, capsys, monkeypatch):
    from kiosk.cli import main
    from kiosk.config import save_config

    fake_jetson(monkeypatch)
    save_config(replace(Config(), "gate", driver="gpio", gpio_pin=31, wiegand="26", wiegand_d0_pin=2), home.config)
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "gate.wiegand_d0_pin = 2: not a GPIO pin" in err and "gate.wiegand_d1_pin = 31 is the relay's pin" in err


def test_a_grant_sends_the_residents_number_beside_the_relay(tmp_path, monkeypatch):
    from test_pipeline import FACE, VALID, Voice

    from kiosk.core.events import PassPresented
    from kiosk.runtime.kiosk import Kiosk
    from kiosk.store.accesslog import AccessLog
    from kiosk.store.db import Database

    gpio = fake_jetson(monkeypatch)
    config = replace(Config(), "gate", **WIEGAND)
    gate = open_gate_driver(config.gate)
    kiosk = Kiosk(config, gate, Voice(), AccessLog(Database(tmp_path / "db.sqlite"), tmp_path / "s.jsonl"),
                  media_clock=True)
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    assert len(gate.pulses) == 1
    assert decode([1 if pin == 31 else 0 for _, pin, _ in low_pulses(gpio)]) == (18, VALID.resident_id)
    assert any("Wiegand 26 card 1 sent" in e.text for e in kiosk.timeline)

    # The Wiegand lines break: the next grant still pulses the relay and is logged as opened; the fault is noted.
    def broken(pin, level):
        raise RuntimeError("line gone")

    gpio.output = broken
    gate.release()
    kiosk = Kiosk(config, gate, Voice(), AccessLog(Database(tmp_path / "db2.sqlite"), tmp_path / "s2.jsonl"),
                  media_clock=True)
    for i in range(3):
        kiosk.handle(FACE, 0.1 * i)
    kiosk.handle(PassPresented(VALID), 0.35)
    assert len(gate.pulses) == 2 and gate.wiegand_fault and "could not be driven" in gate.wiegand_fault
    rows = kiosk.access_log.list()
    assert [(r["outcome"], r["gate_opened"]) for r in rows] == [("granted", 1)]
    assert any("Wiegand 26 card 1 FAULT" in e.text for e in kiosk.timeline)
    gate.close()


def test_the_guardian_reports_a_wiegand_output_it_cannot_set_up(tmp_path):
    """The guardian runs in its own process (no fake Jetson.GPIO there): its Wiegand fault reaches the kiosk, and
    the serial relay it drives works as before."""
    pytest.importorskip("serial")
    from kiosk.gate.recorder import RelayRecorder

    with RelayRecorder() as relay:
        gate = open_gate_driver(GateConfig(**dict(relay.gate_settings(), **WIEGAND)))
        try:
            assert type(gate).__name__ == "GuardedGate"
            assert gate.wiegand_fault and "Jetson.GPIO" in gate.wiegand_fault
            assert gate.send_card(7) is False and "Jetson.GPIO" in gate.wiegand_fault
            assert gate.pulse(100) and relay.wait_for("on", timeout=1) is not None
        finally:
            assert gate.close() is True
        assert relay.is_on() is False


def test_gate_test_sends_one_wiegand_frame(home, capsys, monkeypatch):
    from kiosk.cli import main
    from kiosk.config import save_config

    gpio = fake_jetson(monkeypatch)
    save_config(replace(Config(), "gate", **WIEGAND), home.config)
    assert main(["gate", "test", "--wiegand", "4660"]) == 0
    out = capsys.readouterr().out
    assert "Wiegand 26 sent: facility 18, card 4660 = " + as_text(encode("26", 18, 4660)) in out
    assert decode([1 if pin == 31 else 0 for _, pin, _ in low_pulses(gpio)]) == (18, 4660)
    assert main(["gate", "test", "--wiegand", "70000"]) == 2
    assert "does not fit" in capsys.readouterr().err
