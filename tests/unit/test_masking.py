"""Webhook URLs as viewers see them: no user, password, query value or fragment."""

from __future__ import annotations

import pytest

from web.masking import mask_job_secrets, mask_url


@pytest.mark.parametrize(("url", "masked"), [
    ("https://u:p@hooks.example.com:8443/x?token=abc&team=1#frag",
     "https://***@hooks.example.com:8443/x?token=***&team=***#***"),
    ("https://hooks.example.com/x", "https://hooks.example.com/x"),
    ("https://only-user@h.example.com/", "https://***@h.example.com/"),
    ("https://[2001:db8::1]:9000/h?k=v", "https://[2001:db8::1]:9000/h?k=***"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_job_secrets_leaves_jobs_without_a_webhook_alone():
    job = {"job_name": "j", "notification_webhook_url": None}
    assert mask_job_secrets(job) is job
    assert mask_job_secrets({"notification_webhook_url": "https://a:b@h.example.com/"}) == {
        "notification_webhook_url": "https://***@h.example.com/"}
