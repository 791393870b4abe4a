"""`minfer serve`: the continuous-batching engine behind an OpenAI-compatible HTTP API (lesson 15).

    minfer serve --model classroom --port 8000      # then: openai.OpenAI(base_url="http://127.0.0.1:8000/v1")

A request body becomes the engine's arguments, and the engine's outputs OpenAI's answers, in
`minfer.serving.openai_api`: every field checked once, there. This module runs it all:

1. `EngineLoop`, the one thread that owns the engine. It takes the requests and aborts that
   arrived, runs `engine.step()`, and hands each `RequestOutput` to the asyncio handler waiting
   for it (`loop.call_soon_threadsafe` into the handler's queue). With no work it sleeps on a
   condition variable: an idle server uses no CPU.
2. `Metrics`: the Prometheus metrics, fed from `engine.stats()` and the outputs.
3. The Starlette app: routes that answer in OpenAI's JSON or as server-sent events, the API
   key, the per-client limit, and the playground page.

A client that goes away (a closed stream, a dropped connection) aborts its request at once, and
its KV blocks are freed at the next step. SIGTERM or Ctrl-C stops taking requests, ends those
in flight (each gets an error saying the server is stopping) and exits with status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import hmac
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from minfer.errors import InvalidInputError, MinferError
from minfer.model import Model
from minfer.serving.engine import Engine, EngineStats, RequestOutput
from minfer.serving.openai_api import (
    ApiError,
    EngineRequest,
    Reply,
    chat_request,
    completion_request,
    is_int,
    sampling_defaults,
)

log = logging.getLogger("minfer.serve")

MAX_BODY_BYTES = 1 << 20  # a request body; a context's worth of text is a few kilobytes
RETRY_AFTER_SECONDS = 2  # told to a client refused for a full queue: a few decode steps' worth of waiting
SHUTDOWN_GRACE_SECONDS = 5  # after SIGTERM, for the aborted requests' connections to close


# ---------------------------------------------------------------- 1. the engine's thread

ACCEPTED = "accepted"  # the first item on a ticket's queue when the engine took the request


@dataclass(eq=False)
class Ticket:
    """One HTTP request's place in the engine: what it asks, and the queue its outputs arrive on
    (ACCEPTED or the engine's refusal first, then RequestOutputs, or an exception if the engine failed)."""

    request: EngineRequest
    outputs: asyncio.Queue
    loop: asyncio.AbstractEventLoop  # the handler's event loop, into which the engine thread puts
    request_id: int | None = None  # the engine's id, once added (engine thread only)
    aborted: bool = False  # engine.abort was called for it (engine thread only)
    cancelled: bool = False  # the client went away
    done: bool = False  # the handler saw the last output (event loop only)

    def put(self, item) -> None:
        """Hand an item to the handler (from the engine thread)."""
        with contextlib.suppress(RuntimeError):  # the event loop has closed: nobody is waiting
            self.loop.call_soon_threadsafe(self.outputs.put_nowait, item)


class EngineLoop:
    """The thread that owns the engine: the only caller of `step` (and of `stats`)."""

    def __init__(self, engine: Engine, metrics: Metrics):
        self.engine, self.metrics = engine, metrics
        self.wake = threading.Condition()  # guards the four fields below
        self.arriving: list[Ticket] = []
        self.leaving: list[Ticket] = []
        self.closed = False
        self.waiting = 0  # requests not yet running: arriving + the engine's queue (for --max-waiting)
        self.tickets: dict[int, Ticket] = {}  # engine id -> ticket, for the requests in the engine
        self.last: tuple[EngineStats, float] | None = None  # the last step's stats and time, for GET /v1/engine
        self.thread = threading.Thread(target=self.run, name="minfer-engine", daemon=True)

    def submit(self, ticket: Ticket) -> None:
        with self.wake:
            if self.closed:
                raise ApiError(503, "the server is shutting down")
            self.arriving.append(ticket)
            self.waiting += 1
            self.wake.notify()

    def abort(self, ticket: Ticket) -> None:
        """The client went away: stop its request and free its blocks (at the next step)."""
        with self.wake:
            ticket.cancelled = True
            self.leaving.append(ticket)
            self.wake.notify()

    def close(self) -> None:
        """Take no more requests and abort every one in flight; the thread ends once they are out."""
        with self.wake:
            self.closed = True
            self.wake.notify()

    def run(self) -> None:
        self.observe([])
        while self.turn():
            pass

    def turn(self) -> bool:
        """Sleep until there is something to do; take arrivals and aborts; step; hand out the
        outputs. False once closed and empty."""
        arriving, leaving, closed = self.take()
        for ticket in arriving:
            if closed:
                ticket.put(ApiError(503, "the server is shutting down"))
            else:
                self.admit(ticket)
        for ticket in leaving + (list(self.tickets.values()) if closed else []):
            self.cancel(ticket)
        if closed and not self.engine.has_work():
            return False
        outputs = self.step()
        self.observe(outputs)  # before the outputs are handed out, so /metrics already counts them
        for out in outputs:
            found = self.tickets.pop(out.request_id, None) if out.finished else self.tickets.get(out.request_id)
            if found is not None:
                found.put(out)
        return True

    def take(self) -> tuple[list[Ticket], list[Ticket], bool]:
        """Wait (without spinning) for arrivals, aborts, a close or engine work. -> (arriving, leaving, closed)"""
        with self.wake:
            while not (self.arriving or self.leaving or self.closed or self.engine.has_work()):
                self.wake.wait()
            arriving, self.arriving, leaving, self.leaving = self.arriving, [], self.leaving, []
            return arriving, leaving, self.closed

    def admit(self, ticket: Ticket) -> None:
        if ticket.cancelled:
            return
        r = ticket.request
        try:
            ticket.request_id = self.engine.add_request(
                r.prompt, r.max_new_tokens, r.params, stop_strings=r.stop_strings, logprobs=r.logprobs
            )
        except MinferError as e:  # checked at once by the engine: too long for the cache, ...
            ticket.put(ApiError(400, flag_names(str(e))))
            return
        self.tickets[ticket.request_id] = ticket
        ticket.put(ACCEPTED)

    def cancel(self, ticket: Ticket) -> None:
        if ticket.request_id in self.tickets and not ticket.aborted:
            self.engine.abort(ticket.request_id)
            ticket.aborted = True

    def step(self) -> list[RequestOutput]:
        try:
            return self.engine.step() if self.engine.has_work() else []
        except Exception as e:  # a bug or NaN logits: fail the requests in flight, keep serving
            log.exception("engine step failed")
            return self.fail_all(e)

    def fail_all(self, error: Exception) -> list[RequestOutput]:
        for rid, ticket in self.tickets.items():
            self.engine.abort(rid)
            ticket.put(ApiError(500, f"the engine failed: {type(error).__name__}: {error}"))
        self.tickets.clear()
        return []

    def observe(self, outputs: list[RequestOutput]) -> None:
        stats = self.engine.stats()
        self.metrics.observe(stats, outputs)
        self.last = (stats, time.monotonic())  # made JSON only when asked: not on the step's path
        with self.wake:
            self.waiting = len(self.arriving) + stats.waiting


# The engine's arguments -> `minfer serve`'s flags, so that its messages name what a user can change.
FLAGS = {"max_batch": "--max-batch", "kv_blocks": "--kv-blocks", "block_size": "--block-size"}


def flag_names(message: str) -> str:
    """An engine message with its argument names as serve's flags ("start the engine with more
    kv_blocks" -> "start the server with more --kv-blocks")."""
    message = message.replace("start the engine", "start the server")
    return re.sub(r"\b(" + "|".join(FLAGS) + r")\b", lambda m: FLAGS[m.group(1)], message)


def engine_json(last: tuple[EngineStats, float] | None) -> dict:
    """The engine's state for the playground: every EngineStats field, the block map, and when
    it was taken ({} before the first step)."""
    if last is None:
        return {}
    stats, at = last
    data = dataclasses.asdict(stats)
    data.pop("blocks", None)
    return data | {"block_map": stats.block_map(), "time": at}


# ---------------------------------------------------------------- 2. metrics


class Metrics:
    """The server's Prometheus metrics, in a registry of its own. Gauges show the engine now;
    counters follow the engine's running totals; histograms get each request's latencies
    (time to first token, then every gap between tokens) and each step's decode batch."""

    GAUGES = {  # metric -> (EngineStats field, help)
        "minfer_requests_running": ("running", "requests being prefilled or decoded"),
        "minfer_requests_waiting": ("waiting", "requests queued for a place in the batch"),
        "minfer_kv_blocks_used": ("kv_blocks_used", "KV cache blocks held by a request"),
        "minfer_kv_blocks_cached": ("kv_blocks_cached", "free KV blocks still holding a cached prefix"),
        "minfer_kv_blocks_total": ("kv_blocks_total", "KV cache blocks in the pool"),
    }
    COUNTERS = {
        "minfer_prefix_cache_queries_total": ("prefix_cache_queries", "prompt tokens looked up in the prefix cache"),
        "minfer_prefix_cache_hits_total": ("prefix_cache_hits", "of those, tokens whose keys and values were reused"),
        "minfer_prompt_tokens_total": ("prompt_tokens", "prompt tokens of the requests admitted"),
        "minfer_generated_tokens_total": ("generated_tokens", "tokens sampled"),
        "minfer_preemptions_total": ("preemptions", "requests sent back to the queue for want of KV blocks"),
    }
    LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

    def __init__(self):
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.gauges = {name: Gauge(name, what, registry=r) for name, (_, what) in self.GAUGES.items()}
        self.counters = {name: Counter(name, what, registry=r) for name, (_, what) in self.COUNTERS.items()}
        self.ttft = Histogram(
            "minfer_time_to_first_token_seconds",
            "from a request's arrival to its first token",
            registry=r,
            buckets=self.LATENCY_BUCKETS,
        )
        self.tpot = Histogram(
            "minfer_time_per_output_token_seconds",
            "between two tokens of a request",
            registry=r,
            buckets=self.LATENCY_BUCKETS,
        )
        self.batch = Histogram(
            "minfer_batch_size",
            "sequences decoded together in one step",
            registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.totals = {stat: 0 for stat, _ in self.COUNTERS.values()}  # the engine's totals at the last observe
        self.steps = 0  # the engine's step count at the last observe

    def observe(self, stats: EngineStats, outputs: list[RequestOutput]) -> None:
        for name, (stat, _) in self.GAUGES.items():
            self.gauges[name].set(getattr(stats, stat))
        for name, (stat, _) in self.COUNTERS.items():
            now = getattr(stats, stat)
            self.counters[name].inc(max(now - self.totals[stat], 0))
            self.totals[stat] = now
        if stats.steps > self.steps and stats.last_step.batch_size:  # a step ran, and it decoded
            self.batch.observe(stats.last_step.batch_size)
        self.steps = stats.steps
        for out in outputs:
            seconds = out.generation.token_seconds
            if out.token_ids and len(seconds) == 1:
                self.ttft.observe(seconds[0])
            elif out.token_ids:
                self.tpot.observe(seconds[-1])

    def text(self) -> bytes:
        return generate_latest(self.registry)


# ---------------------------------------------------------------- 3. the app


@dataclass
class ServerState:
    """What the routes share."""

    model: Model
    defaults: dict  # sampling defaults (see sampling_defaults)
    engine: EngineLoop
    metrics: Metrics
    api_key: str | None
    max_waiting: int
    max_per_client: int  # 0 = no limit
    in_flight: Tally = field(default_factory=Tally)  # client address -> requests in flight (event loop only)

    def reply(self, chat: bool, request: EngineRequest) -> Reply:
        assert self.model.tokenizer is not None  # serve() refuses a model without one
        return Reply(chat, self.model.name, self.model.tokenizer, request)

    def take_slot(self, client: str) -> None:
        """Count a request in flight for `client`, or refuse it: 429 over the per-client limit,
        503 (with Retry-After) when the queue is full."""
        if self.max_per_client and self.in_flight[client] >= self.max_per_client:
            raise ApiError(
                429,
                f"{client} already has {self.in_flight[client]} requests in flight, this server's limit "
                f"per client (--max-per-client {self.max_per_client}); wait for one to finish",
                code="rate_limit_exceeded",
            )
        if self.engine.waiting >= self.max_waiting:
            raise ApiError(
                503,
                f"the server is busy: {self.engine.waiting} requests are already waiting "
                f"(--max-waiting {self.max_waiting}); retry in a few seconds",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.in_flight[client] += 1

    def give_slot(self, client: str) -> None:
        self.in_flight[client] -= 1
        if not self.in_flight[client]:
            del self.in_flight[client]


def error_response(e: ApiError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


def sse(data: dict | str) -> str:
    """One server-sent event."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def check_key(request: Request, api_key: str | None) -> None:
    """With --api-key, every /v1 request must carry 'Authorization: Bearer KEY' (401 otherwise)."""
    if api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise ApiError(
            401,
            "this server needs an API key: send 'Authorization: Bearer KEY' (the openai client's api_key=KEY)",
            code="invalid_api_key",
        )


def api(handler):
    """An /v1 route: the API key checked first; an ApiError becomes OpenAI's error JSON."""

    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        state: ServerState = request.app.state.server
        try:
            check_key(request, state.api_key)
            return await handler(request, state)
        except ApiError as e:
            return error_response(e)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it (nginx's code for a client gone)
        except Exception as e:
            log.exception("%s %s failed", request.method, request.url.path)
            return error_response(ApiError(500, f"the server failed: {type(e).__name__}: {e}"))

    return route


async def json_body(request: Request) -> dict:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"the request body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,}")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


@api
async def list_models(request: Request, state: ServerState) -> Response:
    card = {"id": state.model.name, "object": "model", "created": 0, "owned_by": "minfer"}
    return JSONResponse({"object": "list", "data": [card | {"max_model_len": state.model.config.n_ctx}]})


@api
async def engine_state(request: Request, state: ServerState) -> Response:
    return JSONResponse(engine_json(state.engine.last) | {"model": state.model.name, "n_ctx": state.model.config.n_ctx})


@api
async def completions(request: Request, state: ServerState) -> Response:
    r = completion_request(await json_body(request), state.model, state.defaults)
    return await answer(request, state, state.reply(False, r))


@api
async def chat_completions(request: Request, state: ServerState) -> Response:
    r = chat_request(await json_body(request), state.model, state.defaults)
    return await answer(request, state, state.reply(True, r))


async def answer(request: Request, state: ServerState, reply: Reply) -> Response:
    """Queue the request, wait until the engine takes it (or refuses it: a 400), then answer:
    a stream of events, or one JSON object at the end. The client's slot is held until then."""
    client = request.client.host if request.client else "unknown"
    state.take_slot(client)
    ticket = Ticket(reply.request, asyncio.Queue(), asyncio.get_running_loop())
    try:
        state.engine.submit(ticket)
        first = await ticket.outputs.get()
        if isinstance(first, Exception):
            raise first
    except BaseException:
        state.give_slot(client)
        state.engine.abort(ticket)  # if the engine took it after all (a cancelled handler), it ends there
        raise
    if reply.request.stream:
        return EventStream(events(ticket, reply), functools.partial(finish, state, ticket, client))
    try:
        return JSONResponse(reply.whole(await collect(request, ticket)))
    finally:
        finish(state, ticket, client)


def finish(state: ServerState, ticket: Ticket, client: str) -> None:
    """A request's answer has ended, however: abort it if the engine is still on it; free the client's slot."""
    if not ticket.done:
        state.engine.abort(ticket)
    state.give_slot(client)


async def outputs(ticket: Ticket) -> AsyncIterator[RequestOutput]:
    """A ticket's RequestOutputs until its last. An abort the client did not ask for (a shutdown)
    and an engine failure are ApiErrors."""
    while not ticket.done:
        out = await ticket.outputs.get()
        if isinstance(out, Exception):
            ticket.done = True
            raise out
        ticket.done = out.finished
        if out.finish_reason == "abort":
            raise ApiError(503, "the server is shutting down; the request was ended before it finished")
        yield out


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


async def collect(request: Request, ticket: Ticket) -> list[RequestOutput]:
    """Every output of a request that is not streamed. The client's disconnect is watched
    meanwhile (Starlette watches only streamed responses): ClientGone at once."""
    gone = asyncio.ensure_future(disconnected(request))
    items, got = outputs(ticket), list[RequestOutput]()
    try:
        while True:
            step = asyncio.ensure_future(anext(items, None))
            await asyncio.wait({step, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                raise ClientGone
            out = step.result()
            if out is None:
                return got
            got.append(out)
    finally:
        gone.cancel()


async def disconnected(request: Request) -> None:
    """Returns when the client has closed the connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def events(ticket: Ticket, reply: Reply) -> AsyncIterator[str]:
    """The server-sent events of a streamed answer: a chunk per step that made text (or tokens,
    with logprobs), the usage chunk if asked, then [DONE]."""
    try:
        async for out in outputs(ticket):
            if out.text or out.logprobs or out.finished:
                yield sse(reply.chunk(out))
            if out.finished and reply.request.include_usage:
                yield sse(reply.usage_chunk(out))
    except ApiError as e:  # the headers are sent: the error travels as an event, as OpenAI's does
        yield sse(e.body())
    yield sse("[DONE]")


class EventStream(StreamingResponse):
    """A stream of server-sent events that runs `cleanup` however it ends: sent in full, or cut
    short because the client went away (Starlette then cancels the stream)."""

    def __init__(self, content: AsyncIterator[str], cleanup: Callable[[], None]):
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.cleanup = cleanup

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cleanup()


PAGES = {  # the playground's files (package data) -> media type
    "playground.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}


def page(name: str):
    body = resources.files("minfer.serving").joinpath(name).read_bytes()

    async def route(request: Request) -> Response:
        return Response(body, media_type=PAGES[name])

    return route


async def metrics_text(request: Request) -> Response:
    return Response(request.app.state.server.metrics.text(), media_type=CONTENT_TYPE_LATEST)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 (an unknown path or method) in OpenAI's JSON too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error_response(ApiError(status, f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'error')}"))


def build_app(state: ServerState) -> Starlette:
    """The Starlette app; the engine thread runs while the app does (its lifespan)."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.engine.thread.start()
        yield
        state.engine.close()
        await asyncio.to_thread(state.engine.thread.join, SHUTDOWN_GRACE_SECONDS)

    routes = [
        Route("/", page("playground.html")),
        *(Route(f"/{name}", page(name)) for name in PAGES if name != "playground.html"),
        Route("/health", health),
        Route("/metrics", metrics_text),
        Route("/v1/models", list_models),
        Route("/v1/engine", engine_state),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    app.state.server = state
    return app


# ---------------------------------------------------------------- running it


class StoppingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM or Ctrl-C first ends the requests in flight (each gets
    an error saying the server is stopping), so its graceful shutdown does not wait out long answers."""

    def __init__(self, config: uvicorn.Config, engine: EngineLoop):
        super().__init__(config)
        self.engine = engine

    async def shutdown(self, sockets=None) -> None:
        self.engine.close()
        await super().shutdown(sockets)


@contextlib.contextmanager
def quiet_signals():
    """uvicorn re-raises SIGTERM or SIGINT once it has shut down, so that the process dies of it
    (status 143, or a KeyboardInterrupt). A server stopped on purpose has done its job: the
    handlers uvicorn restores before re-raising are these, which ignore them, so it exits 0."""
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in stops}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# errno -> what to do about it, for the errors a wrong --host or --port gives
LISTEN_FIXES = {
    errno.EADDRINUSE: "pick another --port, or stop the program using it",
    errno.EACCES: "ports below 1024 need root: pick one from 1024 up",
    errno.EADDRNOTAVAIL: "--host must be an address of this machine (127.0.0.1, 0.0.0.0 for every network)",
}


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error naming the address and the fix (port 0: any free port)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (OSError, UnicodeError) as e:  # socket.gaierror: not an address, and no name that resolves
        raise InvalidInputError(
            f"cannot listen on {host}:{port}: --host {host!r} is not an address or a name this machine resolves "
            f"({getattr(e, 'strerror', None) or e}); use 127.0.0.1, or 0.0.0.0 for every network"
        ) from None
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        fix = LISTEN_FIXES.get(e.errno or 0, "check --host and --port")
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise InvalidInputError(f"cannot listen on {host}:{port} ({reason}): {fix}") from None


def check_options(max_batch, kv_blocks, block_size, max_waiting, max_per_client) -> None:
    """serve's numeric options, each named by its flag (before the model loads)."""
    at_least = {"--max-batch": (max_batch, 1), "--block-size": (block_size, 1), "--max-waiting": (max_waiting, 1)}
    at_least |= {"--max-per-client": (max_per_client, 0)} | (
        {} if kv_blocks is None else {"--kv-blocks": (kv_blocks, 1)}
    )
    for flag, (value, low) in at_least.items():
        if not (is_int(value) and value >= low):
            what = "0 (no limit) or more" if flag == "--max-per-client" else f"at least {low}"
            raise InvalidInputError(f"{flag} must be {what}, got {value}")


def banner(
    model: Model,
    backend: str,
    quantize: str | None,
    max_batch: int,
    n_blocks: int,
    block_size: int,
    url: str,
    key: bool,
) -> str:
    """The startup lines: the model and how it runs, where to reach it, and whether a key is needed."""
    runs = backend + (f", {quantize} weights" if quantize else "")
    access = "an API key is required (--api-key or MINFER_API_KEY)" if key else "no API key needed"
    return (
        f"minfer serve: {model.name} ({model.config.family}, {runs}; batch {max_batch}, "
        f"{n_blocks} KV blocks of {block_size}) on {url}\n"
        f"  playground {url}/   OpenAI API {url}/v1   metrics {url}/metrics   ({access}; Ctrl-C stops)"
    )


def serve(
    model: str | None = None,
    backend: str = "numpy",
    quantize: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 16,
    kv_blocks: int | None = None,
    block_size: int = 16,
    max_waiting: int = 128,
    api_key: str | None = None,
    max_per_client: int = 0,
) -> None:
    """Serve a model over HTTP until SIGTERM or Ctrl-C (`minfer serve`; see docs/serving.md)."""
    from minfer.checkpoints.loading import DEFAULT_MODEL, load_model, resolve_model_dir

    check_options(max_batch, kv_blocks, block_size, max_waiting, max_per_client)
    if not (is_int(port) and 0 <= port <= 65535):
        raise InvalidInputError(f"--port must be from 0 to 65535 (0: any free port), got {port}")
    name = model or DEFAULT_MODEL
    loaded = load_model(name, backend=backend, quantize=quantize)
    if loaded.tokenizer is None:
        raise InvalidInputError(f"model {name!r} has no tokenizer; minfer serve answers in text and needs one")
    try:
        engine = Engine(loaded, max_batch=max_batch, kv_blocks=kv_blocks, block_size=block_size)
    except MinferError as e:  # e.g. a block larger than the context: named by the flag to change
        raise type(e)(flag_names(str(e))) from None
    metrics = Metrics()
    loop = EngineLoop(engine, metrics)
    defaults = sampling_defaults(resolve_model_dir(name))
    state = ServerState(loaded, defaults, loop, metrics, api_key or None, max_waiting, max_per_client)
    sock = listen(host, port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    lines = banner(loaded, backend, quantize, max_batch, engine.blocks.n_blocks, block_size, url, bool(api_key))
    print(lines, file=sys.stderr, flush=True)
    if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"minfer serve: warning: anyone who reaches {host} can use this server; pass --api-key", file=sys.stderr)
    config = uvicorn.Config(
        build_app(state), host=host, port=sock.getsockname()[1], timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS
    )
    with quiet_signals():
        StoppingServer(config, loop).run(sockets=[sock])
