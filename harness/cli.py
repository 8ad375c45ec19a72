"""The `harness` command line. Thin on purpose: each command group lives in its own module under
`harness/commands/` and registers itself; the logic lives in the packages they call.

To add a command: create `harness/commands/<name>.py` with `register(app: typer.Typer) -> None`
and add its module path to `COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib
import sys

import typer

from harness.commands.output import exit_code, print_error
from harness.errors import HarnessError

__all__ = ["app", "main"]

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

app = typer.Typer(
    name="harness",
    help="Chaos and conformance harness for the run / outbox / SSE layer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # our errors are one line; a real bug still shows its traceback
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: a `HarnessError` is one line on stderr and a non-zero exit."""
    try:
        app(args=argv, prog_name="harness")
    except HarnessError as exc:
        print_error(exc)
        sys.exit(exit_code(exc))


if __name__ == "__main__":
    main()
