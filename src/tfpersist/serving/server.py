"""TF Serving's REST API on Granian, and the server's life: start, serve, drain, stop.

- ``POST /v1/models/NAME[/versions/N | /labels/L]:predict`` (jsontensor.py), ``:classify``
  and ``:regress`` (examples.py), any signature by ``signature_name`` (signatures.py);
- ``GET /v1/models/NAME[/versions/N | /labels/L]``: each version's state (AVAILABLE only
  once loaded and warmed: a readiness probe), ``…/metadata``: every signature;
- ``GET /monitoring/prometheus/metrics``: Prometheus text (metrics.py);
- ``GET /healthz`` (alive) and ``GET /readyz`` (200 once a version is AVAILABLE, 503 while
  none is or while draining) — which TF Serving lacks;
- ``/v2/…``: the Open Inference Protocol (KServe v2), v2.py.

Errors are ``{"error": "…"}`` with TF Serving's statuses (service.CODES) and messages, no
server paths in them. Under ``/v1/`` its URL grammar decides: what its regular expressions do
not take, whatever the method, is 400 "Malformed request"; elsewhere a path the server does
not have is 404, a method a path does not take 405. Safe by default: the model passed
``predict``'s checks before the port opens, the server binds to 127.0.0.1 unless told
otherwise, bodies over ``max_request_bytes`` get 413 (read no further).

The HTTP layer is `Granian <https://github.com/emmett-framework/granian>`_ (hyper, in Rust)
embedded on the server's own event loop, through its RSGI interface: parsing, keep-alive and
writing happen in Rust, the handler below runs on the loop with the batcher and the gRPC
calls. Against aiohttp on the same loop it answers ~2× the requests a second (bench). Its
listener sets SO_REUSEPORT, which would let a second server share a taken port unnoticed: the
socket is bound here, without it, and handed over.

``Server.drain`` is what SIGTERM does (``quiesce``, then ``stop``): the listening socket closes
(new connections are refused), and Granian's graceful shutdown (hyper's) closes each idle
connection and lets each busy one finish its request — read before the signal, queued or
batched, or its body still arriving — answered as any other, then closes it. Nothing is
refused with 503: a request that reaches the handler was read before the drain began. The
drain is over when Granian's last connection has closed (its ``serve()`` returns), or when the
bound runs out.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from urllib.parse import unquote

from tfpersist.core.errors import TfpersistError
from tfpersist.serving import examples, jsontensor, metrics, rest, servables, signatures, v2
from tfpersist.serving.options import DEFAULT_PORT, MAX_REQUEST_BYTES
from tfpersist.serving.rest import answer as _answer
from tfpersist.serving.rest import not_allowed as _not_allowed
from tfpersist.serving.service import Service, code_of

TEXT = [("content-type", "text/plain; charset=utf-8")]
# TF Serving's (http_rest_api_util.h): case-insensitive, the verb itself compared exactly
POST_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<verb>classify|regress|predict)",
    re.IGNORECASE,
)
GET_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<metadata>metadata))?",
    re.IGNORECASE,
)
VERBS = (None, "predict", "classify", "regress")
METHODS = {"classify": signatures.CLASSIFY, "regress": signatures.REGRESS}


class TooLarge(Exception):
    """A body over ``max_request_bytes`` (HTTP 413)."""


class App:
    """The RSGI application serving ``service``'s model (``__rsgi__`` per request)."""

    def __init__(self, service: Service, max_request_bytes: int = MAX_REQUEST_BYTES):
        self.service, self.limit = service, max_request_bytes
        self.name = service.name
        self._gets = {
            metrics.PATH: self._scrape,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
        }
        self.v2 = v2.Rest(service, self._run, _failure)  # /v2: KServe's protocol

    def __rsgi_init__(self, loop) -> None:
        pass

    def __rsgi_del__(self, loop) -> None:
        pass

    async def __rsgi__(self, scope, proto) -> None:
        if scope.proto != "http":  # websockets are off; nothing else arrives
            return
        try:
            await self._dispatch(scope, proto)
        except Exception as e:  # a bug of ours: an answer all the same, never a dropped socket
            _answer(proto, rest.error(f"internal error: {type(e).__name__}: {e}"), 500)

    async def _dispatch(self, scope, proto) -> None:
        path, method = scope.path, scope.method
        if path.startswith("/v1/") or path[:4].lower() == "/v1/":  # all TF Serving's API
            pending = self._v1(scope, proto, path, method)  # a request to run, or answered
            if pending is not None:
                await pending
            return
        if path.startswith("/v2"):  # KServe's v2 protocol (v2.py)
            return await self.v2.dispatch(scope, proto)
        handler = self._gets.get(path)
        if handler is None:
            return _answer(proto, rest.error(f"no such path: {path}"), 404)
        if method not in ("GET", "HEAD"):
            return _not_allowed(proto, method, path, "GET")
        return handler(proto)

    def _v1(self, scope, proto, path: str, method: str):
        """TF Serving's URL grammar (http_rest_api_handler.cc): what its regular expressions
        do not take is 400 "Malformed request", whatever the method. A predict, classify or
        regress is returned to await (one coroutine less a request); the rest is answered."""
        found = (POST_PATH if method == "POST" else GET_PATH).fullmatch(path)
        verb = found["verb"] if found is not None and method == "POST" else None
        if found is None or method not in ("GET", "POST") or verb not in VERBS:
            return _answer(proto, rest.error(f"Malformed request: {method} {path}"), 400)
        name = unquote(found["name"] or "")
        if not name:
            return _answer(proto, rest.error("Missing model name in request."), 400)
        try:
            label = found["label"]
            target = rest.target(found["version"], unquote(label) if label else None)
        except Exception as e:
            return _failure(proto, e)
        if verb:
            if name != self.name:
                unknown = f"Servable not found for request: Latest({name})"
                return _answer(proto, rest.error(unknown), 404)
            return self._run(scope, proto, verb, *target, *PARSERS[verb])
        if name != self.name:
            missing = f"Could not find any versions of model {name}"
            if found["metadata"]:
                missing = f"Servable not found for request: Latest({name})"
            return _answer(proto, rest.error(missing), 404)
        describe = self._metadata if found["metadata"] else self._status
        try:
            body = rest.orjson.dumps(describe(*target))
        except Exception as e:
            return _failure(proto, e)
        _answer(proto, body)

    async def _run(self, scope, proto, api: str, version, label, parse, answer) -> None:
        """One inference over REST, /v1's or /v2's (``api``: its name in the metrics): the
        servable, the body (413 past the limit), ``parse(raw, scope, model)`` → (signature
        key, feeds, what ``answer`` needs), the prediction (batched), then
        ``answer(proto, outputs, parsed, servable)``; an error answered as ``_failure`` does."""
        service = self.service
        start = time.perf_counter()
        try:
            servable = service.begin(api, "REST", version, label)
        except Exception as e:
            return _failure(proto, e)
        error = None
        service.arriving += 1
        try:
            try:
                try:
                    raw = await self._body(scope, proto)
                except TooLarge as e:
                    error = rest.BadRequest(str(e))
                    return _answer(proto, rest.error(str(e)), 413)
                key, feeds, parsed = parse(raw, scope, servable.model)
            finally:
                service.arriving -= 1
            answer(proto, await service.predict(servable, feeds, key), parsed, servable)
        except Exception as e:
            error = e
            _failure(proto, e)
        finally:
            service.end(servable, api, "REST", start, error)

    async def _body(self, scope, proto) -> bytes:
        """The whole body, refused as soon as it is known to be over the limit."""
        over = f"the request is over {self.limit} bytes"
        length = scope.headers.get("content-length")
        if length is not None:
            if length.strip().isdigit() and int(length) > self.limit:
                raise TooLarge(over)
            return await proto()
        chunks, size = [], 0  # chunked: counted as it comes
        async for chunk in proto:
            size += len(chunk)
            if size > self.limit:
                raise TooLarge(over)
            chunks.append(chunk)
        return b"".join(chunks)

    def _status(self, version, label) -> dict:
        """Every version's state, or one's; a label is read past, as TF Serving does."""
        states = self.service.catalog.states()
        if version is not None:
            states = [s for s in states if s.version == version]
            if not states:
                raise servables.no_version(self.name, version)
        return rest.status(states)

    def _metadata(self, version, label) -> dict:
        with self.service.catalog.use(version, label) as servable:
            return rest.metadata(servable.model, self.name, servable.version)

    def _scrape(self, proto) -> None:
        service = self.service
        service.metrics.versions(self.name, service.catalog.states())
        proto.response_bytes(200, [("content-type", metrics.CONTENT_TYPE)], service.metrics.text())

    def _healthz(self, proto) -> None:
        proto.response_bytes(200, TEXT, b"ok\n")

    def _readyz(self, proto) -> None:
        catalog = self.service.catalog
        ready = not catalog.draining and catalog.latest() is not None
        proto.response_bytes(200 if ready else 503, TEXT, b"ready\n" if ready else b"not ready\n")


