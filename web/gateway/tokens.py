"""Verified tokens, remembered until they expire: an app sends the same token on every request.

:meth:`CachedVerifier.verify` answers exactly what :meth:`web.auth.TokenVerifier.verify`
answers, except that a token verified before is not verified again while the clock is before
its ``exp`` (the signature, issuer and audience of a given token string cannot change).
Refusals are never remembered. At most ``max_entries`` tokens are kept (oldest dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from web.auth import Principal, TokenVerifier


class CachedVerifier:
    def __init__(self, verifier: TokenVerifier, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.verifier, self.max_entries, self.clock = verifier, max_entries, clock
        self._known: OrderedDict[str, Principal] = OrderedDict()

    def verify(self, authorization: str | None) -> Principal:
        now = self.clock()
        if authorization is not None:
            known = self._known.get(authorization)
            if known is not None and known.expires_at is not None and now < known.expires_at:
                return known
        principal = self.verifier.verify(authorization, now=now)
        if authorization is not None and principal.expires_at is not None:
            self._known[authorization] = principal
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)
        return principal
