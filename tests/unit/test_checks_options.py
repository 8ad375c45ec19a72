"""CheckOptions: a misspelt or mistyped option fails loudly; options survive a trip through JSON."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import harness.checks
from _histories import snapshot
from harness.checks import CheckOptions
from harness.errors import ConfigError
from harness.scenario import ScenarioRecord, assert_invariants


def test_a_misspelt_key_is_a_config_error_naming_the_known_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown check option\(s\) \['require_terminl'\]") as err:
        CheckOptions.from_mapping({"require_terminl": False, "lag_bound_ms": 100})
    assert all(f.name in str(err.value) for f in fields(CheckOptions))


@pytest.mark.parametrize("bad", [{"heartbeat_interval_s": "fast"}, {"require_204_probe": "yes"},
                                 {"lag_basis": "p90"}, {"lag_source": "wire"}, {"require_terminal": "all"},
                                 {"require_terminal": {"idle": "no"}}, {"refusal_status": ["409 Conflict"]}])
def test_a_value_of_the_wrong_kind_is_a_config_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        CheckOptions.from_mapping(bad)


def test_options_round_trip_through_json_and_old_shapes_load() -> None:
    options = CheckOptions(require_terminal={"idle": False}, refusal_status=(409, 422), lag_source="delivery",
                           lag_bound_ms=100.0, lag_min_samples=3, heartbeat_exclude_faults=False)
    assert CheckOptions.from_mapping(json.loads(json.dumps(options.to_dict()))) == options
    assert CheckOptions.from_mapping(json.loads(json.dumps(CheckOptions().to_dict()))) == CheckOptions()
    # what a scenario passed before options were typed: an int status, a list of prefixes, an int bound
    old = CheckOptions.from_mapping({"refusal_status": 422, "require_terminal": ["live"], "lag_bound_ms": 1000})
    assert (old.refusal_status, old.require_terminal, old.lag_bound_ms) == ((422,), ("live",), 1000.0)


def test_every_option_is_read_by_a_checker() -> None:
    sources = "".join(Path(p).read_text() for p in Path(harness.checks.__file__).parent.glob("*.py")
                      if Path(p).name != "options.py")
    unread = [f.name for f in fields(CheckOptions) if not re.search(rf"\bopts\.{f.name}\b", sources)]
    assert unread == []


def test_judge_and_assert_invariants_refuse_a_misspelt_option(tmp_path: Path) -> None:
    record = ScenarioRecord(tmp_path)
    with pytest.raises(ConfigError, match="require_204_prob"):
        record.judge(snapshot(3), ("terminal",), {"require_204_prob": True})
    assert not record.checks_file.exists()
    unused = SimpleNamespace()  # fails before the stack is touched: no wait precedes the error
    with pytest.raises(ConfigError, match="lag_bound"):
        assert_invariants(unused, record, ["r1"], lag_bound=100)  # type: ignore[arg-type]

