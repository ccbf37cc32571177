"""pagerdrill's own traffic generator, for stacks that have no traffic of their own.

The workspace's `traffic:` profile (workspace/traffic.py) says what goes out; `runner`
sends it on aiohttp and serves what the client saw as Prometheus metrics; `process`
runs it in the background (`python -m pagerdrill.traffic`) during a drill or from
`stack up --traffic`, with its pid in the workspace's state folder so that `stack down`,
the drill's end and `recover` stop it.
"""

from pagerdrill.traffic.process import (
    running_traffic,
    start_traffic,
    stop_orphaned_traffic,
    stop_traffic,
)

__all__ = ["running_traffic", "start_traffic", "stop_orphaned_traffic", "stop_traffic"]
