"""`pagerdrill drill`: the interactive drill, a Textual app over `DrillEngine`.

The app renders the engine's state and sends the engineer's actions; it never blocks
on the stack. Bringing the stack up, the probe cycle (`engine.tick()`), every
`engine.act()` (a mitigation restarts services) and the abort all run in thread
workers. The engine's events come back as messages (`post_message` is thread-safe
and never waits on the UI, so an engine thread holding its lock cannot deadlock
against the UI thread). Before the page nothing on screen tells when the fault
comes or what it is: the quiet period's length and the fault events are not shown.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import random
import threading
from collections import deque
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState, get_current_worker

from pagerdrill.drill.engine import Action, ActionRefused, DrillEngine
from pagerdrill.drill.factory import stop_reason, stop_signals
from pagerdrill.drill.runner import Cadence
from pagerdrill.drill.stackhold import StackHold
from pagerdrill.errors import BadInputError, PagerdrillError
from pagerdrill.journal.events import Event, Page
from pagerdrill.journal.summary import Summary
from pagerdrill.targets.base import Target
from pagerdrill.tui.messages import (
    DrillFinished,
    EngineEvent,
    Notice,
    QuitDone,
    RunbooksLoaded,
    ServicesListed,
    StackLine,
    TimelineExported,
)
from pagerdrill.tui.modals import ConfirmQuit, Reverting
from pagerdrill.tui.panes import LogsScreen, RunbookScreen
from pagerdrill.tui.readiness import start_readiness
from pagerdrill.tui.screens.drill import LOGS, DrillScreen
from pagerdrill.tui.screens.start import (
    ScenarioEntry,
    StartChoices,
    StartScreen,
    scenario_entries,
)
from pagerdrill.tui.screens.summary import SummaryScreen
from pagerdrill.workspace import default_engineer

log = logging.getLogger("pagerdrill.tui")

QUIT_REASON = "quit from the TUI"
EXIT_GRACE_S = 3.0

WORKER_FAILED = {
    "export": "could not export the timeline",
    "runbooks": "could not read the runbooks",
}
"""What the engineer is told when a worker of that group fails."""


class DrillApp(App[None]):
    """One drill, interactive. Dependencies come in: the engine (not started) and the
    target; with `ensure_stack` the app brings the stack up first if it is down.

    Without an engine, `start` lists the scenarios first and builds the engine once the
    engineer picks one. With `autostart=False` the drill is never started (tests)."""

    CSS_PATH = "drill.tcss"
    TITLE = "pagerdrill drill"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "request_quit", "Quit"),
        Binding("ctrl+c", "request_quit", "Quit", priority=True, show=False),
    ]

    def __init__(
        self,
        engine: DrillEngine | None,
        target: Target,
        ensure_stack: bool = True,
        *,
        start: StartChoices | None = None,
        autostart: bool = True,
    ) -> None:
        super().__init__()
        if engine is None and start is None:
            raise ValueError("DrillApp needs an engine or the start choices")
        self.target = target
        self.ensure_stack = ensure_stack
        self.start = start
        self.autostart = autostart
        self._engine: DrillEngine | None = None
        self._drill_screen: DrillScreen | None = None
        self.summary: Summary | None = None
        self.quitting = False
        self.keep_stack = True
        """False: take the stack down on exit when this app brought it up."""
        self.hold: StackHold | None = None
        """The drill's hold on the stack: its lock, and whether it started the stack."""
        self._recorded: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._asked: deque[Action] = deque()
        self._acting = threading.Lock()
        if engine is not None:
            self._use(engine)

    def _use(self, engine: DrillEngine) -> None:
        self._engine = engine
        self.hold = StackHold(engine, self.target)
        self._drill_screen = DrillScreen(engine, self.target)
        engine.observers.append(self._observe)

    @property
    def engine(self) -> DrillEngine:
        assert self._engine is not None, "no scenario picked yet"
        return self._engine

    @property
    def drill_screen(self) -> DrillScreen:
        assert self._drill_screen is not None, "no scenario picked yet"
        return self._drill_screen

    # ----------------------------------------------------- engine threads

    def _observe(self, event: Event) -> None:
        """Engine observer: called on the thread driving the engine, maybe under its
        lock; posting a message never waits on the UI."""
        self.post_message(EngineEvent(event))

    def _say(self, text: str) -> None:
        self.post_message(StackLine(text))

    def _progress(self, event: Any) -> None:
        phase = "already running" if event.phase == "running" else event.phase
        self.post_message(StackLine(f"  {event.service:<12} {phase:<16} {event.elapsed_s:6.2f} s"))

    @work(thread=True, exclusive=True, group="drive", exit_on_error=False)
    def drive(self) -> None:
        """Bring the stack up, start the engine, tick it on the scenario's cadence."""
        worker = get_current_worker()
        engine = self.engine

        def stopping() -> bool:
            return worker.is_cancelled or self._stop.is_set()

        assert self.hold is not None
        try:
            # the drill lock before anything starts: a drill it refuses touches nothing
            self.hold.bring_up(
                self._progress,
                ensure=self.ensure_stack,
                announce=lambda: self._say("starting the stack:"),
            )
            if self.hold.started_stack:
                self.post_message(StackLine("the stack is up"))
            if stopping() or engine.done:
                return
            if not self._alerts_readable(engine):
                return
            engine.start()
            cadence = Cadence(engine)
            while not engine.done and not stopping():
                cadence.tick_if_due()
                self._wake.wait(cadence.wait_s())
                self._wake.clear()
        except Exception as exc:
            log.exception("the drill failed")
            engine.abort(f"error: {exc!r}")
            self.post_message(Notice(f"the drill failed: {exc}", "error"))
        if engine.done and not stopping() and engine.journal is not None:
            self._finished()

    def _alerts_readable(self, engine: Any) -> bool:
        """A scenario whose alert signals cannot be read is refused before it starts."""
        from pagerdrill.errors import PagerdrillError
        from pagerdrill.scenarios.check import refuse_unreadable_alerts

        try:
            refuse_unreadable_alerts(engine.scenario, engine.roles, engine.target)
        except PagerdrillError as exc:
            self.post_message(Notice(str(exc), "error"))
            return False
        return True

    def _finished(self) -> None:
        from pagerdrill.journal import read_journal
        from pagerdrill.journal.summary import summary_of

        try:
            summary = summary_of(read_journal(self.engine.journal_path))
        except Exception as exc:
            log.exception("could not summarize the drill")
            self.post_message(Notice(f"could not read the journal: {exc}", "error"))
            return
        self.post_message(DrillFinished(summary))

    def act(self, action: Action) -> None:
        """Send an action to the engine, off the UI thread. The engine takes them one
        at a time in the order they were asked: each worker takes the oldest action
        still waiting, so a worker's thread that starts late runs nobody's action ahead
        of an earlier one."""
        self._asked.append(action)
        self._act()

    @work(thread=True, group="act", exit_on_error=False)
    def _act(self) -> None:
        with self._acting:
            self._apply(self._asked.popleft())

    def _apply(self, action: Action) -> None:
        try:
            self.engine.act(action)
        except (ActionRefused, BadInputError) as exc:
            self.post_message(Notice(str(exc)))
        except Exception as exc:
            log.exception("action %s failed", action.kind)
            self.post_message(Notice(f"{action.kind} failed: {exc}", "error"))
        finally:
            self._wake.set()

    def record(self, step: str, what: str, detail: str) -> None:
        """Journal that the engineer looked at something (once per thing), as evidence
        of a checklist step. Before the page there is nothing to evidence."""
        if self._engine is None or self.engine.page_mono is None or self.engine.done:
            return
        key = (step, what, detail)
        if key in self._recorded:
            return
        self._recorded.add(key)
        self.act(Action("evidence", step=step, what=what, text=detail))

    @work(thread=True, group="browser", exit_on_error=False)
    def _browse(self, url: str) -> None:
        import webbrowser

        try:
            opened = webbrowser.open(url)
        except Exception as exc:
            opened = False
            log.warning("could not open %s: %s", url, exc)
        if not opened:
            self.post_message(Notice(f"no browser opened {url}: it is on the clipboard"))

    def open_step_url(self, step: str, url: str) -> None:
        """A checklist step's link (a dashboard, a trace or log query): in the browser
        when there is a graphical one (or $BROWSER names one); a text browser would take
        the terminal, so without one the link goes to the clipboard."""
        import os
        import sys

        self.record(step, "url", url)
        self.copy_to_clipboard(url)
        graphical = bool(
            os.environ.get("BROWSER")
            or os.environ.get("DISPLAY")
            or os.environ.get("WAYLAND_DISPLAY")
            or sys.platform == "darwin"
        )
        if graphical:
            self.notify(f"opening {url}", timeout=4)
            self._browse(url)
        else:
            self.notify(f"{url} (copied: no graphical browser here)", timeout=8)

    @work(thread=True, group="quit", exit_on_error=False)
    def _abort_and_exit(self) -> None:
        try:
            self.engine.abort(QUIT_REASON)
        except Exception:
            log.exception("abort failed")
        finally:
            self.post_message(QuitDone())

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def export_timeline(self, journal: Path, config: Any) -> None:
        from pagerdrill.reports.text import slack_text, write_export
        from pagerdrill.reports.timeline import load_redacted

        out = journal.with_suffix(".slack.txt")
        text = slack_text(load_redacted(journal, config, samples=False))
        write_export(out, text)
        self.post_message(TimelineExported(out, text))

    @work(thread=True, exclusive=True, exit_on_error=False, group="services")
    def list_services(self) -> None:
        try:
            services = list(self.target.services())
        except Exception as exc:  # the one-service view then offers all services only
            log.warning("could not list the services: %s", exc)
            return
        self.post_message(ServicesListed(services))

    @work(thread=True, exclusive=True, exit_on_error=False, group="runbooks")
    def load_runbooks(self, root: Path | None) -> None:
        from pagerdrill.runbooks import load_runbooks

        self.post_message(RunbooksLoaded(load_runbooks(root)))

    # ----------------------------------------------------------- UI thread

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's uncaught error reaches the engineer."""
        if event.state is not WorkerState.ERROR:
            return
        group = event.worker.group
        what = WORKER_FAILED.get(group, f"{group} failed")
        self.notify(f"{what}: {event.worker.error}", severity="error")

    def on_mount(self) -> None:
        if self._engine is None:
            assert self.start is not None
            self.push_screen(StartScreen(self.start))
        else:
            self.push_screen(self.drill_screen)
            self._go()

    def _go(self) -> None:
        if self.autostart:
            self.drive()

    def start_scenario(self, entry: ScenarioEntry | None, engineer: str) -> None:
        """From the start screen: build the engine (None: blind, a random scenario)."""
        assert self.start is not None and self._engine is None
        blind = entry is None
        if entry is None:
            entry = random.Random().choice(self.start.scenarios)
        try:
            engine = self.start.build(entry.path, engineer, blind)
        except PagerdrillError as exc:
            what = "the blind scenario" if blind else entry.name
            self.notify(f"cannot start {what}: {exc}", severity="error", timeout=10)
            return
        self._use(engine)
        self.switch_screen(self.drill_screen)
        self._go()

    def on_start_screen_picked(self, message: StartScreen.Picked) -> None:
        self.start_scenario(message.entry, message.engineer)

    def on_drill_screen_act(self, message: DrillScreen.Act) -> None:
        self.act(message.action)

    def on_drill_screen_looked(self, message: DrillScreen.Looked) -> None:
        self.record(message.step, message.what, message.detail)

    def on_drill_screen_open_link(self, message: DrillScreen.OpenLink) -> None:
        self.open_step_url(message.step, message.url)

    def on_summary_screen_export(self, message: SummaryScreen.Export) -> None:
        self.export_timeline(message.journal, message.config)

    def on_timeline_exported(self, message: TimelineExported) -> None:
        if isinstance(self.screen, SummaryScreen):
            self.screen.exported = message.path
        self.copy_to_clipboard(message.text)
        self.notify(f"timeline copied; saved to {message.path}", timeout=10)

    def on_logs_screen_opened(self, _message: LogsScreen.Opened) -> None:
        self.list_services()

    def on_runbook_screen_opened(self, message: RunbookScreen.Opened) -> None:
        self.load_runbooks(message.root)

    def on_runbooks_loaded(self, message: RunbooksLoaded) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, RunbookScreen):
                screen.loaded_runbooks(message.runbooks)

    def on_services_listed(self, message: ServicesListed) -> None:
        if self.is_screen_installed(LOGS):
            logs = self.get_screen(LOGS)
            if isinstance(logs, LogsScreen):
                logs.services = message.services

    @property
    def _drawing(self) -> bool:
        # once exit() is called the widgets go, while a quit's last events may still come
        screen = self._drill_screen
        return screen is not None and screen.is_mounted and self.return_code is None

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        if isinstance(event, Page):
            self.bell()
        if self._drawing:
            self.drill_screen.apply_event(event)

    def on_stack_line(self, message: StackLine) -> None:
        if self._drawing:
            self.drill_screen.write(message.text)

    def on_notice(self, message: Notice) -> None:
        self.notify(message.text, severity=message.severity)  # type: ignore[arg-type]

    def on_drill_finished(self, message: DrillFinished) -> None:
        if self.quitting:
            return
        self.summary = message.summary
        root_cause = self.engine.model.root_cause if self.engine.page_mono is not None else None
        self.push_screen(SummaryScreen(message.summary, root_cause, self.engine.workspace.config))

    def on_quit_done(self, _message: QuitDone) -> None:
        self.exit()

    def action_request_quit(self) -> None:
        if self.quitting:
            return
        if self._engine is None or self.engine.done:
            self.exit()
            return
        if isinstance(self.screen, ConfirmQuit):
            return
        self.push_screen(ConfirmQuit(), self._quit_confirmed)

    def _quit_confirmed(self, yes: bool | None) -> None:
        if not yes:
            return
        if self.engine.done:
            self.exit()
            return
        self.quitting = True
        self._stop.set()
        self._wake.set()
        self.push_screen(Reverting())
        self._abort_and_exit()

    def _abort_now(self, reason: str) -> None:
        self._stop.set()
        self._wake.set()
        if self._engine is not None and not self._engine.done:
            try:
                self._engine.abort(reason)
            except Exception:
                log.exception("abort on exit failed")

    def on_unmount(self) -> None:
        """Whatever ended the app, a drill still running is aborted (and reverted), and
        the drill lock let go unless a stack this drill started is still to go down
        (`run` does that once the app is gone)."""
        self._abort_now("the TUI exited")
        if self.hold is not None and not self.hold.takes_down(self.keep_stack):
            try:
                self.hold.let_go(keep_stack=True)
            except Exception:
                log.exception("could not let go of the stack")

    def _on_signal(self, signum: int) -> None:
        """SIGHUP (the terminal went away) or SIGTERM: revert first, then exit. With
        its terminal gone the app may never finish exiting (its writes have nowhere to
        go): once the drill is reverted, a few seconds is all it gets."""
        import os
        import signal

        self.quitting = True
        reason = f"the TUI got {signal.Signals(signum).name}"
        if self._engine is not None:
            reason = stop_reason(self._engine, reason)  # `stack down --force` says why
        self._abort_now(reason)
        if self.hold is not None:
            with contextlib.suppress(Exception):
                self.hold.let_go(self.keep_stack)

        def hard_exit() -> None:
            os._exit(128 + signum)

        timer = threading.Timer(EXIT_GRACE_S, hard_exit)
        timer.daemon = True
        timer.start()
        self.exit()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        import signal

        try:
            # Ctrl-C is a key here (the app's quit); the terminal going away is not
            with stop_signals(self._on_signal, (signal.SIGHUP, signal.SIGTERM)):
                return super().run(*args, **kwargs)
        finally:
            self._abort_now("the TUI exited")
            if self.hold is not None:
                if self.hold.takes_down(self.keep_stack):
                    print("taking down the stack this drill started (--keep-stack keeps it)")
                try:
                    self.hold.let_go(self.keep_stack)
                except Exception as exc:
                    print(f"could not take the stack down: {exc}")


