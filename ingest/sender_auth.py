"""Who really sent a message: nobody imports into an account by forging a From line.

Modes (STAX_SENDER_AUTH): `none` trusts the From address; `authres` trusts only the
Authentication-Results header that the configured upstream MTA added (RFC 8601), requiring
a DMARC pass or a DKIM pass aligned with the From domain; `dkim` verifies the DKIM signature
itself (dkimpy) and requires it to be aligned with the From domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Any

import authres
import dkim

DnsLookup = Callable[..., bytes | None]

_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class SenderCheck:
    address: str | None  # the From address, lower-case, when it could be read
    authenticated: bool
    reason: str  # why not, or how it passed (for ops)


def check_sender(
    message: Message,
    raw: bytes,
    mode: str,
    authserv_id: str | None,
    dns: DnsLookup | None = None,
) -> SenderCheck:
    address = from_address(message)
    if address is None:
        return SenderCheck(None, False, "the message has no readable From address")
    domain = address.rpartition("@")[2]
    if mode == "none":
        return SenderCheck(address, True, "sender authentication is off (STAX_SENDER_AUTH=none)")
    if mode == "authres":
        return _by_authentication_results(message, address, domain, authserv_id)
    return _by_dkim(raw, address, domain, dns)


def from_address(message: Message) -> str | None:
    addresses = [a for _, a in getaddresses([str(v) for v in message.get_all("From", [])]) if a]
    if len(addresses) != 1 or "@" not in addresses[0]:
        return None  # none, or several: RFC 5322 allows it, DMARC refuses it, so do we
    return addresses[0].lower()


def aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    a, b = signing_domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _by_authentication_results(
    message: Message, address: str, domain: str, authserv_id: str | None
) -> SenderCheck:
    if not authserv_id:
        return SenderCheck(address, False, "STAX_AUTHSERV_ID is not set: no header is trusted")
    ours = [
        str(h)
        for h in message.get_all("Authentication-Results", [])
        if _claimed_id(str(h)) == authserv_id.lower()
    ]
    if not ours:
        return SenderCheck(address, False, f"no Authentication-Results from {authserv_id}")
    # Our MTA prepends its header, so the first one is its own; a later one claiming the
    # same id came with the message and is ignored (RFC 8601 section 5). The authres
    # parser reads quoted values and comments as RFC 8601 says, so that nothing the sender
    # chose (a quoted local part with `;` in it, a header.i) reads as a result or a signer.
    try:
        header = authres.AuthenticationResultsHeader.parse_value(ours[0])
    except authres.AuthResError as exc:
        return SenderCheck(address, False, f"the Authentication-Results could not be read: {exc}")
    for result in header.results:
        if str(result.result).lower() != "pass":
            continue
        method = str(result.method).lower()
        # DMARC is about the From domain; a pass said of another one is not this message's
        judged = _property(result, "header", "from")
        if method == "dmarc" and (judged is None or judged.lower().rstrip(".") == domain):
            return SenderCheck(address, True, "DMARC pass")
        signer = _property(result, "header", "d") if method == "dkim" else None
        if signer and aligned(signer, domain):
            return SenderCheck(address, True, f"DKIM pass for {signer}")
    return SenderCheck(address, False, f"neither DMARC nor an aligned DKIM passed for {domain}")


def _claimed_id(header: str) -> str:
    """The authserv-id a header names: its first word (a version number may follow)."""
    first = _COMMENT.sub(" ", header).split(";", 1)[0].split()
    return first[0].lower() if first else ""


def _property(result: Any, ptype: str, name: str) -> str | None:
    for prop in result.properties:
        if str(prop.type).lower() == ptype and str(prop.name).lower() == name:
            return str(prop.value)
    return None


def _by_dkim(raw: bytes, address: str, domain: str, dns: DnsLookup | None) -> SenderCheck:
    verifier = dkim.DKIM(raw, timeout=5)
    try:
        ok = verifier.verify(dnsfunc=dns) if dns else verifier.verify()
    except dkim.DKIMException as exc:
        return SenderCheck(address, False, f"DKIM could not be verified: {exc}")
    signer = (verifier.domain or b"").decode("ascii", "replace")
    if not ok:
        return SenderCheck(address, False, "no valid DKIM signature")
    if not aligned(signer, domain):
        return SenderCheck(address, False, f"DKIM signed by {signer}, not aligned with {domain}")
    return SenderCheck(address, True, f"DKIM pass for {signer}")
