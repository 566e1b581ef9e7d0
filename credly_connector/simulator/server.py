"""The HTTPS front end: one threaded TLS server per service on 127.0.0.1.

It turns raw HTTP into `SimRequest`, lets the service answer, and applies the faults that are
not specific to any API (latency, 503s, malformed JSON). It also keeps the request log, which
records what was asked and how it was answered but never headers, bodies or query values:
those are where credentials, tokens and email addresses travel.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from credly_connector.simulator.core import Service, SimRequest, SimResponse

# Query parameters whose values are safe to log (paging and shaping, never identities).
_LOGGED_QUERY_KEYS = frozenset({"page", "$top", "$select", "api-version"})


@dataclass(frozen=True)
class LogEntry:
    service: str
    method: str
    path: str
    status: int
    time: float  # epoch seconds when the request arrived
    duration: float  # seconds spent answering, injected latency included
    query: dict[str, str] = field(default_factory=dict)  # only _LOGGED_QUERY_KEYS
    fault: str | None = None  # "503" or "malformed_json" when the front end injected one


@dataclass
class MalformedRule:
    path: re.Pattern[str]
    service: str | None
    times: int | None  # None: every matching answer


class Faults:
    """Cross-cutting faults, changeable while the servers run (thread-safe).

    The 503 rate is deterministic: a running total adds the rate per request and a 503 is
    sent each time it crosses 1, so `error_503_rate=0.25` fails exactly every fourth request
    and tests never depend on luck.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency_seconds = 0.0
        self.error_503_rate = 0.0
        self.error_503_next = 0
        self.error_503_services: frozenset[str] | None = None  # None: every service
        self.retry_after_seconds = 1
        self._malformed: list[MalformedRule] = []
        self._budget = 0.0

    def update(self, **values: Any) -> dict[str, Any]:
        """Apply the front end's keys and return the ones it does not know (for the services)."""
        rest: dict[str, Any] = {}
        with self._lock:
            for key, value in values.items():
                if key == "latency_seconds":
                    self.latency_seconds = max(0.0, float(value))
                elif key == "error_503_rate":
                    rate = float(value)
                    if not 0.0 <= rate <= 1.0:
                        raise ValueError("error_503_rate must be between 0 and 1")
                    self.error_503_rate = rate
                    self._budget = 0.0
                elif key == "error_503_next":
                    self.error_503_next = max(0, int(value))
                elif key == "error_503_services":
                    self.error_503_services = None if value is None else frozenset(value)
                elif key == "retry_after_seconds":
                    self.retry_after_seconds = max(0, int(value))
                elif key == "malformed_json":
                    self._malformed = [_rule(spec) for spec in (value or [])]
                else:
                    rest[key] = value
        return rest

    def take_503(self, service: str) -> bool:
        with self._lock:
            if self.error_503_services is not None and service not in self.error_503_services:
                return False
            if self.error_503_next > 0:
                self.error_503_next -= 1
                return True
            if self.error_503_rate <= 0.0:
                return False
            self._budget += self.error_503_rate
            if self._budget >= 1.0 - 1e-9:
                self._budget -= 1.0
                return True
            return False

    def take_malformed(self, service: str, path: str) -> bool:
        with self._lock:
            for rule in self._malformed:
                if rule.service not in (None, service) or not rule.path.search(path):
                    continue
                if rule.times is None:
                    return True
                if rule.times > 0:
                    rule.times -= 1
                    return True
            return False


def _rule(spec: Any) -> MalformedRule:
    if isinstance(spec, str):
        return MalformedRule(re.compile(spec), None, None)
    if not isinstance(spec, dict) or "path" not in spec:
        raise ValueError("a malformed_json rule is a path regex or {path, service?, times?}")
    times = spec.get("times")
    return MalformedRule(
        re.compile(str(spec["path"])), spec.get("service"), None if times is None else int(times)
    )


