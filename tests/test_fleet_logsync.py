"""A kiosk's access log reaches the office through a real Mosquitto (issue 14 item 2): every record once after
de-duplication, in a verified hash chain, also when the broker and the office go away and come back."""

from __future__ import annotations

import threading
import time

import pytest

from kiosk.core.events import Decision
from kiosk.fleet.broker import add_member, init_fleet, load_fleet

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (pip install 'dabai-kiosk[fleet]')")

from tests.test_fleet_broker import Broker, free_port, needs_mosquitto, wait_for  # noqa: E402


@needs_mosquitto
def test_every_record_reaches_the_office_once_across_broker_and_office_outages(tmp_path, home):
    from kiosk.fleet.logsync import Collector, Uplink, connect_client
    from kiosk.runtime.assemble import open_store

    folder = tmp_path / "fleet"
    init_fleet(folder, "garden", port=free_port(), bind="127.0.0.1")
    bundle = add_member(folder, "gate-north")
    fleet = load_fleet(folder)
    broker = Broker(folder / "broker" / "mosquitto.conf")
    broker.start()
    store = open_store(home, writer=True)
    stops = []

    def start_collector():
        collector = Collector(fleet, connect_client(folder / "members" / "office", fleet, "office-collector", clean=False),
                              tmp_path / "office.db")
        stop = threading.Event()
        threading.Thread(target=collector.run, args=(stop,), daemon=True).start()
        stops.append(stop)
        return collector, stop

    def decide(n, start):
        for i in range(n):
            store.access_log.append(Decision("granted" if i % 3 else "denied", "ok" if i % 3 else "no_mask",
                                             resident_id=start + i, resident_name="住户{}".format(start + i)), durable=True)

    try:
        collector, collector_stop = start_collector()
        uplink = Uplink("gate-north", fleet, connect_client(bundle, fleet, "gate-north"), store.access_log.chained_after,
                        home.state / "fleet-uplink.json", resend_s=1.0)
        uplink_stop = threading.Event()
        threading.Thread(target=uplink.run, args=(uplink_stop,), daemon=True).start()
        stops.append(uplink_stop)
        decide(300, 0)
        assert wait_for(lambda: collector.count("gate-north") == 300 and uplink.acked == 300)

        broker.stop()  # the broker goes away; the kiosk keeps deciding
        decide(200, 300)
        broker.start()
        assert wait_for(lambda: collector.count("gate-north") == 500 and uplink.acked == 500, timeout=30)

        collector_stop.set()  # the office goes away; the broker keeps its session's messages
        time.sleep(0.5)
        collector.close()
        decide(200, 500)
        assert wait_for(lambda: uplink.sent_count >= 700)
        collector, collector_stop = start_collector()
        assert wait_for(lambda: collector.count("gate-north") == 700 and uplink.acked == 700, timeout=30)

        uplink.acked = uplink.sent = 100  # as after a lost state file: 600 records again, all duplicates
        assert wait_for(lambda: collector.duplicates >= 600, timeout=30)
        assert collector.count("gate-north") == 700 and collector.refused == 0
        verdict = collector.verify("gate-north")
        assert (verdict["ok"], verdict["records"], verdict["gaps"]) == (True, 700, 0)
        with collector._lock:
            collector.db.execute("UPDATE fleet_log SET reason = 'forged' WHERE kiosk = 'gate-north' AND seq = 42")
        assert collector.verify("gate-north")["bad_seq"] == 42  # an edited record breaks the chain at that record
    finally:
        for stop in stops:
            stop.set()
        time.sleep(0.3)
        store.close()
        broker.stop()
