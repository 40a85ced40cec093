"""API-key authentication with scopes. Keys are compared in constant time (every configured key is
checked, digests of equal length), never logged; only the key's name reaches the logs."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from indexing.errors import IncidentSimError
from service.oauth import OAuthValidator, TokenError, looks_like_jwt, parse_basic
from service.settings import ApiKey, Scope, Settings

logger = logging.getLogger(__name__)

MIN_KEY_CHARS = 16
PLACEHOLDER_KEYS = frozenset({"changeme", "change-me", "secret", "password", "test", "dev", "devkey", "dev-key",
                              "placeholder", "apikey", "api-key", "xxx", "todo", "example"})


class AuthConfigError(IncidentSimError):
    """The API key settings are unsafe or inconsistent; the service refuses to start."""


class AuthError(Exception):
    """401: no key, or a key nobody issued."""


class ScopeError(Exception):
    """403: a valid key without the scope the route needs."""


@dataclass(frozen=True)
class Caller:
    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return Scope.admin in self.scopes or scope in self.scopes


DEV_CALLER = Caller("dev-mode (auth off)", frozenset({Scope.admin}))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class KeyRing:
    def __init__(self, keys: list[ApiKey], dev_mode: bool = False, basic_user: str | None = None,
                 oauth: OAuthValidator | None = None) -> None:
        self._basic_user, self._oauth = basic_user, oauth  # service/oauth.py: what ServiceNow can send
        if not keys and not dev_mode:
            raise AuthConfigError("no API keys configured: set INCIDENT_SIM_API_KEYS (JSON list of "
                                  '{"name", "key", "scopes"}) or INCIDENT_SIM_DEV_MODE=true for local use')
        seen: set[bytes] = set()
        for k in keys:
            secret = k.key.get_secret_value()
            if not dev_mode and (len(secret) < MIN_KEY_CHARS or secret.strip().lower() in PLACEHOLDER_KEYS
                                 or len(set(secret)) < 4):
                raise AuthConfigError(f"API key {k.name!r} is a placeholder or shorter than {MIN_KEY_CHARS} "
                                      "characters; generate one (e.g. `openssl rand -hex 32`)")
            if _digest(secret) in seen:
                raise AuthConfigError(f"API key {k.name!r} repeats another key")
            seen.add(_digest(secret))
        self._keys = [(_digest(k.key.get_secret_value()), Caller(k.name, k.scopes)) for k in keys]
        self.enabled = bool(keys)
        if not self.enabled:
            logger.warning("dev mode with no API keys: authentication is OFF")

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        if settings.dev_mode and not settings.api_keys and not is_loopback(settings.host):
            raise AuthConfigError(f"dev mode with no API keys gives every caller admin rights, so it only binds a "
                                  f"loopback address; {settings.host!r} is not one. Bind 127.0.0.1 (or ::1), or set "
                                  "INCIDENT_SIM_API_KEYS")
        dev_mode = settings.dev_mode
        if dev_mode and settings.api_keys:  # dev mode is "no keys, loopback only"; a configured key ends it
            logger.warning("dev mode is OFF: INCIDENT_SIM_API_KEYS is set, so every key is checked as in production "
                           "(placeholder and short keys are refused) and any bind address is allowed")
            dev_mode = False
        return cls(settings.api_keys, dev_mode, settings.basic_user, OAuthValidator.from_settings(settings))

    def identify_headers(self, headers: Mapping[str, str]) -> Caller:
        """The caller named by raw request headers (lower-case names, the first value of each, as the route
        dependencies read them): `Authorization: Bearer <key>`, else `X-API-Key`. The middleware calls this before a
        request takes an in-flight slot; AuthError without a valid credential. Every credential scheme the routes
        accept must be accepted here too."""
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return self.identify(credentials.strip())
        if scheme.lower() == "basic" and self.enabled:  # Basic: the configured user, an API key as password
            try:
                user, password = parse_basic(credentials)
            except ValueError as exc:
                raise AuthError(str(exc)) from None
            user_ok = self._basic_user is not None and hmac.compare_digest(_digest(user), _digest(self._basic_user))
            caller = self.identify(password or None)  # checked even for a wrong user: same time either way
            if not user_ok:
                raise AuthError("invalid Basic credentials" if self._basic_user else
                                "Basic authentication is off: set INCIDENT_SIM_BASIC_USER")
            return caller
        return self.identify(headers.get("x-api-key") or None)

    def identify(self, presented: str | None) -> Caller:
        if not self.enabled:
            return DEV_CALLER
        if not presented:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        if self._oauth is not None and looks_like_jwt(presented):
            try:
                token = self._oauth.identify(presented)
            except TokenError as exc:
                raise AuthError(str(exc)) from None
            return Caller(token.name, token.scopes)
        digest = _digest(presented)
        found: Caller | None = None
        for known, caller in self._keys:  # no early exit: the time does not depend on which key matched
            if hmac.compare_digest(known, digest):
                found = caller
        if found is None:
            raise AuthError("invalid API key")
        return found


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key, as an alternative header.")
BearerKey = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
HeaderKey = Annotated[str | None, Depends(_header)]


def presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    return bearer.credentials if bearer is not None else header


def require(scope: Scope):  # type: ignore[no-untyped-def]
    """Route dependency: the caller must hold `scope` (401 without a valid key, 403 without the scope)."""

    def dependency(request: Request, bearer: BearerKey, header: HeaderKey) -> Caller:
        caller = request.app.state.keyring.identify_headers(request.headers)  # Bearer, Basic or X-API-Key
        if not caller.may(scope):
            raise ScopeError(f"API key {caller.name!r} lacks the '{scope.value}' scope this route needs")
        request.scope.setdefault("state", {})["caller"] = caller.name
        return caller

    return dependency


def require_any_key(request: Request, bearer: BearerKey, header: HeaderKey) -> None:
    """For /metrics when protect_metrics is on: any valid key."""
    if request.app.state.settings.protect_metrics:
        request.app.state.keyring.identify_headers(request.headers)
