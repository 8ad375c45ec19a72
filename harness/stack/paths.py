"""Where the harness keeps its state and tools: `<repo>/.harness` and `<repo>/.tools/bin`."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "state_dir", "tools_bin_dir"]


def repo_root() -> Path:
    """The checkout the harness package lives in (an editable install points here)."""
    return Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """`HARNESS_STATE_DIR`, else `<repo>/.harness` (git-ignored): stack.json, pid files, logs."""
    override = os.environ.get("HARNESS_STATE_DIR")
    return Path(override) if override else repo_root() / ".harness"


def tools_bin_dir() -> Path:
    """The git-ignored tool folder where `toxiproxy-server` is installed."""
    return repo_root() / ".tools" / "bin"