def make_app(service: Service, max_request_bytes: int = MAX_REQUEST_BYTES) -> App:
    return App(service, max_request_bytes)


def _json(raw: bytes):
    try:
        return rest.decode(raw)
    except ValueError as e:
        raise rest.BadRequest(f"JSON Parse error: {e}") from None


def _parse_predict(raw: bytes, scope, model) -> tuple[str, dict, str]:
    return jsontensor.parse(_json(raw), raw, model)  # (signature key, feeds, row or columnar)


def _answer_predict(proto, outputs: dict, kind: str, servable) -> None:
    _answer(proto, rest.encode(outputs, kind))


def _examples_verb(verb: str):
    """``_run``'s parse and answer for a REST classify or regress."""
    method = METHODS[verb]

    def parse(raw: bytes, scope, model) -> tuple[str, dict, int]:
        return _examples(verb, _json(raw), model)

    def answer(proto, outputs: dict, count: int, servable) -> None:
        _answer(proto, examples.results_json(method, outputs, count))

    return parse, answer


PARSERS = {  # a verb's parse and answer (App._run)
    "predict": (_parse_predict, _answer_predict),
    "classify": _examples_verb("classify"),
    "regress": _examples_verb("regress"),
}


def _examples(verb: str, body, model) -> tuple[str, dict, int]:
    """A REST classify or regress request: (signature key, its feed, how many examples)."""
    name, context, given = examples.rest_request(verb, body)
    key, _ = examples.signature(model, name, METHODS[verb])
    head = None if context is None else examples.to_example(context)
    feed = examples.serialized(head, [examples.to_example(e) for e in given])
    return key, {"inputs": feed}, len(given)


