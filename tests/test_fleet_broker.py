"""The fleet's broker (issue 14): ``fleet init`` and ``fleet add-kiosk`` make a CA, certificates, a Mosquitto
configuration and an ACL; a real Mosquitto on loopback then lets each member only where the ACL says: a kiosk
publishes its own log topic and reads the lists, never another kiosk's log or the lists' topics for writing; a
client without a certificate from the fleet's CA is refused."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
import time
from pathlib import Path

import pytest

from kiosk.fleet.broker import BrokerProcess, FleetError, add_member, find_mosquitto, init_fleet, load_fleet, member_files

MOSQUITTO = find_mosquitto()
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (the bootstrap installs "
                                                                "the Debian package mosquitto with the dev extras)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_init_and_enrol_write_the_ca_certificates_and_acl(tmp_path):
    folder = tmp_path / "fleet"
    fleet = init_fleet(folder, "dabai-garden", port=18883)
    assert fleet.members == ["office"]
    for name in ("ca.key", "broker/server.key", "members/office/office.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    bundle = add_member(folder, "gate-north")
    assert member_files(bundle)[0] == "gate-north" and (bundle / "ca.crt").read_bytes() == (folder / "ca.crt").read_bytes()
    acl = (folder / "broker" / "acl").read_text()
    assert ("user gate-north\ntopic read dabai/dabai-garden/lists/#\ntopic read dabai/dabai-garden/ack/gate-north\n"
            "topic write dabai/dabai-garden/log/gate-north") in acl
    assert "user office\ntopic readwrite dabai/dabai-garden/#" in acl
    conf = (folder / "broker" / "mosquitto.conf").read_text()
    assert "require_certificate true" in conf and "allow_anonymous false" in conf and "listener 18883" in conf
    assert load_fleet(folder).members == ["office", "gate-north"]
    with pytest.raises(FleetError, match="already enrolled"):
        add_member(folder, "gate-north")
    with pytest.raises(FleetError, match="letters, digits"):
        add_member(folder, "gate/#")
    with pytest.raises(FleetError, match="already holds a fleet"):
        init_fleet(folder, "dabai-garden")


def Broker(conf: Path) -> BrokerProcess:
    """A real Mosquitto with a fleet's configuration, listening once start() returns."""
    return BrokerProcess(conf)


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


class Member:
    """A paho-mqtt client with a member's certificate; keeps what it receives."""

    def __init__(self, bundle: Path, port: int) -> None:
        import paho.mqtt.client as mqtt

        name, ca, cert, key = member_files(bundle)
        self.received = []
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
        self.client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = lambda c, u, f, rc, p=None: rc == 0 and self.connected.set()
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
        self.client.connect("localhost", port)
        self.client.loop_start()
        assert self.connected.wait(10), "{} did not connect".format(name)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@needs_mosquitto
def test_a_real_broker_keeps_each_member_to_its_topics(tmp_path):
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'dabai-kiosk[fleet]')")
    folder = tmp_path / "fleet"
    port = free_port()
    init_fleet(folder, "garden", port=port, bind="127.0.0.1")
    north, south = add_member(folder, "gate-north"), add_member(folder, "gate-south")
    broker = Broker(folder / "broker" / "mosquitto.conf")
    broker.start()
    members = []
    try:
        office, kiosk, other = (Member(b, port) for b in (folder / "members" / "office", north, south))
        members += [office, kiosk, other]
        office.subscribe("dabai/garden/log/#")
        kiosk.subscribe("dabai/garden/lists/#")
        kiosk.subscribe("dabai/garden/log/#")  # the ACL gives it nothing here: other kiosks' logs stay private
        kiosk.publish("dabai/garden/log/gate-north", b"north 1")
        kiosk.publish("dabai/garden/log/gate-south", b"forged by north")  # not its topic: dropped by the broker
        kiosk.publish("dabai/garden/lists/revocations", b"forged list")  # kiosks never write the lists
        other.publish("dabai/garden/log/gate-south", b"south 1")
        office.publish("dabai/garden/lists/revocations", b"list v2")
        wait_for(lambda: len(office.received) >= 2 and kiosk.received, timeout=5)
        time.sleep(0.3)  # anything the ACL let through would have arrived by now
        assert sorted(office.received) == [("dabai/garden/log/gate-north", b"north 1"),
                                           ("dabai/garden/log/gate-south", b"south 1")]
        assert kiosk.received == [("dabai/garden/lists/revocations", b"list v2")]
    finally:
        for m in members:
            m.close()
        broker.stop()


@needs_mosquitto
def test_a_client_without_the_fleets_certificate_is_refused(tmp_path):
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'dabai-kiosk[fleet]')")
    folder, stranger = tmp_path / "fleet", tmp_path / "stranger"
    port = free_port()
    init_fleet(folder, "garden", port=port, bind="127.0.0.1")
    init_fleet(stranger, "garden", port=port)  # same names, another CA
    intruder = add_member(stranger, "gate-north")
    broker = Broker(folder / "broker" / "mosquitto.conf")
    broker.start()
    try:
        with pytest.raises((AssertionError, ssl.SSLError, OSError)):
            Member(intruder, port)
    finally:
        broker.stop()
