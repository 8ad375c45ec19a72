"""Workload: the service's clients that record what they did and saw into the History."""

from __future__ import annotations

from harness.workload.runs_client import ClientConfig, RunScript, RunsClient
from harness.workload.sse_consumer import (
    ConsumerConfig,
    ConsumerOutcome,
    ResumeMode,
    SSEConsumer,
    consume_all,
    decode_frame,
)
from harness.workload.sse_parser import SSEComment, SSEEvent, SSEItem, SSEParser, parse, split_lines

__all__ = [
    "ClientConfig",
    "ConsumerConfig",
    "ConsumerOutcome",
    "ResumeMode",
    "RunScript",
    "RunsClient",
    "SSEComment",
    "SSEConsumer",
    "SSEEvent",
    "SSEItem",
    "SSEParser",
    "consume_all",
    "decode_frame",
    "parse",
    "split_lines",
]
