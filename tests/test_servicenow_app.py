"""The ServiceNow app (deploy/servicenow), tested outside an instance: `now-sdk build` output run in Node against the
Glide harness (deploy/servicenow/harness) and a real `incident-sim serve` over loopback, authenticated as
ServiceNow authenticates (HTTP Basic with an API key as password; an OAuth 2.0 bearer JWT), plus the service-side
auth checks. Needs Node >= 20 and `npm ci` in deploy/servicenow (.ci/run does both)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import TEST_KEYS, WRITE_KEY, free_port, running

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "deploy" / "servicenow"
ISSUER, AUDIENCE, USER = "https://idp.example.test", "incident-sim", "servicenow"

pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (APP / "node_modules").is_dir(),
                                reason="needs node and `npm ci` in deploy/servicenow")


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "servicenow-oauth-client", "exp": int(time.time()) + 600,
            "scope": "query write", **claims}
    return jwt.encode(body, key, algorithm="RS256")


@pytest.fixture(scope="module")
def built() -> Path:
    subprocess.run(["npx", "now-sdk", "build"], cwd=APP, check=True, capture_output=True, timeout=300)
    return APP / "dist" / "app"


def serve(shared_index_dir: Path, bundle: Path, tmp: Path, key: rsa.RSAPrivateKey, **extra: str):  # type: ignore[no-untyped-def]
    shutil.copytree(shared_index_dir / "index", tmp / "index")
    port = free_port()
    keys = [{"name": k.name, "key": k.key.get_secret_value(), "scopes": sorted(s.value for s in k.scopes)}
            for k in TEST_KEYS]
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    env = {**os.environ, "INCIDENT_SIM_DATA_DIR": str(tmp), "INCIDENT_SIM_BUNDLE_PATH": str(bundle),
           "INCIDENT_SIM_API_KEYS": json.dumps(keys), "INCIDENT_SIM_BASIC_USER": USER,
           "INCIDENT_SIM_OAUTH_ISSUER": ISSUER, "INCIDENT_SIM_OAUTH_AUDIENCE": AUDIENCE,
           "INCIDENT_SIM_OAUTH_PUBLIC_KEY": pem, "INCIDENT_SIM_COMPACT_AFTER_WRITES": "0", **extra}
    url = f"http://127.0.0.1:{port}"
    return url, running([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], tmp / "serve.log",
                        f"{url}/readyz", env=env, cwd=ROOT)


@pytest.fixture()
def service(shared_index_dir: Path, minilm_bundle, tmp_path: Path, signing_key) -> Iterator[str]:  # type: ignore[no-untyped-def]
    url, proc = serve(shared_index_dir, minilm_bundle.path, tmp_path, signing_key)
    with proc:
        yield url


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_service_accepts_what_servicenow_sends(service: str, signing_key: rsa.RSAPrivateKey) -> None:
    """Finding 1: Basic (user + API key as password) and OAuth bearer JWTs work; wrong secrets are 401."""
    body = {"text": "VPN certificate error", "top_k": 1}
    ok = [basic(USER, WRITE_KEY), {"Authorization": f"Bearer {token(signing_key)}"}]
    for headers in ok:
        assert httpx.post(f"{service}/similar", json=body, headers=headers).status_code == 200, headers
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = [basic(USER, "wrong-password-0123456789"), basic("someone-else", WRITE_KEY),
               {"Authorization": f"Bearer {token(other_key)}"},  # signed by another issuer's key
               {"Authorization": f"Bearer {token(signing_key, aud='another-service')}"},
               {"Authorization": f"Bearer {token(signing_key, iss='https://evil.example')}"},
               {"Authorization": f"Bearer {token(signing_key, exp=int(time.time()) - 3600)}"},
               {"Authorization": "Basic !!notbase64"}]
    for headers in refused:
        answer = httpx.post(f"{service}/similar", json=body, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
    query_only = {"Authorization": f"Bearer {token(signing_key, scope='query')}"}
    assert httpx.post(f"{service}/similar", json=body, headers=query_only).status_code == 200
    put = httpx.put(f"{service}/incidents/INC7000001", json={"short_description": "x y z"}, headers=query_only)
    assert put.status_code == 403, put.text


CLIENT_ID, CLIENT_SECRET = "servicenow-instance", "cc-secret-0123456789"


class Issuer:
    """A local stand-in for the OAuth 2.0 authorization server, to RFC 6749's contract for the client credentials
    grant: POST form-encoded `grant_type=client_credentials` (optional `scope`) to the token endpoint, the client
    authenticated with HTTP Basic (2.3.1, form-urlencoded id and secret) or id/secret in the body; 200 JSON
    `{access_token, token_type: "Bearer", expires_in, scope}` with `Cache-Control: no-store` (5.1); errors as 400/401
    JSON `{"error": ...}` (5.2: invalid_client with WWW-Authenticate, unsupported_grant_type, invalid_request). The
    tokens are JWTs of the issuer the service trusts."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key, self.issued, self.refused = key, 0, 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                issuer.answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/oauth/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = handler.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote(user), unquote(password)
        if not (handler.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            self.send(handler, 400, {"error": "invalid_request", "error_description": "form-encoded body expected"})
        elif (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            self.refused += 1
            self.send(handler, 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'})
        elif form.get("grant_type") != "client_credentials":
            self.send(handler, 400, {"error": "unsupported_grant_type"})
        else:
            self.issued += 1
            scope = form.get("scope", "query write")
            self.send(handler, 200, {"access_token": token(self.key, scope=scope, sub=CLIENT_ID),
                                     "token_type": "Bearer", "expires_in": 600, "scope": scope})

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, object],
             headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "no-store",
                            "Pragma": "no-cache", "Content-Length": str(len(data)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def node(test_env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **test_env}
    return subprocess.run(["node", "--test", "--test-reporter=spec", "test/"], cwd=APP, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_app_in_the_glide_harness(built: Path, service: str, signing_key: rsa.RSAPrivateKey) -> None:
    """Findings 1-9 against the built app: auth (Basic, a bearer token, a token fetched from a local issuer with the
    client credentials grant), timeouts, suggestions table, uncalibrated note, indexed fields, UI action feedback,
    delete racing a push, raw and display values, domains, resolutions (deploy/servicenow/test/app.test.js)."""
    issuer = Issuer(signing_key)
    try:
        result = node({"SIM_URL": service, "SIM_USER": USER, "SIM_KEY": WRITE_KEY, "SIM_TOKEN": token(signing_key),
                       "SIM_TOKEN_URL": issuer.url, "SIM_CLIENT_ID": CLIENT_ID, "SIM_CLIENT_SECRET": CLIENT_SECRET},
                      timeout=300)
    finally:
        issuer.close()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "ℹ fail 0" in result.stdout and "ℹ pass 10" in result.stdout, result.stdout[-3000:]
    assert (issuer.issued, issuer.refused) == (2, 2)  # one token, a second after expiry; the wrong secret twice


def test_storm_every_incident_answered(built: Path, shared_index_dir: Path, minilm_bundle, tmp_path: Path,  # type: ignore[no-untyped-def]
                                       signing_key: rsa.RSAPrivateKey) -> None:
    """Finding 3: 500 inserts while the service sheds (max_in_flight=2 and other callers loading it): the 429s are
    queued with their Retry-After and the retry job answers every incident."""
    url, proc = serve(shared_index_dir, minilm_bundle.path, tmp_path, signing_key, INCIDENT_SIM_MAX_IN_FLIGHT="2")
    stop, flag = threading.Event(), tmp_path / "storm-inserted"

    def load() -> None:  # other callers of the same service during the storm
        with httpx.Client(headers=basic(USER, WRITE_KEY), timeout=10) as client:
            while not stop.is_set() and not flag.exists():
                client.post(f"{url}/similar", json={"text": "printer jam on floor 3", "top_k": 3})

    with proc:
        threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            result = node({"SIM_URL": url, "SIM_USER": USER, "SIM_KEY": WRITE_KEY, "SIM_TOKEN": token(signing_key),
                           "SIM_STORM": "1", "SIM_STORM_FLAG": str(flag)}, timeout=600)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=15)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if '"storm"' in x)
    figures = json.loads(line[line.index("{"):])["storm"]
    print(figures)
    assert figures["answered"] == 500 and figures["first_pass_429"] > 0
