"""The control channel to a stack's owner (`harness up`): the owner listens on loopback with a random
token (both in stack.json) and performs every fault and process action itself, on its own LocalStack,
logging each change to `<state>/fault_log.jsonl`.

- `owner.Owner`: run inside the owner (harness/stack/supervisor.py `serve`);
- `client.ask_owner`: used by `harness fault` and `harness recover restart-outbox`;
- `fault_log.active_faults`: the faults active now, from the log (for `harness watch`).
"""
