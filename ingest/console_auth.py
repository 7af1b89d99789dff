"""Who may use the ops console: loopback or a password (HTTP basic auth), and a CSRF token
on every form that changes something."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import socket

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from config.settings import ConfigError, Settings

CSRF_COOKIE = "stax_csrf"
CSRF_FIELD = "csrf"
REALM = "Stax ops console"
OPEN_PATHS = frozenset({"/healthz"})  # a load balancer's probe carries no password


def check_console_binding(settings: Settings) -> None:
    """Refuse to serve the console beyond loopback without a password (CONTRACT.md)."""
    if settings.ops_password or is_loopback(settings.http_host):
        return
    raise ConfigError(
        f"STAX_HTTP_HOST={settings.http_host or '(all addresses)'} is not a loopback address "
        "and STAX_OPS_PASSWORD is not set: the ops console would be open to the network; "
        "set STAX_OPS_PASSWORD or bind STAX_HTTP_HOST=127.0.0.1"
    )


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback one; "" and 0.0.0.0 are not."""
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {str(info[4][0]).split("%")[0] for info in found}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


class BasicAuth:
    """ASGI middleware: every path but OPEN_PATHS asks for the ops password (any user name)."""

    def __init__(self, app: ASGIApp, password: str) -> None:
        self.app = app
        self._password = password.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            "the ops console needs the ops password (STAX_OPS_PASSWORD)\n",
            status_code=401,
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )
        await response(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        _user, sep, password = decoded.partition(b":")
        return bool(sep) and hmac.compare_digest(password, self._password)


class CsrfTokens:
    """Signed double-submit tokens: a random value and its HMAC in a SameSite=Strict cookie,
    the same text in each form's hidden field. A forged form has neither the cookie's value
    nor a way to make one that verifies; the key lives as long as the process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def token_for(self, request: Request) -> tuple[str, bool]:
        """The session's token, and whether it is new (then the cookie must be set)."""
        current = request.cookies.get(CSRF_COOKIE, "")
        if self._verifies(current):
            return current, False
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}", True

    def accepts(self, request: Request, submitted: str) -> bool:
        if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
            return False
        cookie = request.cookies.get(CSRF_COOKIE, "")
        return (
            self._verifies(cookie)
            and bool(submitted)
            and hmac.compare_digest(cookie.encode(), submitted.encode())
        )

    @staticmethod
    def set_cookie(response: Response, request: Request, token: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()

    def _verifies(self, token: str) -> bool:
        nonce, _, signature = token.partition(".")
        return bool(nonce) and hmac.compare_digest(signature.encode(), self._sign(nonce).encode())
