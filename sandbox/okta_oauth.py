"""Okta's OAuth 2.0 for service apps: the org authorization server's token endpoint and scoped tokens.

A service app authenticates with ``private_key_jwt``: it signs a short-lived JWT with its private
key and trades it for an access token at ``POST /oauth2/v1/token`` (form-encoded
``grant_type=client_credentials``, ``scope``, ``client_assertion_type=
urn:ietf:params:oauth:client-assertion-type:jwt-bearer``, ``client_assertion``); the Management
API then takes ``Authorization: Bearer <access token>`` and allows each call only with its
``okta.<resource>.read`` / ``.manage`` scope. As documented in "Implement OAuth for Okta with a
service app" (https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/main/)
and the token endpoint reference
(https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/tag/OrgAS/#tag/OrgAS/operation/token):

- the assertion is RS256 (or another RSA/EC algorithm) signed by a key in the app's registered
  JWKS (``kid`` picks one); ``iss`` and ``sub`` are the client id, ``aud`` the token endpoint's
  full URL, ``exp`` at most an hour after ``iat``, ``jti`` never used before;
- scopes must be among those granted to the app (400 ``invalid_scope`` otherwise); a bad or
  replayed assertion answers 401 ``invalid_client``; errors are ``{"error", "error_description"}``;
- the answer is ``{"token_type": "Bearer", "expires_in": 3600, "access_token", "scope"}``;
- a token without the scope an API call needs gets 403 ``E0000006`` and
  ``WWW-Authenticate: Bearer ... error="insufficient_scope"``.

Registering an app (what an admin does in the Admin Console, adding the app's public key):
``PUT /okta/_sandbox/service_apps/{client_id}`` ``{"jwks": {"keys": [<public JWK>]}, "scopes": [...]}``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
MAX_ASSERTION_LIFETIME_S = 3600
SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
SCOPES = ("okta.users.read", "okta.users.manage", "okta.groups.read", "okta.groups.manage", "okta.apps.read",
          "okta.apps.manage")


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description}, status_code=self.status)


class ServiceAppPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jwks: dict[str, list[dict[str, Any]]]
    scopes: list[str] = Field(default_factory=lambda: list(SCOPES))


@dataclass
class ServiceApps:
    """Registered service apps, the assertions already used and the tokens issued."""

    apps: dict[str, ServiceAppPlan] = field(default_factory=dict)
    used_jti: set[str] = field(default_factory=set)
    tokens: dict[str, tuple[str, frozenset[str], float]] = field(default_factory=dict)  # token -> app, scopes, exp

    def issue(self, token_url: str, form: dict[str, str], now: float) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "The authorization grant type is not supported.")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError(401, "invalid_client", "client_assertion_type and client_assertion are required.")
        client_id = self._verified_client(form["client_assertion"], token_url, now)
        wanted = set((form.get("scope") or "").split())
        if not wanted:
            raise OAuthError(400, "invalid_scope", "The authorization server requires a scope.")
        refused = sorted(wanted - set(self.apps[client_id].scopes))
        if refused:
            raise OAuthError(400, "invalid_scope",
                             f"The following scopes are not granted to the client: {' '.join(refused)}")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (client_id, frozenset(wanted), now + TOKEN_LIFETIME_S)
        return {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S, "access_token": token,
                "scope": " ".join(sorted(wanted))}

    def _verified_client(self, assertion: str, token_url: str, now: float) -> str:
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise OAuthError(401, "invalid_client", f"The client_assertion is not a JWT: {error}") from None
        client_id = unverified.get("iss")
        app = self.apps.get(str(client_id))
        if app is None or unverified.get("sub") != client_id:
            raise OAuthError(401, "invalid_client", "The client_assertion token has an invalid issuer or subject.")
        keys = [key for key in app.jwks.get("keys", []) if header.get("kid") in (None, key.get("kid"))]
        claims = None
        for key in keys:
            try:
                claims = jwt.decode(assertion, jwt.PyJWK(key).key, algorithms=SIGNING_ALGORITHMS, audience=token_url,
                                    options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]}, leeway=5)
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as error:
                raise OAuthError(401, "invalid_client", f"The client_assertion token is invalid: {error}") from None
        if claims is None:
            raise OAuthError(401, "invalid_client", "The client_assertion signature is invalid.")
        if claims["exp"] - claims["iat"] > MAX_ASSERTION_LIFETIME_S:
            raise OAuthError(401, "invalid_client", "The client_assertion token has an expiration too far in the "
                                                    "future.")
        if claims["jti"] in self.used_jti:
            raise OAuthError(401, "invalid_client", "The client_assertion token has already been used.")
        self.used_jti.add(claims["jti"])
        return client_id

    def scopes_of(self, token: str, now: float) -> frozenset[str] | None:
        """The scopes of a live access token, None for an unknown or expired one."""
        issued = self.tokens.get(token)
        return issued[1] if issued is not None and issued[2] > now else None


def required_scope(method: str, api_path: str) -> str:
    """The scope an API call needs: ``okta.<users|groups|apps>.read`` to read, ``.manage`` to change."""
    resource = api_path.strip("/").split("/")[0]
    return f"okta.{resource}.{'read' if method in ('GET', 'HEAD') else 'manage'}"


def allows(scopes: frozenset[str], needed: str) -> bool:
    """``.manage`` includes ``.read``."""
    return needed in scopes or needed.replace(".read", ".manage") in scopes


router = APIRouter(tags=["okta"])


def service_apps(request: Request) -> ServiceApps:
    return request.app.state.okta.service_apps


@router.post("/oauth2/v1/token")
async def token(request: Request) -> JSONResponse:
    """Trade a signed client assertion for an access token (org authorization server)."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    token_url = str(request.url.replace(query=None))
    try:
        answer = service_apps(request).issue(token_url, form, time.time())
    except OAuthError as error:
        return error.response()
    return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.put("/_sandbox/service_apps/{client_id}", response_model=None)
async def register_service_app(client_id: str, plan: ServiceAppPlan, request: Request) -> dict[str, Any] | JSONResponse:
    """Register (or replace) a service app's public keys and granted scopes."""
    unknown = sorted(set(plan.scopes) - set(SCOPES))
    if unknown:
        return JSONResponse({"error": f"unknown scopes {unknown}"}, status_code=422)
    service_apps(request).apps[client_id] = plan
    return {"client_id": client_id, "keys": len(plan.jwks.get("keys", [])), "scopes": plan.scopes}
