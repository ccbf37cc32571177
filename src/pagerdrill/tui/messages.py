"""The messages the drill app's workers send to its UI thread.

Workers run the engine, the stack and the exports off the UI thread; what they learn
comes back as one of these (`post_message` is thread-safe and never waits on the UI,
so an engine thread holding its lock cannot deadlock against the UI thread). Messages
a screen sends to the app are nested in that screen's class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from pagerdrill.journal.events import Event
from pagerdrill.journal.summary import Summary


@dataclass
class EngineEvent(Message):
    """An event the engine journalled (sent from whichever thread drove the engine)."""

    event: Event


@dataclass
class StackLine(Message):
    """A line of progress while the stack comes up."""

    text: str


@dataclass
class Notice(Message):
    """Something the engineer should see (an action refused, an error)."""

    text: str
    severity: str = "warning"


@dataclass
class DrillFinished(Message):
    """The engine closed or aborted; the summary is computed from the journal."""

    summary: Summary


class QuitDone(Message):
    """The abort (and its reverts) finished: the app can exit."""


@dataclass
class TimelineExported(Message):
    """The summary's Slack timeline was saved at `path`: `text` goes to the clipboard."""

    path: Path
    text: str


@dataclass
class ServicesListed(Message):
    """The target's services, for the logs pane's one-service view."""

    services: list[str]


@dataclass
class RunbooksLoaded(Message):
    """The workspace's runbooks, read for the runbook search."""

    runbooks: list[Any]
