"""The owner's end of the control channel: HTTP with JSON on 127.0.0.1 (a free port), every request
carrying `Authorization: Bearer <token>`.

`POST /<action>` with the action's arguments as a JSON object answers 200 `{"result": ...}`; 400
`{"error": ...}` for a bad request (a bad name: the message lists the valid ones); 500 `{"error": ...}`
when the action failed; 401 for a wrong or missing token; 404 for an unknown action. The handler
threads only queue the request: `submit` runs it on the owner's main thread and returns its result.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.stack.ports import LOOPBACK

__all__ = ["REQUEST_TIMEOUT_S", "ControlServer"]

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 300.0  # the longest action: a restart waiting for readiness, a reload, a lock wait
Submit = Callable[[str, dict[str, Any]], Any]


class ControlServer:
    def __init__(self, actions: set[str], submit: Submit) -> None:
        self.token = secrets.token_urlsafe(24)
        self._actions, self._submit = actions, submit
        self._http = ThreadingHTTPServer((LOOPBACK, 0), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="harness-control", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._http.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def answer(self, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if not hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode()):
            return 401, {"error": "wrong or missing control token (the stack's owner writes it to stack.json)"}
        action = path.strip("/")
        if action not in self._actions:
            return 404, {"error": f"unknown action {action!r}; actions: {', '.join(sorted(self._actions))}"}
        try:
            args = json.loads(body or b"{}")
            if not isinstance(args, dict):
                raise ConfigError("the request body must be a JSON object of arguments")
            return 200, {"result": self._submit(action, args)}
        except (ConfigError, json.JSONDecodeError) as exc:  # bad names, bad arguments, bad JSON
            return 400, {"error": str(exc)}
        except HarnessError as exc:
            return 500, {"error": str(exc)}
        except Exception as exc:  # a bug: the owner keeps serving; the traceback goes to its log
            log.exception("control action %s failed", action)
            return 500, {"error": f"{action} failed: {exc!r} (see the owner's supervisor.log)"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, data = server.answer(self.path, self.headers.get("Authorization", ""), body)
                payload = json.dumps(data, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per request would drown the owner's log

        return Handler
