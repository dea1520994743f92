"""The console page is rendered with escaped settings and, only in dev mode, a dev token."""

from __future__ import annotations

import re

from streams.config import Settings
from web.auth import TokenVerifier
from web.console import CSP, render


def _token(page: str) -> str:
    match = re.search(r'<meta name="healthmate-dev-token" content="([^"]*)">', page)
    assert match, "the page carries the dev-token meta tag"
    return match[1]


def test_dev_mode_renders_a_dev_operator_token_the_api_accepts():
    settings = Settings(dev_mode=True)  # type: ignore[call-arg]
    page = render(settings)
    principal = TokenVerifier(settings).verify(f"Bearer {_token(page)}")
    assert "operator" in principal.roles


def test_outside_dev_mode_the_page_has_no_token_and_escapes_settings():
    settings = Settings(pseudonym_key="k" * 32, api_jwt_secret="s" * 40,  # type: ignore[call-arg]
                        app_id='x"><script>alert(1)</script>')
    page = render(settings)
    assert _token(page) == ""
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_csp_allows_only_this_origin_and_no_inline_script():
    assert "script-src 'self'" in CSP and "default-src 'none'" in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "frame-ancestors 'none'" in CSP
