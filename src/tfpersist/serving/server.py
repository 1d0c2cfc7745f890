"""TF Serving's REST API on aiohttp, and the server's life: start, serve, drain, stop.

- ``POST /v1/models/NAME[/versions/N | /labels/L]:predict``; ``:classify`` and ``:regress``
  answer 501 (not implemented), as TF Serving does for a model without those signatures;
- ``GET /v1/models/NAME[/versions/N | /labels/L]``: each version's state (AVAILABLE only
  once loaded and warmed: a readiness probe), ``…/metadata``: the signature;
- ``GET /monitoring/prometheus/metrics``: Prometheus text (metrics.py);
- ``GET /healthz`` (alive) and ``GET /readyz`` (200 once a version is AVAILABLE, 503 while
  none is or while draining) — which TF Serving lacks.

Errors are ``{"error": "…"}`` with TF Serving's statuses (service.CODES). Safe by default: the
model passed ``predict``'s checks before the port opens, the server binds to 127.0.0.1 unless
told otherwise, bodies over ``max_request_bytes`` get 413.

``Server.drain`` is what SIGTERM does: stop listening, answer 503 to new requests on open
connections, let every request in flight finish (up to a bound), then close.
"""

from __future__ import annotations

import asyncio
import threading
import time

from tfpersist.errors import TfpersistError
from tfpersist.serving import metrics, rest, servables
from tfpersist.serving.options import DEFAULT_PORT, MAX_REQUEST_BYTES
from tfpersist.serving.service import Service, code_of

JSON = "application/json"


def make_app(service: Service, max_request_bytes: int = MAX_REQUEST_BYTES):
    """The aiohttp application serving ``service``'s model."""
    from aiohttp import web

    name = service.name

    def answer(body: bytes, status: int = 200):
        return web.Response(body=body, status=status, content_type=JSON)

    def failure(e: Exception):
        return answer(rest.error(str(e)), code_of(e)[1])

    def target(request):
        version = request.match_info.get("version")
        if version is not None and not version.isdigit():
            raise rest.BadRequest(f"version '{version}' is not a number")
        return (int(version) if version else None), request.match_info.get("label")

    def unknown(request):
        asked = request.match_info["name"]
        return answer(rest.error(f"Servable not found for request: Latest({asked})"), 404)

    async def predict(request):
        if request.match_info["name"] != name:
            return unknown(request)
        start = time.perf_counter()
        try:
            version, label = target(request)
            servable = service.begin("predict", "REST", version, label)
        except Exception as e:
            return failure(e)
        error = None
        try:
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                error = rest.BadRequest(f"the request is over {max_request_bytes} bytes")
                return answer(rest.error(str(error)), 413)
            try:
                body = rest.decode(raw)
            except ValueError as e:
                raise rest.BadRequest(f"the body is not JSON ({e})") from None
            feeds, kind = rest.parse(body, servable.model)
            outputs = await service.predict(servable, feeds)
            return answer(rest.encode(outputs, kind))
        except Exception as e:
            error = e
            return failure(e)
        finally:
            service.end(servable, "predict", "REST", start, error)

    async def unimplemented(request):
        method = request.match_info["method"]
        return answer(rest.error(f"{method} is not implemented: this server serves predict"), 501)

    def describing(describe):
        async def handler(request):
            if request.match_info["name"] != name:
                asked = request.match_info["name"]
                return answer(rest.error(f"Could not find any versions of model {asked}"), 404)
            try:
                return answer(rest.orjson.dumps(describe(*target(request))))
            except Exception as e:
                return failure(e)

        return handler

    def status(version, label):
        states = service.catalog.states()
        if label is not None:
            with service.catalog.use(label=label) as servable:
                version = servable.version
        if version is not None:
            states = [s for s in states if s.version == version]
            if not states:
                raise servables.no_version(name, version)
        return rest.status(states)

    def model_metadata(version, label):
        with service.catalog.use(version, label) as servable:
            return rest.metadata(servable.model, name, servable.version)

    async def scrape(request):
        service.metrics.versions(name, service.catalog.states())
        return web.Response(
            body=service.metrics.text(), headers={"Content-Type": metrics.CONTENT_TYPE}
        )

    async def healthz(request):
        return web.Response(text="ok\n")

    async def readyz(request):
        ready = not service.catalog.draining and service.catalog.latest() is not None
        return web.Response(
            text="ready\n" if ready else "not ready\n", status=200 if ready else 503
        )

    app = web.Application(client_max_size=max_request_bytes)
    base = "/v1/models/{name}"
    for where in ("", "/versions/{version}", "/labels/{label}"):
        app.router.add_post(f"{base}{where}:predict", predict)
        app.router.add_post(f"{base}{where}:{{method:classify|regress}}", unimplemented)
        app.router.add_get(f"{base}{where}", describing(status))
        app.router.add_get(f"{base}{where}/metadata", describing(model_metadata))
    app.router.add_get(metrics.PATH, scrape)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's where it is installed (libuv: ~35 % more requests a second than asyncio's own
    loop with wrk -c8 here), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # not built for this platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Server:
    """The REST app on ``host:port`` (port 0: a free one) on an event loop of its own thread:
    ``start()`` returns the port; ``drain(seconds)`` stops gracefully; ``stop()`` at once."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = DEFAULT_PORT, service=None):
        self.app, self.host, self.port, self.service = app, host, port, service
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner = self._site = None

    def start(self) -> int:
        from aiohttp import web

        async def up():
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            await self._runner.setup()
            self._site = web.TCPSite(self._runner, self.host, self.port)
            await self._site.start()
            return self._site._server.sockets[0].getsockname()[1]

        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(up(), self.loop).result()
        except OSError as e:
            self.stop()
            raise TfpersistError(
                f"cannot listen on {self.host}:{self.port} ({e.strerror})"
            ) from None
        return self.port

    def drain(self, seconds: float = 30.0) -> int:
        """Stop listening, answer 503 to new requests, wait up to ``seconds`` for the ones in
        flight; returns how many were still in flight when it gave up (0: all answered)."""
        if self.service is not None:
            self.service.catalog.draining = True
        if self._site is not None:
            asyncio.run_coroutine_threadsafe(self._site.stop(), self.loop).result()
        deadline = time.monotonic() + seconds
        left = self.service.in_flight if self.service else 0
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = self.service.in_flight
        self.stop()
        return left

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result()
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
