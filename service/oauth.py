"""OAuth 2.0 bearer tokens (JWTs) from one configured issuer, and HTTP Basic credentials: what a ServiceNow
outbound REST message can send (its authentication is Basic, OAuth 2.0 or mutual TLS; no custom header).

A JWT is validated with PyJWT: signature (RS/ES/PS algorithms only, never `none` or HMAC), `iss`, `aud`, `exp`
(and `nbf`/`iat` when present) with a small leeway. Keys come from the issuer's JWKS URL (fetched and cached by
PyJWT's `PyJWKClient`) or from a configured PEM public key. The token's scopes (`scope`, space-separated, or
`scp`, a list) map to the service's scopes: `<prefix>query`, `<prefix>write`, `<prefix>admin`."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass

import jwt

from indexing.errors import IncidentSimError
from service.settings import Scope, Settings

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


class OAuthConfigError(IncidentSimError):
    """The OAuth settings are incomplete; the service refuses to start."""


class TokenError(Exception):
    """The bearer token is not a valid token of the configured issuer (the message says why, never the token)."""


@dataclass(frozen=True)
class TokenCaller:
    name: str
    scopes: frozenset[Scope]


def looks_like_jwt(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 3 and all(parts[:2]) and value.startswith("ey")


class OAuthValidator:
    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None, public_key: str | None = None,
                 scope_prefix: str = "", leeway_s: float = 30.0) -> None:
        if not jwks_url and not public_key:
            raise OAuthConfigError("OAuth needs INCIDENT_SIM_OAUTH_JWKS_URL or INCIDENT_SIM_OAUTH_PUBLIC_KEY")
        self.issuer, self.audience, self.scope_prefix, self.leeway_s = issuer, audience, scope_prefix, leeway_s
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5) if jwks_url else None
        self._key = public_key

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuthValidator | None:
        if not settings.oauth_issuer:
            return None
        if not settings.oauth_audience:
            raise OAuthConfigError("INCIDENT_SIM_OAUTH_ISSUER is set but INCIDENT_SIM_OAUTH_AUDIENCE is not: a token "
                             "for any other service of that issuer would be accepted")
        key = settings.oauth_public_key
        return cls(settings.oauth_issuer, settings.oauth_audience, settings.oauth_jwks_url, key,
                   settings.oauth_scope_prefix)

    def identify(self, token: str) -> TokenCaller:
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks is not None else self._key
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway_s, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWKClientError as exc:
            logger.warning("OAuth signing key not available: %s", exc)
            raise TokenError("bearer token: the issuer's signing key is not available") from exc
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("bearer token expired") from exc
        except jwt.InvalidTokenError as exc:  # bad signature, issuer, audience, algorithm, missing claims
            raise TokenError(f"bearer token rejected: {type(exc).__name__}") from exc
        raw = claims.get("scope", claims.get("scp", ""))
        granted = raw.split() if isinstance(raw, str) else [str(s) for s in raw]
        scopes = frozenset(s for s in Scope if f"{self.scope_prefix}{s.value}" in granted)
        subject = str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown")
        return TokenCaller(f"oauth:{subject}"[:64], scopes)


def parse_basic(credentials: str) -> tuple[str, str]:
    """`Authorization: Basic <base64(user:password)>` -> (user, password); ValueError if malformed."""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("malformed Basic credentials") from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("malformed Basic credentials")
    return user, password
