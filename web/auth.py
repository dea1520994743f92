"""JWT bearer authentication and role-based permissions for the API.

Contract of :meth:`TokenVerifier.verify`:

- the algorithm is the one configured (``HEALTHMATE_API_JWT_ALGORITHM``), whatever the
  token's header says: ``alg=none``, and an HS256 token presented to an RS256 API (or the
  reverse: "algorithm confusion") are rejected before any signature is computed;
- ``exp`` and ``sub`` are required; ``iss`` and ``aud`` are checked when configured
  (a token carrying an ``aud`` is rejected when no audience is configured, and an empty
  ``aud``, ``""`` or ``[]`` or a list with an empty member, is always rejected);
- the lifetime is bounded by ``HEALTHMATE_API_JWT_MAX_TTL_S``: ``exp - iat``, or
  ``exp - now`` for a token without ``iat``, may not exceed it (plus the leeway);
- keys are never fetched from the token (``jku``/``x5u``/``kid`` are ignored);
- ``sub`` is a string of 1-256 characters, not only blanks, and text that UTF-8 can encode
  (a lone surrogate, ``"\\ud800"``, is refused: it can be neither pseudonymised nor sent on).

It raises :class:`Unauthenticated` with a short reason that never echoes the token.
Roles come from the ``HEALTHMATE_API_ROLES_CLAIM`` claim (a list or one string); unknown
roles grant nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import jwt

from streams.config import Settings
from streams.domain.text import is_utf8
from web.errors import ApiUnavailable, Unauthenticated


class Permission(StrEnum):
    """What a route needs. Values appear in the OpenAPI document (``x-permission``)."""

    READ_STATUS = "status:read"
    READ_LINEAGE = "lineage:read"
    READ_JOBS = "jobs:read"
    READ_DLQ = "dlq:read"
    ANALYZE_QUALITY = "quality:analyze"
    READ_FHIR = "fhir:read"
    READ_CGM = "cgm:read"
    WRITE_JOBS = "jobs:write"
    RUN_JOBS = "jobs:run"
    REPLAY = "replay"
    REDRIVE = "dlq:redrive"
    DELETE_JOBS = "jobs:delete"
    SETUP = "pipeline:setup"
    OPTIMIZE = "warehouse:optimize"
    EXPORT_SUBJECT = "subjects:export"
    ERASE_SUBJECT = "subjects:erase"
    IMPORT = "imports:write"
    #: The ingest gateway: write readings of the token's own subject.
    INGEST_OWN = "readings:write"
    #: The ingest gateway: write readings of any user (a trusted partner backend).
    INGEST_ANY_USER = "readings:write-any-user"


_VIEWER = frozenset({Permission.READ_STATUS, Permission.READ_LINEAGE, Permission.READ_JOBS,
                     Permission.READ_DLQ})
_ANALYST = _VIEWER | {Permission.ANALYZE_QUALITY, Permission.READ_FHIR, Permission.READ_CGM}
_OPERATOR = _ANALYST | {Permission.WRITE_JOBS, Permission.RUN_JOBS, Permission.REPLAY,
                        Permission.REDRIVE, Permission.IMPORT}
_ADMIN = _OPERATOR | {Permission.DELETE_JOBS, Permission.SETUP, Permission.OPTIMIZE,
                      Permission.EXPORT_SUBJECT, Permission.ERASE_SUBJECT}

# Ingest roles are apart from the API's ladder: an app or device token (``producer``, its
# ``sub`` is the user) and a partner backend (``ingest-service``) write readings and read nothing.
_PRODUCER = frozenset({Permission.INGEST_OWN})
_INGEST_SERVICE = _PRODUCER | {Permission.INGEST_ANY_USER}

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "viewer": _VIEWER, "analyst": _ANALYST, "operator": _OPERATOR, "admin": _ADMIN,
    "producer": _PRODUCER, "ingest-service": _INGEST_SERVICE,
}
ROLES = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``subject`` is the token's ``sub``: an operator for the API,
    the user itself for a ``producer`` token of the ingest gateway. ``token_id`` is the
    token's ``jti`` when it has a non-empty string one; ``expires_at`` its ``exp`` (epoch s)."""

    subject: str
    roles: tuple[str, ...]
    token_id: str | None = field(default=None, compare=False)
    expires_at: float | None = field(default=None, compare=False)

    @property
    def permissions(self) -> frozenset[Permission]:
        granted: frozenset[Permission] = frozenset()
        for role in self.roles:
            granted |= ROLE_PERMISSIONS.get(role, frozenset())
        return granted

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


