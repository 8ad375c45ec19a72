"""The harness's one exception tree.

```
HarnessError                      anything the harness raises on purpose
├── ConfigError                   a bad option, environment variable or settings value (usage error)
├── StackStateError               the stack is not in the state a command needs
│   ├── StackAlreadyRunning       `harness up` while a stack is up
│   └── NoStackRunning            `harness down` with nothing to stop
├── StackError                    a component of the stack could not be started, driven or stopped
│   ├── ToolMissingError          a program the stack needs is not installed (names the fix)
│   ├── WaitTimeout               a bounded wait gave up (says what, how long, how many attempts)
│   ├── ProcessError              a child process could not be started or signalled
│   ├── PostgresError             PostgreSQL (embedded or external) could not be started or reached
│   ├── ToxiproxyError            the toxiproxy server or its HTTP API failed
│   ├── NginxError                nginx could not be configured or started
│   └── ServiceError              the service under test failed to migrate or become ready
└── RunbookError                  a runbook command could not run its diagnostic (bad input, unreachable)
    ├── DatabaseUnreachable       the DSN does not answer, or its schema lacks the runbook's tables
    ├── DiagnosisError            `diagnose` / `recover` cannot decide: unknown run id, missing outbox row, ...
    ├── LogsError                 the log folder is missing, or a --since value is malformed
    ├── RunbookCheckError         the runbook file is unreadable or has no SQL block
    └── RecoveryError             a recovery action was refused or could not be carried out
```

A problem that a runbook command *finds* (a stuck run, a firing alert, a missing index) is not an
error: the command reports it and exits 1. A `RunbookError` means the command could not look, and
maps to exit 2 like a usage error.

Errors of the libraries underneath (psycopg, httpx, OSError, subprocess) are mapped to these at the
boundary with `raise ... from exc`, so callers catch one tree and keep the original as `__cause__`.
Messages say what was probed and how to fix it: the CLI prints them as one line.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseUnreachable",
    "DiagnosisError",
    "HarnessError",
    "LogsError",
    "NginxError",
    "NoStackRunning",
    "PostgresError",
    "ProcessError",
    "RecoveryError",
    "RunbookCheckError",
    "RunbookError",
    "ServiceError",
    "StackAlreadyRunning",
    "StackError",
    "StackStateError",
    "ToolMissingError",
    "ToxiproxyError",
    "WaitTimeout",
]


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A bad option, environment variable or settings value."""


class StackStateError(HarnessError):
    """The stack is not in the state the command needs."""


class StackAlreadyRunning(StackStateError):
    """A stack owned by another harness process is already up."""


class NoStackRunning(StackStateError):
    """There is no stack (and no leftover process) to stop."""


class StackError(HarnessError):
    """A component of the stack could not be started, driven or stopped."""


class ToolMissingError(StackError):
    """A program the stack needs is not installed."""


class WaitTimeout(StackError):
    """A bounded wait gave up."""

    def __init__(self, message: str, *, attempts: int, elapsed: float) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.elapsed = elapsed


class ProcessError(StackError):
    """A child process could not be started or signalled."""


class PostgresError(StackError):
    """PostgreSQL could not be started, stopped or reached."""


class ToxiproxyError(StackError):
    """The toxiproxy server or its HTTP API failed."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NginxError(StackError):
    """nginx could not be configured or started."""


class ServiceError(StackError):
    """The service under test failed to migrate or to become ready."""


class RunbookError(HarnessError):
    """A runbook command could not run its diagnostic (bad input or an unreachable database)."""


class DatabaseUnreachable(RunbookError):
    """The DSN does not answer, or the database lacks the runbook's tables."""


class DiagnosisError(RunbookError):
    """The diagnosis cannot be made: an unknown run id, a run without the rows the checklist reads."""


class LogsError(RunbookError):
    """The service's log folder is missing, unreadable, or a time window is malformed."""


class RunbookCheckError(RunbookError):
    """The runbook file cannot be read or holds no SQL block to check."""


class RecoveryError(RunbookError):
    """A recovery action was refused (the run is not stuck, no --confirm) or could not be carried out."""
