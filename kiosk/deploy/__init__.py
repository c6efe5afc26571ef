"""The Jetson installer: ``sudo make install`` = ``python3 -m kiosk.deploy install``.

Standard library only, Python 3.8: it runs with the system python3 before any venv exists.
``facts.detect(root)`` reads the machine, ``plan.plan(facts, options)`` is a pure list of steps, each with
what it does and a check that says it is already done, and ``execute.execute`` runs them (or, with
``--dry-run``, prints them). ``verify`` runs inside the new venv; ``resolve`` is ``make jetson-deps``.
"""
