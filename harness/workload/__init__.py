"""Workload: the service's clients that record what they did and saw into the History."""

from __future__ import annotations

from harness.workload.httpx_sse_consumer import open_httpx_sse
from harness.workload.runs_client import ClientConfig, RunScript, RunsClient
from harness.workload.sse_consumer import (
    ConsumerConfig,
    ConsumerOutcome,
    ResumeMode,
    SSEConsumer,
    StreamOpener,
    consume_all,
    decode_frame,
    open_lines,
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
    "StreamOpener",
    "consume_all",
    "decode_frame",
    "open_httpx_sse",
    "open_lines",
    "parse",
    "split_lines",
]
