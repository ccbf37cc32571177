"""The on-call readiness gate: each engineer's go/no-go items (`readiness/gate.yaml`),
the entries recorded for them (`readiness/records/ENGINEER/`), their status computed
from those entries and the evidence they point at, sign-offs (optionally SSH-signed
in-toto Statements) and their verification. No UI here: the CLI
(`pagerdrill.cli.readiness`) renders what these return."""
