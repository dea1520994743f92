"""Hypothesis profiles: ``ci`` (default, a few examples, part of ``make test``) and ``long``
(``make fuzz``: ``HYPOTHESIS_PROFILE=long``). Failing examples are printed and kept in
``.hypothesis/`` (git-ignored) so a re-run tries them first."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
