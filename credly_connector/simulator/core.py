"""The contract between the simulator's HTTPS front end and its services.

A service is a plain object with `name` and `handle(SimRequest) -> SimResponse`; the front end
(server.py) does TLS, latency, injected 503s, malformed JSON and the request log, so services
only model the real API's behaviour.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

_SERIALS = itertools.count(1)


@dataclass
class SimRequest:
    method: str  # upper case
    path: str  # without the query string, percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    base_url: str = ""  # scheme://host:port of the service that received it
    # When the request arrived (time.monotonic(), before any injected latency) and a number
    # that tells it apart; the entries of a $batch carry their envelope's.
    received: float = field(default_factory=time.monotonic)
    serial: int = field(default_factory=lambda: next(_SERIALS))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def first(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    def bearer(self) -> str | None:
        value = self.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@dataclass
class SimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, document: Any, headers: dict[str, str] | None = None) -> SimResponse:
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(document).encode("utf-8"), merged)

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> SimResponse:
        return cls(status, b"", dict(headers or {}))


class Service(Protocol):
    name: str  # "credly-web", "credly-api", "entra", "graph"

    def handle(self, request: SimRequest) -> SimResponse: ...


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class TokenCheck:
    claims: dict[str, Any] | None
    reason: str  # "ok", "expired", "invalid"


class TokenStore:
    """Issues and checks JWT-shaped access tokens (HS256 with a per-run key).

    Entra tokens carry `roles`, `tid`, `appid`, `aud`, `exp` like real app-only tokens, so a
    client can read the roles claim unverified; only the simulator can verify them.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._revoked: set[str] = set()
        self._lock = threading.Lock()

    def issue(self, claims: dict[str, Any], lifetime_seconds: float) -> str:
        now = time.time()
        body = {"iat": int(now), "nbf": int(now), "exp": now + lifetime_seconds, **claims}
        body["jti"] = secrets.token_hex(8)
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(body).encode())
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    def verify(self, token: str | None) -> TokenCheck:
        if not token or token.count(".") != 2:
            return TokenCheck(None, "invalid")
        header, payload, signature = token.split(".")
        expected = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(expected), signature):
            return TokenCheck(None, "invalid")
        with self._lock:
            if token in self._revoked:
                return TokenCheck(None, "invalid")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if float(claims.get("exp", 0)) <= time.time():
            return TokenCheck(claims, "expired")
        return TokenCheck(claims, "ok")

    def revoke(self, token: str) -> None:
        with self._lock:
            self._revoked.add(token)
