"""The pytest plugin, run in a separate pytest session against a stand-in service."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from stack_helpers import FAKE_SERVICE, isolated_state_dir  # noqa: F401 (autouse)

INNER_TESTS = textwrap.dedent('''
    import time
    import httpx
    import psycopg
    import pytest
    from harness.stack import Toxic

    @pytest.mark.stack
    def test_a_breaks_things(stack, clean_db, toxiproxy, service_intervals):
        assert service_intervals.heartbeat_ms == 1000
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("CREATE TABLE runs (id text primary key); INSERT INTO runs VALUES ('r1')")
        toxiproxy.add_toxic(stack.info.proxies["sse"], Toxic("latency", attributes={"latency": 50}))
        toxiproxy.disable(stack.info.proxies["pg_api"])
        stack.process("api-0").pause()

    @pytest.mark.stack
    def test_b_is_healed_and_clean(stack, toxiproxy, clean_db):
        assert all(p.enabled and not p.toxics for p in toxiproxy.list_proxies().values())
        assert not stack.process("api-0").paused
        assert httpx.get(stack.info.api_url + "/healthz").status_code == 200
        with psycopg.connect(clean_db) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)

    def test_c_factory(stack_factory, stack_info):
        other = stack_factory(nginx="buffered", api_replicas=2, heartbeat_ms=500)
        assert other.info.api_url != stack_info.api_url and other.nginx is not None
        assert len(other.info.api_direct_urls) == 2
        assert httpx.get(other.info.api_url + "/healthz").status_code == 200
''')


def test_plugin_fixtures_in_a_real_session(tmp_path: Path, isolated_state_dir: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    env = {**os.environ, "HARNESS_SERVICE_COMMAND": f"{sys.executable} {FAKE_SERVICE}"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "harness.pytest_plugin", "-p", "no:cacheprovider",
                             "-q", "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
    assert not list((isolated_state_dir / "procs").glob("*.json"))  # everything it started was stopped


def test_plugin_imports_without_starting_anything() -> None:
    code = "import harness.pytest_plugin, sys; print('harness.stack.local_stack' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