def sequential_rounds(entries: list[LogEntry]) -> int:
    """The longest chain of logged requests in which each was sent after the previous one
    answered (5 ms of slack): how many round trips a client made one after the other."""
    ordered = sorted(entries, key=lambda e: e.time)
    depth: list[int] = []
    for i, entry in enumerate(ordered):
        before = [
            depth[j]
            for j in range(i)
            if ordered[j].time + ordered[j].duration <= entry.time + 0.005
        ]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _malform(body: bytes) -> bytes:
    # A truncated document: what a proxy cutting a response short, or a half-written
    # error page, looks like to a JSON parser.
    cut = max(1, len(body) // 2)
    return body[:cut] if body else b'{"data": ['


class _Handler(BaseHTTPRequestHandler):
    server: SimServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the real services offer
    # Headers and body leave in two writes; with Nagle's algorithm on, the client's delayed ACK
    # would add ~40 ms to every answer, a delay no real service has.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the request log is the record

    def _dispatch(self) -> None:
        started = time.time()
        parts = urlsplit(self.path)
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = SimRequest(
            method=self.command.upper(),
            path=unquote(parts.path),
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=body,
            base_url=self.server.base_url,
        )
        sim = self.server
        faults = sim.faults
        fault: str | None = None
        if faults.latency_seconds > 0:
            time.sleep(faults.latency_seconds)
        if faults.take_503(sim.service_name):
            fault = "503"
            response = SimResponse.json(
                503,
                {"error": {"code": "serviceUnavailable", "message": "Injected by the simulator."}},
                {"Retry-After": str(faults.retry_after_seconds)},
            )
        else:
            response = sim.answer(request)
            is_json = "json" in response.headers.get("Content-Type", "").lower()
            if is_json and faults.take_malformed(sim.service_name, request.path):
                fault = "malformed_json"
                response = SimResponse(response.status, _malform(response.body), response.headers)
        query = {
            key: values[0]
            for key, values in request.query.items()
            if key in _LOGGED_QUERY_KEYS and values
        }
        sim.log.add(
            LogEntry(
                service=sim.service_name,
                method=request.method,
                path=request.path,
                status=response.status,
                time=started,
                duration=time.time() - started,
                query=query,
                fault=fault,
            )
        )
        # Logged before the answer leaves: a client that has its answer must find the request
        # in the log, or tests reading the log right after a call would race the handler thread.
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, response: SimResponse) -> None:
        self.send_response(response.status)
        sent = {name.lower() for name in response.headers}
        for name, value in response.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        if "content-type" not in sent and response.body:
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, service_name: str, context: ssl.SSLContext, faults: Faults, log: RequestLog
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # The TLS handshake runs in the per-connection thread (finish_request), so a slow or
        # failing client cannot stall the accept loop.
        self.socket = context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        self.service_name = service_name
        self.service: Service | None = None
        self.faults = faults
        self.log = log
        self.port = int(self.server_address[1])
        self.base_url = f"https://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None
        self._open: set[Any] = set()  # live connections, cut on stop like a dead host would
        self._open_lock = threading.Lock()

    def answer(self, request: SimRequest) -> SimResponse:
        if self.service is None:
            return SimResponse.json(503, {"error": "service not ready"}, {"Retry-After": "1"})
        try:
            return self.service.handle(request)
        except Exception as exc:  # a simulator bug must show as a 500, not a dead connection
            return SimResponse.json(
                500, {"error": {"code": "simulatorError", "message": type(exc).__name__}}
            )

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            request.do_handshake()
            super().finish_request(request, client_address)
        except (ssl.SSLError, OSError):
            return
        finally:
            with self._open_lock:
                self._open.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients hanging up mid-request are normal in fault tests; stay quiet

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sim-{self.service_name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        # Kept-alive connections would otherwise go on answering after the "service" is gone.
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)


def server_context(cert_pem: bytes, key_pem: bytes, workdir: Any) -> ssl.SSLContext:
    """A server-side TLS context for the leaf certificate the simulator's CA issued."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    path = workdir / "server.pem"
    path.write_bytes(key_pem + cert_pem)
    # portable: on Windows chmod only sets the read-only flag (off here)
    path.chmod(0o600)
    context.load_cert_chain(str(path))
    return context


def free_port_probe() -> int:
    """A free port on 127.0.0.1, for tests that need a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
