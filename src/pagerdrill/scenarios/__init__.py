"""Scenarios: the model, its loader and grading, and the check against a stack's roles."""
