"""Tool access probes: an HTTP request to each URL the gate names, its status only.
Redirects are not followed, so no host the gate does not name is contacted."""

from __future__ import annotations

import urllib.error
import urllib.request

from pagerdrill.readiness.gate import Tool
from pagerdrill.readiness.records import ToolCheck

TIMEOUT_S = 3.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def probe(tool: Tool, timeout_s: float = TIMEOUT_S) -> ToolCheck:
    """The tool's HTTP status (any status means it answered), or why it did not."""
    if not tool.url:
        return ToolCheck(name=tool.name)
    if not tool.url.startswith(("http://", "https://")):
        return ToolCheck(name=tool.name, url=tool.url, error="not an http(s) URL")
    request = urllib.request.Request(tool.url, method="GET", headers={"User-Agent": "pagerdrill"})
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            return ToolCheck(name=tool.name, url=tool.url, status=response.status)
    except urllib.error.HTTPError as exc:
        return ToolCheck(name=tool.name, url=tool.url, status=exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return ToolCheck(name=tool.name, url=tool.url, error=str(reason) or type(exc).__name__)
