"""Admin and ops routes shared by the api and the workers' ops listener.

`/admin/failpoints` is off (404) unless ADMIN_TOKEN is set, then needs `Authorization: Bearer
<token>` from a loopback client: arming `crash` remotely must never be possible.
"""

from __future__ import annotations

import hmac


from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import metrics
from .config import is_loopback
from .failpoints import FailpointSpecError, check_name, parse_action, registry
from .http_util import ApiError, read_json

__all__ = ["admin_routes", "metrics_endpoint"]


def _authorize(request: Request, token: str | None) -> None:
    if not token:
        raise ApiError(404, "not found")
    if not is_loopback(request.client.host if request.client else None):
        raise ApiError(403, "admin endpoints answer loopback clients only")
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise ApiError(401, "missing or wrong bearer token")


def _name(request: Request) -> str:
    try:
        return check_name(request.path_params["name"])
    except FailpointSpecError as exc:
        raise ApiError(404, str(exc)) from None


def admin_routes(token: str | None) -> list[Route]:
    async def list_(request: Request) -> Response:
        _authorize(request, token)
        return JSONResponse({"failpoints": registry.snapshot()})

    async def put(request: Request) -> Response:
        _authorize(request, token)
        name, body = _name(request), await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("action"), str):
            raise ApiError(400, 'body must be {"action": "<[N*]off|crash|sleep(MS)|error|hang>"}')
        try:
            action = parse_action(body["action"])
        except FailpointSpecError as exc:
            raise ApiError(400, str(exc)) from None
        registry.set(name, action)
        return JSONResponse({"name": name, "action": str(action)})

    async def delete(request: Request) -> Response:
        _authorize(request, token)
        name = _name(request)
        registry.clear(name)
        return JSONResponse({"name": name, "action": "off"})

    return [
        Route("/admin/failpoints", list_, methods=["GET"]),
        Route("/admin/failpoints/{name}", put, methods=["PUT"]),
        Route("/admin/failpoints/{name}", delete, methods=["DELETE"]),
    ]


async def metrics_endpoint(request: Request) -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