def make_app(
    workspace_root: Path | None,
    scenario: str | None,
    engineer: str | None,
    params: dict[str, str],
    *,
    ensure_stack: bool = True,
    autostart: bool = True,
    blind: bool = False,
    allow_remote_docker: bool = False,
) -> DrillApp:
    """The app over real objects, built as `pagerdrill run` builds them. Without a
    scenario the app opens on the start screen (the workspace's scenarios, or blind);
    `blind` skips it for a random scenario whose name stays hidden."""
    from pagerdrill.drill.factory import DrillFactory

    factory = DrillFactory.open(workspace_root, allow_remote_docker=allow_remote_docker)
    ws, target = factory.workspace, factory.target

    def build(path: Path, who: str, blind: bool = False) -> DrillEngine:
        return factory.engine(factory.scenario(path, params), who, mode="tui", blind=blind)

    if scenario is not None:
        engine = build(factory.find(scenario), engineer or getpass.getuser())
        return DrillApp(engine, target, ensure_stack, autostart=autostart)
    entries = scenario_entries(factory)
    if not entries:
        raise BadInputError(f"no scenario to drill in {ws.root / 'scenarios'}")
    if blind:
        entry = random.Random().choice(entries)
        engine = build(entry.path, engineer or default_engineer(), True)
        return DrillApp(engine, target, ensure_stack, autostart=autostart)
    who = engineer or default_engineer()
    start = StartChoices(entries, who, build, start_readiness(ws.root, who))
    return DrillApp(None, target, ensure_stack, start=start, autostart=autostart)
