"""The `harness` command line. Thin on purpose: each command group lives in its own module under
`harness/commands/` and registers itself; the logic lives in the packages they call.

To add a command: create `harness/commands/<name>.py` with `register(app: typer.Typer) -> None`
(naming its help panel with `rich_help_panel=`, or add it to `PANELS`) and add its module path to
`COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version as package_version
from typing import Annotated

import typer

from harness.commands.help_style import HarnessGroup, style
from harness.commands.output import EXIT_INTERRUPTED, EXIT_USAGE, exit_code, print_error, print_usage_error
from harness.errors import HarnessError

__all__ = ["PANELS", "app", "main"]

COMMAND_MODULES = (
    "harness.commands.stack",
    "harness.commands.run",
    "harness.commands.diagnostics",
    "harness.commands.schema",
    "harness.commands.alerts",
    "harness.commands.recover",
    "harness.commands.bench",
    "harness.commands.mutants",
    "harness.commands.check",
    "harness.commands.explore",
    "harness.commands.target",
    "harness.commands.watch",
    "harness.commands.fault",
    "harness.commands.record",
    "harness.commands.replay",
    "harness.commands.load",
)

STACK, TEST, RUNBOOK, RECOVERY, LOAD = "Stack", "Test and verify", "Runbook", "Recovery", "Load"
PANELS = {
    "up": STACK, "down": STACK, "status": STACK, "watch": STACK, "fault": STACK,
    "run": TEST, "check": TEST, "replay": TEST, "explore": TEST, "mutants": TEST, "record": TEST,
    "init-profile": TEST, "check-profile": TEST,
    "diagnose": RUNBOOK, "lag": RUNBOOK, "backlog": RUNBOOK, "alerts": RUNBOOK, "schema-check": RUNBOOK,
    "runbook-check": RUNBOOK,
    "recover": RECOVERY,
    "bench": LOAD, "load": LOAD,
}
# Old spellings still accepted, not shown in any help: the one spelling of each is on the right.
OLD_SPELLINGS = {"--postgres-dsn": "--dsn", "--logs-dir": "--logs"}

app = typer.Typer(
    name="harness",
    help="Chaos and conformance harness for the run / outbox / SSE layer.",
    no_args_is_help=True,
    add_completion=False,
    cls=HarnessGroup,
    pretty_exceptions_enable=False,  # our errors are one line; a real bug still shows its traceback
)


def _version(show: bool) -> None:
    if show:
        try:
            print(f"harness {package_version('outbox-sse-harness')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            print("harness (not installed: version unknown)")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                help="Print the harness's version and exit.")] = False) -> None:
    pass  # the app's only own option; its help text is the Typer's above


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
style(app, PANELS)


def new_spellings(args: list[str]) -> list[str]:
    """`args` with each old option spelling replaced (up to a `--`, after which they are pytest's)."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        name, eq, value = arg.partition("=")
        out.append(OLD_SPELLINGS[name] + eq + value if name in OLD_SPELLINGS else arg)
    return out


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error is one line `harness: error: ...` on stderr (no boxes, no
    traceback) and an exit code of the table in `help_style.EXIT_CODES`."""
    try:
        code = app(args=new_spellings(sys.argv[1:] if argv is None else argv), prog_name="harness",
                   standalone_mode=False)
    except HarnessError as exc:
        print_error(exc)
        sys.exit(exit_code(exc))
    except typer.TyperException as exc:  # typer's own click: a usage error
        print_usage_error(exc)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except typer.Abort:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
