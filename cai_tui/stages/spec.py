"""The stage-spec format: ``screens/<flow>/NN-<stage>.yaml`` — the documented procedure as data.

Each stage lists the procedure-map steps it covers; every step carries the four things a user needs:
guidance (what and why), input (fields, or "none"), a doer (an action, a generated artifact or a command
to run) and a verification (checks, or "manual" with the reason nothing can be checked from here).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STEP_ID_RE = re.compile(r"^(CAI|KATA)-(\d+(\.\d+)?|F\d+)$")
ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")
DOTTED_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
ARTIFACT_RE = re.compile(r"^[a-z][a-z0-9-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """English and Chinese: the seeds and most users are Chinese-speaking."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


class FieldSpec(_Strict):
    path: str = Field(description="dotted path inside the flow's answers, e.g. oss.bucket_path")
    label: Text
    help: Text | None = None


class Doer(_Strict):
    """Exactly one of: an action id, an artifact kind, or a shell command (with {field.path} placeholders)."""

    action: str | None = None
    artifact: str | None = None
    command: str | None = None
    where: str | None = Field(None, description="target role the command runs on, e.g. instance")

    @model_validator(mode="after")
    def _one(self) -> Doer:
        given = [k for k in ("action", "artifact", "command") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a doer is exactly one of action:, artifact:, command:")
        if self.action and not DOTTED_RE.match(self.action):
            raise ValueError(f"action ids are dotted lower-case names like model.encrypt, not {self.action!r}")
        if self.artifact and not ARTIFACT_RE.match(self.artifact):
            raise ValueError(f"artifact kinds are lower-case words with -, not {self.artifact!r}")
        return self


class Manual(_Strict):
    manual: Text


class Step(_Strict):
    covers: str
    guidance: Text
    input: list[str] | Literal["none"]
    do: list[Doer] = Field(min_length=1)
    verify: list[str] | Manual
    when: dict[str, list[str]] = Field(
        default_factory=dict,
        description="the step applies only where each answer (dotted path) has one of the listed values, "
        "e.g. {model.encryption_method: [sam]}; the engine reports other steps as not applicable",
    )

    @field_validator("covers")
    @classmethod
    def _covers(cls, v: str) -> str:
        if not STEP_ID_RE.match(v):
            raise ValueError(f"procedure IDs look like CAI-1.5 or KATA-3.1 or CAI-F2, not {v!r}")
        return v

    @field_validator("when")
    @classmethod
    def _when(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for path, values in v.items():
            if not DOTTED_RE.match(path) or not values:
                raise ValueError(
                    f"when: maps a dotted answer path to the values it must have, not {path!r}: {values!r}"
                )
        return v

    @field_validator("verify")
    @classmethod
    def _verify(cls, v: list[str] | Manual) -> list[str] | Manual:
        if isinstance(v, list):
            if not v:
                raise ValueError("verify needs at least one check id, or manual: with the reason")
            for cid in v:
                if not DOTTED_RE.match(cid):
                    raise ValueError(f"check ids are dotted lower-case names like trustee.auth_nonce, not {cid!r}")
        return v


class StageSpec(_Strict):
    id: str
    title: Text
    help: Text
    fields: list[FieldSpec] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)

    # filled by the loader from the file name and folder
    flow: str = ""
    order: int = 0
    file: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError(f"stage ids are lower-case words with -, not {v!r}")
        return v

    @model_validator(mode="after")
    def _inputs_declared(self) -> StageSpec:
        declared = {f.path for f in self.fields}
        if len(declared) != len(self.fields):
            raise ValueError("a field path is listed twice in fields")
        for step in self.steps:
            if isinstance(step.input, list):
                missing = [p for p in step.input if p not in declared]
                if missing:
                    raise ValueError(f"step {step.covers}: input {missing[0]!r} is not among the stage's fields")
        return self

    @property
    def covers(self) -> list[str]:
        """The procedure IDs the stage covers, in procedure order (KATA-1.1 before KATA-1.3, CAI-1.10 after
        CAI-1.9), whatever order its steps are done in."""
        return sorted(_unique(s.covers for s in self.steps), key=procedure_key)

    @property
    def actions(self) -> list[str]:
        return _unique(d.action for s in self.steps for d in s.do if d.action)

    @property
    def artifacts(self) -> list[str]:
        return _unique(d.artifact for s in self.steps for d in s.do if d.artifact)

    @property
    def checks(self) -> list[str]:
        return _unique(c for s in self.steps if isinstance(s.verify, list) for c in s.verify)

    @property
    def field_paths(self) -> list[str]:
        return [f.path for f in self.fields]


def procedure_key(step_id: str) -> tuple[str, int, tuple[int, ...]]:
    """Sort key of a procedure ID in document order: the flow prefix, then the numbered steps by their numbers
    (natural order), then the troubleshooting steps (F1, F2 …) after them."""
    prefix, _, rest = step_id.partition("-")
    if rest.startswith("F") and rest[1:].isdigit():
        return prefix, 1, (int(rest[1:]),)
    try:
        return prefix, 0, tuple(int(n) for n in rest.split("."))
    except ValueError:  # not an ID the model accepts; sorted last rather than failing
        return prefix, 2, ()


def _unique(items) -> list[str]:
    out: list[str] = []
    for i in items:
        if i not in out:
            out.append(i)
    return out
