"""Token verification and the role table, without a server (the HTTP tests are in tests/web)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from streams.config import DEV_JWT_SECRET, Settings
from streams.errors import ConfigurationError
from web.auth import ROLE_PERMISSIONS, ROLES, Permission, Principal, TokenVerifier, mint_token
from web.errors import ApiUnavailable, Unauthenticated

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


PRIVATE_PEM, PUBLIC_PEM = _pem_pair()
OTHER_PRIVATE_PEM, _ = _pem_pair()


def hs_settings(**extra: object) -> Settings:
    return Settings(dev_mode=True, api_jwt_secret=SECRET, api_jwt_issuer="hm-issuer",
                    api_jwt_audience="hm-api", **extra)


def rs_settings() -> Settings:
    return Settings(dev_mode=True, api_jwt_algorithm="RS256", api_jwt_public_key=PUBLIC_PEM,
                    api_jwt_issuer="hm-issuer", api_jwt_audience="hm-api")


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {"sub": "alice", "roles": ["operator"], "iss": "hm-issuer",
                               "aud": "hm-api", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def bearer(token: str) -> str:
    return f"Bearer {token}"


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_hs256_token_gives_the_principal() -> None:
    principal = TokenVerifier(hs_settings()).verify(bearer(jwt.encode(claims(), SECRET, "HS256")))
    assert principal == Principal("alice", ("operator",))
    assert principal.may(Permission.REDRIVE) and not principal.may(Permission.OPTIMIZE)


def test_valid_rs256_token_gives_the_principal() -> None:
    token = jwt.encode(claims(roles="admin"), PRIVATE_PEM, "RS256")
    assert TokenVerifier(rs_settings()).verify(bearer(token)).roles == ("admin",)


@pytest.mark.parametrize("token", [
    pytest.param(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims(roles=['admin']))}.", id="alg-none"),
    pytest.param(f"{b64({'alg': 'None'})}.{b64(claims(roles=['admin']))}.", id="alg-None"),
    pytest.param(jwt.encode(claims(), OTHER_PRIVATE_PEM, "RS256"), id="rs256-to-hs256-api"),
    pytest.param(jwt.encode(claims(), SECRET * 2, "HS512"), id="hs512-not-configured"),
    pytest.param(jwt.encode(claims(), "another-secret-also-long-enough-0123456", "HS256"), id="wrong-secret"),
    pytest.param(jwt.encode(claims(exp=int(time.time()) - 60), SECRET, "HS256"), id="expired"),
    pytest.param(jwt.encode(claims(exp=None), SECRET, "HS256"), id="missing-exp"),
    pytest.param(jwt.encode(claims(sub=None), SECRET, "HS256"), id="missing-sub"),
    pytest.param(jwt.encode(claims(aud="other-api"), SECRET, "HS256"), id="wrong-audience"),
    pytest.param(jwt.encode(claims(aud=None), SECRET, "HS256"), id="missing-audience"),
    pytest.param(jwt.encode(claims(iss="evil"), SECRET, "HS256"), id="wrong-issuer"),
    pytest.param(jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, "HS256"), id="not-yet-valid"),
    pytest.param("not.a.jwt", id="garbage"),
])
def test_hs256_api_rejects(token: str) -> None:
    with pytest.raises(Unauthenticated):
        TokenVerifier(hs_settings()).verify(bearer(token))


def test_tampered_payload_is_rejected() -> None:
    header, _, signature = jwt.encode(claims(roles=["viewer"]), SECRET, "HS256").split(".")
    forged = f"{header}.{b64(claims(roles=['admin']))}.{signature}"
    with pytest.raises(Unauthenticated):
        TokenVerifier(hs_settings()).verify(bearer(forged))


def test_rs256_api_rejects_hs256_signed_with_its_public_key() -> None:
    """Algorithm confusion: the public key used as an HMAC secret."""
    header = b64({"alg": "HS256", "typ": "JWT"})
    payload = b64(claims(roles=["admin"]))
    import hashlib
    import hmac

    mac = hmac.new(PUBLIC_PEM.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated, match="algorithm"):
        TokenVerifier(rs_settings()).verify(bearer(forged))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic YWxpY2U6cHc=", "Token abc"])
def test_missing_or_other_scheme_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        TokenVerifier(hs_settings()).verify(header)


def test_no_key_outside_dev_mode_disables_the_api() -> None:
    settings = Settings(dev_mode=False, pseudonym_key="k" * 32)
    with pytest.raises(ApiUnavailable):
        TokenVerifier(settings).verify(bearer(jwt.encode(claims(), DEV_JWT_SECRET, "HS256")))


def test_dev_mode_falls_back_to_the_dev_secret() -> None:
    settings = Settings(dev_mode=True)
    token = mint_token(settings, subject="dev", roles=["viewer"])
    assert TokenVerifier(settings).verify(bearer(token)).subject == "dev"


def test_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Settings(dev_mode=True, api_jwt_secret="too-short")


def test_bad_public_key_fails_at_start() -> None:
    with pytest.raises(jwt.InvalidKeyError):
        TokenVerifier(Settings(dev_mode=True, api_jwt_algorithm="RS256", api_jwt_public_key="not a pem"))


def test_unknown_roles_grant_nothing_and_roles_may_be_a_string() -> None:
    verifier = TokenVerifier(hs_settings())
    principal = verifier.verify(bearer(jwt.encode(claims(roles=["root", "superuser"]), SECRET, "HS256")))
    assert principal.roles == () and principal.permissions == frozenset()
    principal = verifier.verify(bearer(jwt.encode(claims(roles="viewer analyst"), SECRET, "HS256")))
    assert principal.roles == ("viewer", "analyst")


def test_roles_are_cumulative() -> None:
    viewer, analyst, operator, admin = (ROLE_PERMISSIONS[r] for r in ROLES[:4])
    assert viewer < analyst < operator < admin
    assert analyst - viewer == {Permission.ANALYZE_QUALITY, Permission.READ_FHIR, Permission.READ_CGM}
    assert operator - analyst == {Permission.WRITE_JOBS, Permission.RUN_JOBS, Permission.REPLAY,
                                  Permission.REDRIVE, Permission.IMPORT}
    assert admin - operator == {Permission.DELETE_JOBS, Permission.SETUP, Permission.OPTIMIZE,
                                Permission.EXPORT_SUBJECT, Permission.ERASE_SUBJECT}
    assert viewer == {Permission.READ_STATUS, Permission.READ_LINEAGE, Permission.READ_JOBS,
                      Permission.READ_DLQ}


def test_minted_token_carries_issuer_audience_and_expiry() -> None:
    token = mint_token(hs_settings(), subject="alice", roles=["admin"], ttl_s=120)
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience="hm-api", issuer="hm-issuer")
    assert decoded["roles"] == ["admin"] and decoded["exp"] - decoded["iat"] == 120
    rs = mint_token(rs_settings(), subject="bob", roles=["viewer"], private_key=PRIVATE_PEM)
    assert TokenVerifier(rs_settings()).verify(bearer(rs)).subject == "bob"
    with pytest.raises(ValueError):
        mint_token(rs_settings(), subject="bob", roles=["viewer"])


def no_audience_settings(**extra: object) -> Settings:
    return Settings(dev_mode=True, api_jwt_secret=SECRET, api_jwt_issuer="hm-issuer", **extra)


@pytest.mark.parametrize("aud", ["", [], [""], ["hm-api", " "]])
def test_an_empty_audience_is_refused_with_or_without_a_configured_one(aud: object) -> None:
    token = jwt.encode(claims(aud=aud), SECRET, "HS256")
    for settings in (hs_settings(), no_audience_settings()):
        with pytest.raises(Unauthenticated):
            TokenVerifier(settings).verify(bearer(token))


def test_far_future_tokens_are_refused_by_the_maximum_lifetime() -> None:
    verifier = TokenVerifier(hs_settings(api_jwt_max_ttl_s=3600))
    now = int(time.time())
    ok = jwt.encode(claims(iat=now, exp=now + 3600), SECRET, "HS256")
    assert verifier.verify(bearer(ok)).subject == "alice"
    for too_long in (claims(iat=now, exp=now + 3600 + 60), claims(iat=now - 10 * 86400, exp=now + 60),
                     claims(iat=None, exp=now + 10 * 365 * 86400)):
        with pytest.raises(Unauthenticated, match="lifetime"):
            verifier.verify(bearer(jwt.encode(too_long, SECRET, "HS256")))
    # Without iat the remaining lifetime counts.
    assert verifier.verify(bearer(jwt.encode(claims(iat=None, exp=now + 1800), SECRET, "HS256")))
    # The default bound (a day) refuses the probe's far-future token too.
    far = jwt.encode(claims(exp=now + 100 * 365 * 86400), SECRET, "HS256")
    with pytest.raises(Unauthenticated, match="lifetime"):
        TokenVerifier(hs_settings()).verify(bearer(far))


def test_ingest_roles_write_readings_only_and_api_roles_never_do() -> None:
    ingest = {Permission.INGEST_OWN, Permission.INGEST_ANY_USER}
    assert Principal("app", ("producer",)).permissions == {Permission.INGEST_OWN}
    assert Principal("partner", ("ingest-service",)).permissions == ingest
    for role in ("viewer", "analyst", "operator", "admin"):
        assert not ROLE_PERMISSIONS[role] & ingest, role
    token = mint_token(hs_settings(), subject="alice", roles=["producer"])
    principal = TokenVerifier(hs_settings()).verify(bearer(token))
    assert principal.roles == ("producer",) and principal.token_id and principal.expires_at
