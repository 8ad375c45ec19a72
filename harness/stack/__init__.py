"""harness.stack: the real local stack (PostgreSQL, toxiproxy, nginx, the service) owned by the harness.

Public surface re-exported here; everything else is an implementation detail of its module.
"""

from __future__ import annotations

from harness.stack.config import StackConfig
from harness.stack.db_reset import truncate_service_tables
from harness.stack.info import ProcessInfo, StackInfo
from harness.stack.janitor import get_janitor, install_signal_handlers, reap_leftovers
from harness.stack.local_stack import LocalStack
from harness.stack.nginx import NginxMode
from harness.stack.postgres import PostgresSettings
from harness.stack.processes import ManagedProcess, ProcessSpec
from harness.stack.service import Intervals, ServiceConfig
from harness.stack.toxiproxy_api import ProxyInfo, Toxic, ToxiproxyApi
from harness.stack.waiting import until, wait_until

__all__ = [
    "Intervals",
    "LocalStack",
    "ManagedProcess",
    "NginxMode",
    "PostgresSettings",
    "ProcessInfo",
    "ProcessSpec",
    "ProxyInfo",
    "ServiceConfig",
    "StackConfig",
    "StackInfo",
    "Toxic",
    "ToxiproxyApi",
    "get_janitor",
    "install_signal_handlers",
    "reap_leftovers",
    "truncate_service_tables",
    "until",
    "wait_until",
]
