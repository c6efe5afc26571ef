"""Modbus RTU relay boards: the frames against published bytes, and the real driver (pyserial) talking to a simulated
board on a pseudo-terminal, directly and through the guardian."""

from __future__ import annotations

import time

import pytest

from kiosk.config import ConfigError, GateConfig, config_from_dict
from kiosk.gate import modbus
from kiosk.gate.modbus import ModbusError

# ---- frames: known answers ------------------------------------------------------------------------------------


def test_crc16_modbus_check_value():
    assert modbus.crc16(b"123456789") == 0x4B37  # the catalogued check value of CRC-16/MODBUS


def test_write_and_read_coil_frames_match_the_published_bytes():
    assert modbus.write_coil_frame(1, 0, True) == bytes.fromhex("01 05 00 00 FF 00 8C 3A")
    assert modbus.write_coil_frame(1, 0, False) == bytes.fromhex("01 05 00 00 00 00 CD CA")
    assert modbus.read_coil_frame(1, 0) == bytes.fromhex("01 01 00 00 00 01 FD CA")
    assert modbus.with_crc(bytes.fromhex("010300000001")) == bytes.fromhex("01 03 00 00 00 01 84 0A")
    frame = modbus.write_coil_frame(17, 0x0102, True)
    assert frame[:6] == bytes.fromhex("11 05 01 02 FF 00")  # coil big-endian, CRC low byte first
    assert modbus.crc16(frame[:6]) == frame[6] | frame[7] << 8
    with pytest.raises(ValueError):
        modbus.write_coil_frame(248, 0, True)


def test_answers_are_parsed_and_every_damage_is_named():
    on = modbus.write_coil_frame(1, 0, True)
    modbus.parse_write_echo(on, on)
    assert modbus.parse_read_coil(modbus.with_crc(bytes.fromhex("01 01 01 01")), 1) is True
    assert modbus.parse_read_coil(modbus.with_crc(bytes.fromhex("01 01 01 00")), 1) is False
    with pytest.raises(ModbusError, match="bad CRC"):
        modbus.parse_write_echo(on[:-1] + b"\x00", on)
    with pytest.raises(ModbusError, match="exception 2"):
        modbus.parse_write_echo(modbus.with_crc(bytes.fromhex("01 85 02")), on)
    with pytest.raises(ModbusError, match="differs"):
        modbus.parse_write_echo(modbus.write_coil_frame(1, 0, False), on)
    with pytest.raises(ModbusError, match="address 2"):
        modbus.parse_read_coil(modbus.with_crc(bytes.fromhex("02 01 01 00")), 1)
    with pytest.raises(ModbusError, match="short"):
        modbus.parse_read_coil(b"\x01", 1)


def test_config_validates_the_modbus_keys():
    config = config_from_dict({"gate": {"driver": "modbus", "modbus_address": 5, "modbus_coil": 3}}).gate
    assert (config.modbus_baud, config.modbus_parity, config.modbus_stop_bits) == (9600, "N", 1)
    with pytest.raises(ConfigError, match="gate.modbus_address = 0"):
        config_from_dict({"gate": {"driver": "modbus", "modbus_address": 0}})
    with pytest.raises(ConfigError, match="gate.modbus_parity"):
        config_from_dict({"gate": {"modbus_parity": "X"}})


# ---- the real driver against a simulated board on a pty -----------------------------------------------------

serial = pytest.importorskip("serial")

from kiosk.gate.drivers import open_gate_driver  # noqa: E402
from kiosk.gate.recorder import ModbusSlave  # noqa: E402


@pytest.fixture
def board():
    with ModbusSlave() as slave:
        yield slave


def config_for(board, **values):
    return GateConfig(**dict(board.gate_settings(), **values))


def test_driver_switches_the_coil_reads_it_back_and_closes(board):
    gate = open_gate_driver(config_for(board, guardian=False))
    try:
        assert board.wait_for(False, timeout=1) is not None and gate.state == "closed"  # driven closed first
        assert gate.read_back() is False
        assert gate.pulse(5000) and board.coils[0] is True and gate.read_back() is True
        assert gate.drive_closed() and board.coils[0] is False
        functions = [e.function for e in board.events]
        assert functions[-2:] == [5, 1]  # a close is written, then read back with function 01
    finally:
        assert gate.close() is True
    assert board.coils[0] is False


def test_a_board_that_does_not_answer_is_a_fault_and_no_pulse_follows(board):
    gate = open_gate_driver(config_for(board, guardian=False))
    gate.fault_retry_s = 30
    board.mode = "silent"
    assert gate.pulse(100) is False
    assert gate.state == "fault" and "no answer from Modbus address 1" in gate.fault
    board.mode = "ok"
    assert gate.pulse(100) is True  # the close goes through first, then it opens
    assert gate.close() is True and board.coils[0] is False


@pytest.mark.parametrize("mode, error", [("bad crc", "bad CRC"), ("exception", "exception 4"),
                                         ("stuck", "still reads ON")])
def test_a_damaged_refused_or_stuck_close_is_retried_then_a_fault(board, mode, error):
    gate = open_gate_driver(config_for(board, guardian=False))
    gate.fault_retry_s = 30
    gate.close_backoff_s = 0.01
    assert gate.pulse(5000)
    board.mode = mode
    before = len(board.writes())
    assert gate.drive_closed() is False
    assert gate.state == "fault" and error in gate.fault
    assert len(board.writes()) - before == 3  # three tries of the close
    board.mode = "ok"
    board.coils[0] = board.coils[0]  # a stuck coil stays as it is until a working close
    assert gate.close() is True and board.coils[0] is False


def test_the_guardian_drives_a_modbus_board_and_releases_it_on_its_own_clock(board):
    gate = open_gate_driver(config_for(board, max_pulse_ms=100))
    try:
        assert type(gate).__name__ == "GuardedGate" and gate.state == "closed"
        started = time.time()
        assert gate.pulse(5000)
        on = board.wait_for(True, timeout=1)
        off = board.wait_for(False, after=on, timeout=2)
        assert on is not None and off is not None and 0.09 <= off.t - started < 2.0
        assert gate.read_back() is False
    finally:
        assert gate.close() is True
    assert board.coils[0] is False


def test_gate_close_and_test_on_a_modbus_board(home, capsys, board):
    from kiosk.cli import main
    from kiosk.config import Config, replace, save_config

    save_config(replace(Config(), "gate", **board.gate_settings()), home.config)
    board.coils[0] = True  # a kiosk killed during a pulse
    assert main(["gate", "close"]) == 0
    assert "coil read back: released" in capsys.readouterr().out and board.coils[0] is False
    assert main(["gate", "test", "--ms", "100"]) == 0
    out = capsys.readouterr().out
    assert "Modbus RTU relay, address 1 coil 0" in out and "energised during the pulse, released after" in out
    board.mode = "stuck"
    board.coils[0] = True
    assert main(["gate", "close"]) == 5  # exitcodes.GATE: the coil still reads on
    assert "still reads ON" in capsys.readouterr().err


def test_config_check_names_a_missing_adapter_and_an_odd_baud_rate(home, capsys):
    from kiosk.cli import main
    from kiosk.config import Config, replace, save_config

    save_config(replace(Config(), "gate", driver="modbus", serial_port="/dev/ttyNOPE7", modbus_baud=10000),
                home.config)
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "gate.serial_port = '/dev/ttyNOPE7': no such device (is the RS485 adapter plugged in?)" in err
    assert "gate.modbus_baud = 10000: not a baud rate relay boards use" in err
