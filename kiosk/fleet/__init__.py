"""A community of gates kept in step through an MQTT broker (issue 14).

* :mod:`kiosk.fleet.broker` — ``dabai-kiosk fleet init`` / ``add-kiosk``: the Mosquitto configuration with TLS, the
  community's own certificate authority, a client certificate per kiosk and per office, and the ACL that lets a
  kiosk publish only its own log topic and read only its community's topics.

Topics (``COMMUNITY`` is the fleet's name, letters, digits, ``-`` and ``_``)::

    dabai/COMMUNITY/lists/...         the office publishes signed lists and policy; kiosks read
    dabai/COMMUNITY/log/KIOSK         one kiosk's access-log records; only that kiosk writes, the office reads
    dabai/COMMUNITY/status/KIOSK      one kiosk's heartbeat and list versions; only that kiosk writes
    dabai/COMMUNITY/ack/KIOSK         the office: the records of KIOSK it holds (retained); only KIOSK reads

A single kiosk with no broker needs none of this and keeps working as before.
"""
