"""The reference stack's services, each run as `python -m pagerdrill.refstack.NAME`."""
