"""Which RCPT TO addresses are ours: the import address and accounts' plus-addresses."""

from __future__ import annotations

from collections.abc import Callable


class RecipientPolicy:
    def __init__(self, import_address: str, token_known: Callable[[str], bool]) -> None:
        local, _, domain = import_address.lower().partition("@")
        self._local, self._domain = local, domain
        self._token_known = token_known

    def accepts(self, address: str) -> bool:
        verdict = self.accepts_at_sight(address)
        if verdict is not None:
            return verdict
        token = self.token_of(address)
        return token is not None and self._token_known(token)

    def accepts_at_sight(self, address: str) -> bool | None:
        """True or False when the address alone decides; None when a token must be looked
        up (the SMTP listener does that off the event loop)."""
        local, at, domain = address.strip().strip("<>").lower().rpartition("@")
        if not at or domain != self._domain:
            return False
        if local == self._local:
            return True
        return None if self.token_of(address) is not None else False

    def token_of(self, address: str) -> str | None:
        """The account token in a plus-address, if any."""
        local = address.strip().strip("<>").lower().rpartition("@")[0]
        base, plus, token = local.partition("+")
        return token if plus and base == self._local and token else None
