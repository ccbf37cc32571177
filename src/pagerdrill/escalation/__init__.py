"""The escalation matrix as a checked artefact: who is paged for each severity tier, how
to reach them, who is on call at any minute (workspace rotations and PagerDuty schedule
exports, resolved offline), and every problem that would leave a page unanswered.

No UI here: the CLI (`pagerdrill.cli.escalation`) and the readiness gate call
`load_workspace_matrix` and `validate`, and print the problems themselves.
"""
