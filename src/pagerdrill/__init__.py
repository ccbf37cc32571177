"""pagerdrill: incident drills and on-call readiness on a real stack."""

__version__ = "0.1.0"
