"""How `harness --help` and every command's help look: commands grouped in panels, `RUN_ID` rather than
`{run_id}`, flags without a `<bool>` type, value types in capitals, and the exit codes under each command.

Applied once to the whole app (`style`), so a command module only declares its options.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["EXIT_CODES", "HarnessCommand", "HarnessGroup", "style"]

EXIT_CODES = ("Exit codes: 0 success (passed, healthy, nothing firing);"
              " 1 a problem found (a failed scenario or check, a firing alert, a stuck run, nothing to stop);"
              " 2 bad input, or could not run or decide (usage error, unreachable database, stack not started,"
              " unknown verdict, interrupted run); 130 Ctrl-C with nothing to report.")
_TYPE_NAMES = {"str": "TEXT", "list[str]": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH"}


def _metavars(command: Any, ctx: Any) -> None:
    """Fill in the metavars typer would render as `{run_id}`, `<bool>`, `<str>`."""
    for param in command.get_params(ctx):
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument):
            param.metavar = str(param.name).upper()
        elif isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperOption):
            label = str(param.display_type(ctx)).strip("<>")
            param.metavar = label if "|" in label else _TYPE_NAMES.get(label, label.upper())


class HarnessCommand(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["epilog"] = kwargs.get("epilog") or EXIT_CODES
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _metavars(self, ctx)  # before parsing: its errors and --help name them so
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [piece.removeprefix("{").removesuffix("}") for piece in super().collect_usage_pieces(ctx)]


class HarnessGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _metavars(self, ctx)
        return super().parse_args(ctx, args)


def style(app: typer.Typer, panels: dict[str, str]) -> None:
    """Every command of `app` and of its sub-apps rendered as above; a top-level command or group without a
    panel of its own goes to `panels[name]`."""
    _classes(app)
    for info in app.registered_commands:
        info.rich_help_panel = info.rich_help_panel or panels.get(info.name or "")
    for group in app.registered_groups:
        group.rich_help_panel = group.rich_help_panel or panels.get(str(group.name))


def _classes(app: typer.Typer) -> None:
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer's default: not one a module chose
            info.cls = HarnessCommand
    for group in app.registered_groups:
        group.cls = group.cls or HarnessGroup
        assert group.typer_instance is not None
        _classes(group.typer_instance)
