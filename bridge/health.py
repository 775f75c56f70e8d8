"""The bridge's first routes (aiohttp): ``GET /health`` and a call's IVR outcome.

- ``/health``: liveness and a few live figures, what process supervisors and
  tests poll.
- ``/api/calls/{call_id}/ivr``: what the speech IVR heard and decided for a
  call in the flow or ended recently (transcript, intent, confidence, queue,
  decision latency, prompts, attempts), as JSON; 404 for an unknown call.
  ``hotline call`` reads it. The listener is on loopback by default; the
  authenticated REST API of the conversation store replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web


async def run_health_site(
    host: str,
    port: int,
    status: Callable[[], dict[str, object]],
    call_outcome: Callable[[str], dict[str, Any] | None] | None = None,
) -> web.AppRunner:
    """Serve the routes on ``host:port``; return the runner (call ``cleanup`` to stop)."""

    async def health(_: web.Request) -> web.Response:
        body = status()
        return web.json_response(body, status=200 if body.get("status") == "ok" else 503)

    async def ivr_outcome(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        outcome = call_outcome(call_id) if call_outcome is not None else None
        if outcome is None:
            return web.json_response(
                {"error": "no such call in the IVR", "call_id": call_id}, status=404
            )
        return web.json_response(outcome)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/api/calls/{call_id}/ivr", ivr_outcome)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
