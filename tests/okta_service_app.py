"""An Okta OAuth 2.0 service app for tests: a key pair, its public half registered with the sandbox org.

As an Okta admin does it: create the app, add its public key (JWK) and grant it scopes; the
Connection then holds the client id and the private key, and no API token.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.sandbox_client import call

CLIENT_ID = "0oaprepsupportsvc"
KEY_ID = "prep-support-2026"


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def register(base_url: str, pem: str, *, scopes: list[str] | None = None, client_id: str = CLIENT_ID) -> None:
    """Register the public half of ``pem`` as the app's only key, granted ``scopes`` (default: all)."""
    public = serialization.load_pem_private_key(pem.encode(), password=None).public_key()
    jwk = {**json.loads(RSAAlgorithm.to_jwk(public)), "kid": KEY_ID, "use": "sig", "alg": "RS256"}
    body: dict[str, Any] = {"jwks": {"keys": [jwk]}}
    if scopes is not None:
        body["scopes"] = scopes
    call(base_url, "PUT", f"/okta/_sandbox/service_apps/{client_id}", body)


def connection(sandbox: Any, pem: str, **extra: Any) -> str:
    """``AIRFLOW_CONN_...`` JSON for the sandbox org through the service app: no password."""
    token_conn = json.loads(sandbox.connection_env()["AIRFLOW_CONN_OKTA_DEFAULT"])
    token_conn.pop("password", None)
    token_conn["extra"] = {**token_conn.get("extra", {}), "client_id": CLIENT_ID, "private_key": pem,
                           "key_id": KEY_ID, **extra}
    return json.dumps(token_conn)
