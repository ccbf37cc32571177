"""The drill's dialogs: the quit confirmation, the note prompt and the pickers
(hypothesis, decision, mitigation, a checklist step's question). Each dismisses with
its answer; the screen that pushed it sends the action."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Quit the drill?", classes="dialog-title")
            yield Label("The drill is aborted and every fault is reverted.")
            with Horizontal(classes="buttons"):
                yield Button("Quit (y)", variant="error", id="yes")
                yield Button("Go on (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Reverting(ModalScreen[None]):
    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("reverting…", id="reverting")
            yield Label("putting every fault back before exiting", classes="dim")


class NoteInput(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Note (enter saves, esc cancels)", classes="dialog-title")
            yield Input(placeholder="what you see, what you did", id="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HypothesisPicker(ModalScreen[tuple[str | None, str | None] | None]):
    """The scenario's choices, or free text: dismisses with (choice, text)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Hypothesis: pick one (enter) or type your own", classes="dialog-title")
            yield OptionList(
                *[Option(text, id=cid) for cid, text in self.choices], id="hypothesis-choices"
            )
            yield Input(placeholder="or in your own words (enter)", id="hypothesis-text")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss((event.option.id, None))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss((None, text) if text else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DecisionPicker(ModalScreen[str | None]):
    """The scenario's decision: its prompt and choices; dismisses with the choice id.
    The prompt wraps, whole, and the dialog scrolls where the terminal cannot hold it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#decision-choices"

    def __init__(self, prompt: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.prompt = prompt
        self.choices = choices

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="decision"):
            yield Static(f"Decision: {self.prompt}", classes="dialog-title", markup=False)
            yield OptionList(
                *[Option(text, id=cid) for cid, text in self.choices], id="decision-choices"
            )
            yield Label("enter picks, esc cancels", classes="dim")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class StepPrompt(ModalScreen[tuple[str | None, str] | None]):
    """A checklist step that asks ("decide whether to page the lead, and say why"): its
    prompt, the call to make (its choices) and the reason; dismisses with (call, why)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str | None, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.step_title = title
        self.prompt = prompt
        self.choices = choices
        self.choice: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.step_title, classes="dialog-title")
            if self.prompt:
                yield Label(self.prompt, id="step-prompt")
            if self.choices:
                yield OptionList(
                    *[Option(text, id=cid) for cid, text in self.choices], id="step-choices"
                )
            yield Input(placeholder="why (enter saves, esc cancels)", id="step-reason")

    def on_mount(self) -> None:
        if not self.choices:
            self.query_one(Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.choice = event.option.id
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        reason = event.value.strip()
        if self.choices and self.choice is None:
            # the call on screen is the highlighted one, picked with enter or not
            highlighted = self.query_one(OptionList).highlighted
            if highlighted is not None:
                self.choice = self.choices[highlighted][0]
        if self.choices and self.choice is None:
            self.app.notify("pick the call first (↑ ↓, enter)", severity="warning")
            self.query_one(OptionList).focus()
        elif not reason:
            self.app.notify("say why", severity="warning")
        else:
            self.dismiss((self.choice, reason))

    def action_cancel(self) -> None:
        self.dismiss(None)


class MitigationPicker(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, mitigations: list[tuple[str, str]]) -> None:
        super().__init__()
        self.mitigations = mitigations

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Mitigation: pick one (enter), esc cancels", classes="dialog-title")
            if self.mitigations:
                yield OptionList(
                    *[Option(f"{title}  [{mid}]", id=mid) for mid, title in self.mitigations],
                    id="mitigations",
                )
            else:
                yield Label("this scenario lists no mitigations")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
