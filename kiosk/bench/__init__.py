"""Benchmarks of the kiosk's vision parts on named synthetic sets (no downloads, seeded, reproducible)."""
