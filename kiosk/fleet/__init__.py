"""A community of gates kept in step through an MQTT broker (issue 14).

* :mod:`kiosk.fleet.broker` — ``dabai-kiosk fleet init`` / ``add-kiosk``: the Mosquitto configuration with TLS, the
  community's own certificate authority, a client certificate per kiosk and per office, and the ACL that lets a
  kiosk publish only its own log topic and read only its community's topics.
* :mod:`kiosk.fleet.documents` — the office's signed, versioned registry, policy and key documents, and how a kiosk
  checks and applies them atomically.
* :mod:`kiosk.fleet.lists` — publishing the lists (retained) and the kiosk's follower that applies or refuses them.
* :mod:`kiosk.fleet.logsync` — the access log up to the office, at least once, de-duplicated by (kiosk, seq).
* :mod:`kiosk.fleet.link` — the kiosk's one connection (log up, lists down, heartbeat) and the out-of-touch rule.
* :mod:`kiosk.fleet.office` — ``dabai-kiosk office``: publishes what changes at the issuing station, collects logs.

Topics (``COMMUNITY`` is the fleet's name, letters, digits, ``-`` and ``_``)::

    dabai/COMMUNITY/lists/...         the office publishes signed lists and policy; kiosks read
    dabai/COMMUNITY/log/KIOSK         one kiosk's access-log records; only that kiosk writes, the office reads
    dabai/COMMUNITY/status/KIOSK      one kiosk's heartbeat and list versions; only that kiosk writes
    dabai/COMMUNITY/ack/KIOSK         the office: the records of KIOSK it holds (retained); only KIOSK reads

A single kiosk with no broker needs none of this and keeps working as before.
"""
