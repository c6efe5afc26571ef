"""Dabai (大白) gate kiosk."""

__version__ = "0.1.0"
