"""Base classes of component parameters: pydantic models that reject unknown keys.

Each component declares `Params`, a subclass of `ComponentParams`; a reward set's YAML `params:` mapping is
validated against it, so a misspelled parameter is an error that lists the valid ones (see `rewards.loader`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OpsSource = Literal["auto", "trace", "code", "released"]


class ComponentParams(BaseModel):
    """Typed parameters of a component (immutable; unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolUseParams(ComponentParams):
    """Parameters shared by components that ask which operations a trajectory used.

    `ops_source`: `auto` reads the sandbox's operation trace and falls back to static analysis of the code for
    steps without one; `trace` uses the trace only; `code` uses this package's static analysis only; `released`
    reads ops and literal crop boxes from the code with CodeVision's released detector
    (`rewards.codevision_detector`: what the released CodeVision reward sees, quirks included). `include_failed_steps`: count ops of blocks that ended in an error
    (by default only blocks that ran to the end count as a use). `failed_step_ops`: for such a block, `executed`
    counts the ops that ran before the failure, `written` every op its code contains (the released CodeVision
    code parses ops from the code before running it).
    """

    ops_source: OpsSource = "auto"
    include_failed_steps: bool = Field(False, description="count ops from code blocks that failed")
    failed_step_ops: Literal["executed", "written"] = Field(
        "executed", description="failed blocks: ops that ran before the failure, or every op written in the code")


class ReleasedToolUseParams(ToolUseParams):
    """`ToolUseParams` with the released CodeVision code's defaults: a block that raised still counts as a tool
    call and its ops (parsed from the code before it ran) as used (tool_agent_loop.py
    `_handle_processing_tools_state`: `tool_use_judge.analyze(code)` runs before `_call_tool`)."""

    include_failed_steps: bool = Field(True, description="count ops from code blocks that failed")
    failed_step_ops: Literal["executed", "written"] = Field(
        "written", description="failed blocks: ops that ran before the failure, or every op written in the code")
