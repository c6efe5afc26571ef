"""What ``dabai-kiosk``'s exit status says happened (systemd's journal and the fault bench read it)."""

OK = 0
FAILED = 1  # a check found a problem: log verify, pass verify, doctor
USAGE = 2  # a bad argument or configuration: fix it and run again
STORAGE = 3  # the database or the data home cannot be used (damaged, foreign, read-only, full, locked)
UNSAVED = 4  # access-log records could not be written anywhere (they were printed on stderr)
GATE = 5  # the gate relay could not be driven closed
