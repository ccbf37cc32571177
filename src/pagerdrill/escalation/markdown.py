"""The matrix as Markdown tables, for a team that keeps `escalation-matrix.md` in its
wiki or repo. Three tables, told apart by their first column:

| Severity | Name | Response | Level | Responders | Escalate after | Escalates to |
  Channel | Webhook | Bridge | Vendor |   (one table; wrapped here)
| Schedule | Participants | Start | Length | Handoff | Time zone | PagerDuty export |
| Vendor | Tier | Contact | Phone | Email | Chat | Webhook | Portal |

One row per escalation level (a blank tier cell repeats the row above); responders
are roster names, and `schedule: NAME` for a schedule's on-call person. The tables are
read with a CommonMark parser (markdown-it-py, GFM tables) into the same document the
YAML form gives, each value keeping its row's line.
"""

from __future__ import annotations

from pathlib import Path

from pagerdrill.escalation.load import LoadedFile
from pagerdrill.workspace.yamlfile import LineMap

TIER_KEYS = {
    "severity": "severity",
    "name": "name",
    "response": "response",
    "level": "level",
    "responders": "responders",
    "escalate after": "escalate_after",
    "escalates to": "escalates_to",
    "channel": "incident_channel",
    "incident channel": "incident_channel",
    "webhook": "channel_webhook",
    "bridge": "video_bridge",
    "video bridge": "video_bridge",
    "vendor": "vendor",
}
SCHEDULE_KEYS = {
    "schedule": "schedule",
    "participants": "participants",
    "start": "start",
    "length": "length",
    "handoff": "handoff",
    "time zone": "time_zone",
    "pagerduty export": "pagerduty",
}
VENDOR_KEYS = {
    "vendor": "name",
    "tier": "tier",
    "contact": "contact",
    "phone": "phone",
    "email": "email",
    "chat": "chat",
    "webhook": "webhook",
    "portal": "portal",
}


def _tables(text: str) -> list[tuple[list[str], list[tuple[int, list[str]]]]]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables = []
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    row: list[str] = []
    row_line = 0
    in_head = False
    for tok in tokens:
        if tok.type == "table_open":
            header, rows = [], []
        elif tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open":
            row, row_line = [], (tok.map[0] + 1 if tok.map else 0)
        elif tok.type == "inline" and tok.level >= 3:  # a cell of a row
            row.append(tok.content.strip())
        elif tok.type == "tr_close":
            if in_head:
                header = [c.lower().strip() for c in row]
            else:
                rows.append((row_line, row))
        elif tok.type == "table_close":
            tables.append((header, rows))
    return tables


def parse_markdown(text: str, path: Path, schedules_dir: Path) -> LoadedFile:
    lines = LineMap()
    data: dict = {"version": 1}
    errors: list[tuple[int | None, str]] = []
    lines.add((), 1)
    for header, rows in _tables(text):
        if not header:
            continue
        if header[0] == "severity":
            _tiers(header, rows, data, lines, errors)
        elif header[0] == "schedule":
            _schedules(header, rows, data, lines)
        elif header[0] == "vendor":
            _vendor(header, rows, data, lines)
    if "tiers" not in data:
        errors.append((None, "no table whose first column is Severity (the escalation levels)"))
    return LoadedFile(path, data, lines, tuple(errors))


def _cells(header: list[str], keys: dict, row: list[str]) -> dict[str, str]:
    return {keys.get(h, h): (row[i] if i < len(row) else "") for i, h in enumerate(header)}


def _tiers(header, rows, data, lines, errors) -> None:
    tiers = data.setdefault("tiers", {})
    lines.add(("tiers",), rows[0][0] if rows else 1)
    last = ""
    for line, row in rows:
        cells = _cells(header, TIER_KEYS, row)
        sev = cells.pop("severity") or last
        last = sev
        if not sev:
            errors.append((line, "a row with no severity (expected P0, P1, P2 or P3)"))
            continue
        tier = tiers.get(sev)
        if tier is None:
            tier = tiers[sev] = {"levels": []}
            lines.add(("tiers", sev), line)
            lines.add(("tiers", sev, "levels"), line)
        for key in (
            "name",
            "response",
            "escalates_to",
            "incident_channel",
            "channel_webhook",
            "video_bridge",
        ):
            value = cells.get(key, "")
            if value and key not in tier:
                tier[key] = value
                lines.add(("tiers", sev, key), line)
        if cells.get("vendor", "").lower() in ("yes", "y", "true", "✓"):
            tier["vendor"] = True
        level: dict = {}
        index = len(tier["levels"])
        loc = ("tiers", sev, "levels", index)
        lines.add(loc, line)
        people: list[str] = []
        for item in (x.strip() for x in cells.get("responders", "").split(",")):
            if item.lower().startswith("schedule"):
                level["schedule"] = item.split(":", 1)[-1].split(" ", 1)[-1].strip()
                lines.add((*loc, "schedule"), line)
            elif item:
                lines.add((*loc, "people", len(people)), line)
                people.append(item)
        if people:
            level["people"] = people
        if cells.get("escalate_after"):
            level["escalate_after"] = cells["escalate_after"]
            lines.add((*loc, "escalate_after"), line)
        tier["levels"].append(level)


def _schedules(header, rows, data, lines) -> None:
    schedules = data.setdefault("schedules", {})
    lines.add(("schedules",), rows[0][0] if rows else 1)
    for line, row in rows:
        cells = _cells(header, SCHEDULE_KEYS, row)
        name = cells.pop("schedule")
        loc = ("schedules", name)
        lines.add(loc, line)
        if cells.get("pagerduty"):
            schedules[name] = {"pagerduty": cells["pagerduty"]}
            continue
        rotation: dict = {}
        for key, value in cells.items():
            if key == "pagerduty" or not value:
                continue
            rotation[key] = (
                [p.strip() for p in value.split(",") if p.strip()]
                if key == "participants"
                else value
            )
            lines.add((*loc, "rotation", key), line)
        lines.add((*loc, "rotation"), line)
        schedules[name] = {"rotation": rotation}


def _vendor(header, rows, data, lines) -> None:
    vendor: dict = {"contacts": []}
    data["vendor"] = vendor
    lines.add(("vendor",), rows[0][0] if rows else 1)
    for line, row in rows:
        cells = _cells(header, VENDOR_KEYS, row)
        for key in ("name", "tier", "webhook", "portal"):
            if cells.get(key) and key not in vendor:
                vendor[key] = cells[key]
                lines.add(("vendor", key), line)
        contact = {k: cells[k] for k in ("phone", "email", "chat") if cells.get(k)}
        if cells.get("contact"):
            contact["name"] = cells["contact"]
        index = len(vendor["contacts"])
        lines.add(("vendor", "contacts", index), line)
        for key in contact:
            lines.add(("vendor", "contacts", index, key), line)
        vendor["contacts"].append(contact)
