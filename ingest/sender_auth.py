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

import dkim

DnsLookup = Callable[..., bytes | None]

# A result is the start of a `;`-separated resinfo (RFC 8601), never text inside a property
# value such as smtp.mailfrom=dmarc=pass@evil.example, which the sender chose.
_RESULT = re.compile(r"^\s*(dmarc|dkim)\s*=\s*(\w+)(.*)$", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"\([^()]*\)")
_HEADER_D = re.compile(r"header\.d\s*=\s*([\w.-]+)", re.IGNORECASE)


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
        if str(h).strip().split(";")[0].split()[0:1] == [authserv_id]
    ]
    if not ours:
        return SenderCheck(address, False, f"no Authentication-Results from {authserv_id}")
    # Our MTA prepends its header, so the first one is its own; a later one claiming the
    # same id came with the message and is ignored (RFC 8601 section 5).
    for method, result, rest in _results(ours[0]):
        if result.lower() != "pass":
            continue
        if method.lower() == "dmarc":
            return SenderCheck(address, True, "DMARC pass")
        signer = _HEADER_D.search(rest)
        if signer and aligned(signer.group(1), domain):
            return SenderCheck(address, True, f"DKIM pass for {signer.group(1)}")
    return SenderCheck(address, False, f"neither DMARC nor an aligned DKIM passed for {domain}")


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


def _results(header: str) -> list[tuple[str, str, str]]:
    resinfos = _COMMENT.sub(" ", header).split(";")[1:]  # [0] is the authserv-id
    found = []
    for resinfo in resinfos:
        match = _RESULT.match(resinfo)
        if match:
            found.append((match.group(1), match.group(2), match.group(3)))
    return found
