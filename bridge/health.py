"""``GET /health``: liveness and a few live figures, as JSON (aiohttp).

The full REST API, pages and metrics come later; this is the first route of the
bridge and what process supervisors and tests poll.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


async def run_health_site(
    host: str, port: int, status: Callable[[], dict[str, object]]
) -> web.AppRunner:
    """Serve ``/health`` on ``host:port``; return the runner (call ``cleanup`` to stop)."""

    async def health(_: web.Request) -> web.Response:
        body = status()
        return web.json_response(body, status=200 if body.get("status") == "ok" else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
