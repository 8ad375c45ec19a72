"""Targets: the implementation under test, described by a profile (docs/TARGETS.md) rather than assumed."""
from __future__ import annotations

from harness.target.profile import (
    CAPABILITIES,
    LogSpec,
    ProcessEntry,
    TargetProfile,
    default_profile_path,
    load_profile,
    reference_profile,
)

__all__ = ["CAPABILITIES", "LogSpec", "ProcessEntry", "TargetProfile", "default_profile_path", "load_profile",
           "reference_profile"]