class TokenVerifier:
    """Verifies bearer tokens with the configured algorithm and key (built once per app)."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.api_jwt_algorithm
        self.issuer = settings.api_jwt_issuer
        self.audience = settings.api_jwt_audience
        self.leeway = settings.api_jwt_leeway_s
        self.roles_claim = settings.api_roles_claim
        self.max_ttl = settings.api_jwt_max_ttl_s
        self._key: object | None = None
        key = settings.api_jwt_key
        if key is not None:
            # Parse once: a bad PEM stops the worker at start instead of failing each call.
            self._key = jwt.get_algorithm_by_name(self.algorithm).prepare_key(key)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def verify(self, authorization: str | None, *, now: float | None = None) -> Principal:
        """The caller of a request with this ``Authorization`` header value."""
        if self._key is None:
            raise ApiUnavailable("API authentication is not configured")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing bearer token")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        if header.get("alg") != self.algorithm:
            raise Unauthenticated("token algorithm not accepted")
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[self.algorithm],  # type: ignore[arg-type]
                audience=self.audience, issuer=self.issuer, leeway=self.leeway,
                options={"require": ["exp", "sub", *(["iss"] if self.issuer else []),
                                     *(["aud"] if self.audience else [])]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        self._check_claims(claims, time.time() if now is None else now)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 256 or not is_utf8(subject):
            raise Unauthenticated("invalid token subject")
        jti = claims.get("jti")
        return Principal(subject=subject, roles=_roles(claims.get(self.roles_claim)),
                         token_id=jti if isinstance(jti, str) and jti and len(jti) <= 256 else None,
                         expires_at=float(claims["exp"]))  # type: ignore[arg-type]  # checked above


    def _check_claims(self, claims: dict[str, object], now: float) -> None:
        """What PyJWT lets through: an empty ``aud``, and lifetimes longer than allowed."""
        if "aud" in claims:
            aud = claims["aud"]
            members = aud if isinstance(aud, list) else [aud]
            if not members or any(not isinstance(a, str) or not a.strip() for a in members):
                raise Unauthenticated("invalid token audience")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Unauthenticated("invalid token")
        start = iat if isinstance(iat, int | float) and not isinstance(iat, bool) else now
        if exp - start > self.max_ttl + self.leeway:
            raise Unauthenticated("token lifetime too long")


def _roles(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(r for r in value if isinstance(r, str) and r in ROLE_PERMISSIONS))


def mint_token(settings: Settings, *, subject: str, roles: Iterable[str], ttl_s: int = 3600,
               private_key: str | None = None, now: float | None = None) -> str:
    """A token the API accepts under ``settings`` (dev tokens, tests).

    HS256 signs with the configured (or dev) secret; RS256 needs ``private_key`` (PEM).
    """
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": subject, settings.api_roles_claim: list(roles),
                                 "iat": issued, "exp": issued + ttl_s, "jti": uuid.uuid4().hex}
    if settings.api_jwt_issuer:
        claims["iss"] = settings.api_jwt_issuer
    if settings.api_jwt_audience:
        claims["aud"] = settings.api_jwt_audience
    if settings.api_jwt_algorithm == "RS256":
        if not private_key:
            raise ValueError("RS256 tokens need the private key (PEM)")
        return jwt.encode(claims, private_key, algorithm="RS256")
    secret = settings.api_jwt_key
    if secret is None:
        raise ValueError("no HS256 secret: set HEALTHMATE_API_JWT_SECRET or HEALTHMATE_DEV_MODE=true")
    return jwt.encode(claims, secret, algorithm="HS256")
