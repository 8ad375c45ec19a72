"""A stand-in for the service under test with the contract's process surface only.

`python fake_service.py ROLE`: `migrate` records its DATABASE_URL and exits 0 (or 3 when
FAKE_MIGRATE_FAIL is set); `api` answers /healthz on API_PORT; workers answer /healthz on ADMIN_PORT.
Every process writes one JSON line with its environment's interesting keys to stdout.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"ok": True, "service": os.environ.get("SERVICE_NAME")}).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main(role: str) -> int:
    keys = ("DATABASE_URL", "API_PORT", "ADMIN_PORT", "ADMIN_TOKEN", "HEARTBEAT_MS", "FAILPOINTS", "SERVICE_NAME")
    print(json.dumps({"msg": "start", "role": role, **{k: os.environ.get(k) for k in keys}}), flush=True)
    if role == "migrate":
        return 3 if os.environ.get("FAKE_MIGRATE_FAIL") else 0
    if os.environ.get("FAKE_CRASH_ROLE") == role:
        return 4
    port = int(os.environ["API_PORT"] if role == "api" else os.environ["ADMIN_PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Health).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
