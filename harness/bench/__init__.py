"""harness.bench: `harness bench` (`make bench`): end-to-end lag and throughput on the real local stack.

- `stream_lag`: N open SSE streams while a paced generator appends R events/s; lag = client parse
  time - the event's `ts`.
- `throughput`: closed-loop appenders as fast as the stack goes; appended/s, published/s, publish lag.
- `loadgen`: the load processes (SSE consumers, appenders); they run apart from the harness so the
  measuring event loop is not the one generating load.
- `rawhttp`: the minimal loopback HTTP/1.1 + SSE client those processes use.
- `stats`, `cpu`, `report`: percentiles, per-process CPU accounting, the Markdown / rich rendering.

Importing this package starts nothing and imports nothing heavy (the load processes import it).
"""
