"""Targets: the stacks pagerdrill can drill (the local reference stack; compose later)."""
