"""A scenario's slice of the service logs: what each log file of the stacks it used gained while it ran.

Sizes are taken before the test and the bytes appended since are copied after it, so the slice needs
no parsing of any target's log format. A file that appeared during the test (a stack it started, a
process restarted into a new file) is copied whole; one that shrank (truncated) is copied whole too."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["log_sizes", "write_log_slice"]

MAX_BYTES_PER_FILE = 2_000_000  # a chatty process's slice keeps its last 2 MB


def log_sizes(folders: Iterable[Path]) -> dict[Path, int]:
    """Each `*.log` file's size now."""
    return {path: path.stat().st_size for folder in folders for path in sorted(folder.glob("*.log"))}


def write_log_slice(folders: Iterable[Path], before: dict[Path, int], out: Path, root: Path) -> bool:
    """Each log file's bytes since `before`, under a `==> path <==` header (the path relative to `root`,
    the report folder, when inside it); files that gained nothing are left out. False when none did."""
    parts: list[bytes] = []
    for path, size in log_sizes(folders).items():
        start = before.get(path, 0)
        start = 0 if size < start else max(start, size - MAX_BYTES_PER_FILE)
        if size == start:
            continue
        with open(path, "rb") as f:
            f.seek(start)
            gained = f.read(size - start)
        shown = os.path.relpath(path, root) if path.is_relative_to(root) else str(path)
        parts.append(f"==> {shown} <==\n".encode() + gained + (b"" if gained.endswith(b"\n") else b"\n"))
    if not parts:
        return False
    out.write_bytes(b"\n".join(parts))
    return True
