"""Signals: probe specs, the probes that read them, alert and guard rules, expressions, logs."""
