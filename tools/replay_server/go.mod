module outbox-sse-harness/tools/replay_server

go 1.22
