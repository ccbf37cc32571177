"""The first-five-minute checklist: the steps every drill times from the page on.

It lives in the workspace as `checklist.yaml` (a team points each step at its own
dashboards and queries); without one, the seed's checklist shipped with
pagerdrill is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pagerdrill.workspace.yamlfile import load_yaml, validate

CHECKLIST_NAME = "checklist.yaml"
Severity = Literal["P0", "P1", "P2", "P3"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepChoice(Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)
    text: str = Field(min_length=1)


class Step(Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    target_s: float = Field(gt=0, le=24 * 3600)
    targets: dict[Severity, float] = {}
    url: str | None = None
    prompt: str | None = None
    """Shown when the step is ticked; the engineer must answer it with a reason
    (journalled with the step), as "say why" steps ask."""
    choices: list[StepChoice] = []
    """What the engineer decides when ticking the step (page / don't page); one must be
    picked, with the reason."""

    @property
    def asks(self) -> bool:
        """Ticking this step needs the engineer's reason (and choice, if it has some)."""
        return bool(self.prompt or self.choices)

    @model_validator(mode="after")
    def _unique_choices(self) -> Step:
        ids = [c.id for c in self.choices]
        if len(set(ids)) != len(ids):
            raise ValueError("choices: duplicate id")
        if len(ids) == 1:
            raise ValueError("choices: list two or more, or none")
        return self

    def target_for(self, severity: str) -> float:
        return self.targets.get(severity, self.target_s)  # type: ignore[call-overload]


class Checklist(Model):
    version: Literal[1] = 1
    hypothesis_target_s: float = Field(default=600, gt=0)
    steps: list[Step] = Field(min_length=1)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def targets(self, severity: str) -> dict[str, float]:
        return {s.id: s.target_for(severity) for s in self.steps}


def default_path() -> Path:
    from pagerdrill.workspace import _template_root

    return _template_root() / CHECKLIST_NAME


def load_checklist(root: Path | None) -> tuple[Checklist, Path]:
    """The workspace's checklist, else the seed's."""
    path = root / CHECKLIST_NAME if root is not None else None
    if path is None or not path.is_file():
        path = default_path()
    data, lines = load_yaml(path)
    return validate(Checklist, data, path, lines), path