def _failure(proto, error: Exception) -> None:
    _answer(proto, rest.error(str(error)), code_of(error)[1])


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's where it is installed (libuv: ~35 % more requests a second than asyncio's own
    loop with wrk -c8 here), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # not built for this platform
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket without SO_REUSEPORT: a taken port is an error, as it should be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not REUSEPORT
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Server:
    """The REST app on ``host:port`` (port 0: a free one) on an event loop of its own thread:
    ``start()`` returns the port; ``drain(seconds)`` stops gracefully; ``stop()`` at once."""

    BACKLOG = 2048

    def __init__(self, app, host: str = "127.0.0.1", port: int = DEFAULT_PORT, service=None):
        self.app, self.host, self.port, self.service = app, host, port, service
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._granian = self._task = None
        self._listener = (-1, 0)  # the listening socket's descriptor and inode
        self._quiescing = False

    def start(self) -> int:
        try:
            sock = _listen(self.host, self.port, self.BACKLOG)
        except OSError as e:
            raise TfpersistError(
                f"cannot listen on {self.host}:{self.port} ({e.strerror or e})"
            ) from None
        self.port = sock.getsockname()[1]
        self._listener = (sock.fileno(), os.fstat(sock.fileno()).st_ino)
        self._granian = _embedded(self.app, sock, self.host, self.port, self.BACKLOG, self.service)
        self._thread.start()

        async def up():
            self._task = asyncio.ensure_future(self._granian.serve())
            while not self._granian.listening and not self._task.done():
                await asyncio.sleep(0.001)
            if self._task.done():
                self._task.result()  # what stopped it

        try:
            asyncio.run_coroutine_threadsafe(up(), self.loop).result(timeout=30)
        except Exception as e:
            self.stop()
            raise TfpersistError(f"cannot serve on {self.host}:{self.port} ({e})") from None
        return self.port

    def drain(self, seconds: float = 30.0) -> int:
        """``quiesce(seconds)``, then ``stop()``; returns how many requests were still being
        answered when the bound ran out (0: all answered)."""
        self.quiesce(seconds)
        left = self.service.in_flight if self.service else 0
        self.stop()
        return left

    def quiesce(self, seconds: float = 30.0, refusing=None) -> bool:
        """Stop listening (``refusing()`` is called once the socket is closed), then wait up
        to ``seconds`` in all until every connection already accepted has had its request
        answered and closed. True when all have; the event loop runs on (gRPC may need it)."""
        if self.service is not None:
            self.service.catalog.draining = True  # /readyz: 503
        task, granian = self._task, self._granian
        if task is None:
            if refusing is not None:
                refusing()
            return True
        deadline = time.monotonic() + seconds
        self._quiescing = True
        self.loop.call_soon_threadsafe(granian.stop)
        while self._listening() and time.monotonic() < deadline:
            time.sleep(0.001)  # Granian's acceptor (a Rust thread) closes it, at once
        if refusing is not None:
            refusing()

        async def closed() -> bool:
            await asyncio.wait([task], timeout=max(0.0, deadline - time.monotonic()))
            return task.done()

        if not asyncio.run_coroutine_threadsafe(closed(), self.loop).result():
            return False
        self._task = None
        return True

    def _listening(self) -> bool:
        fd, inode = self._listener
        try:
            return os.fstat(fd).st_ino == inode
        except OSError:  # closed
            return False

    def stop(self) -> None:
        """At once: whatever is in flight is cut (after a drain that ran out of time, no
        further wait)."""
        task, self._task = self._task, None
        granian, waited = self._granian, self._quiescing

        async def down():
            if task is not None:
                granian.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(task), 0 if waited else 1.0)
                except TimeoutError:
                    for worker in granian.wrks:
                        worker.kill()
                    task.cancel()
            for _ in range(3):  # abandoned: a gRPC thread awaiting one returns
                others = asyncio.all_tasks() - {asyncio.current_task()}
                if not others:
                    break
                for other in others:
                    other.cancel()
                await asyncio.wait(others, timeout=0.1)

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(down(), self.loop).result(timeout=10)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread.is_alive():
            self._thread.join(timeout=10)


def _embedded(app, sock: socket.socket, host: str, port: int, backlog: int, service):
    """Granian's embedded server on the running loop, serving ``app`` on ``sock`` (owned
    by it from here on)."""
    from granian._granian import SocketHolder
    from granian.constants import Interfaces
    from granian.server.embed import Server as Granian

    class Embedded(Granian):
        listening = False

        def _init_shared_socket(self):  # the socket bound above, not Granian's REUSEPORT one
            self._shd = SocketHolder(sock.detach(), False, backlog)
            self._sfd = self._shd.get_fd()
            self._ssp = None
            self.listening = True

    queued = service.max_queued if service is not None else 1024
    return Embedded(
        app,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        websockets=False,
        backlog=backlog,
        # connections taken at once; past it they wait in the kernel's queue. Above
        # --max-queued so that the service, not the socket, answers overload (429).
        backpressure=max(4 * queued, 4096),
        log_enabled=False,
        # incremental: levels only. Granian's own config is a full dictConfig, which closes
        # every logging handler the process has (pytest lost its captured stderr to it)
        log_dictconfig={
            "incremental": True,
            "handlers": {},
            "loggers": {"_granian": {"level": "CRITICAL"}, "granian.access": {"level": "CRITICAL"}},
        },
    )
