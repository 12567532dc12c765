"""Which clients `/register` (RFC 7591) takes, and how many.

Anyone may register, so registration is bounded: per client address in an hour (an IPv6 client
counts by its /64, which one host usually holds whole), in all by how many registered clients may
be waiting to complete a grant at once, and in size (names, URIs, lists, the request body). A
client that completes no grant within `waiting_seconds` of registering expires.

Redirect URIs are where the user's browser is sent with a code or an error, so only those that
can only reach the client are taken (RFC 8252, OAuth 2.1 §2.3.1): https, http on loopback, and a
native app's private-use scheme named after a domain it owns (com.example.app:/callback), or the
own scheme of an MCP client that predates that rule (`cursor:`, `vscode:`). `javascript:`,
`data:`, `file:`, any other one-word scheme and plain http to another host are refused.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.auth.provider import RegistrationError
from mcp.shared.auth import OAuthClientInformationFull

from ..core.errors import ConfigError

MAX_BODY_BYTES = 16_384
MAX_NAME = 100  # characters of client_name (the consent page shows 80)
MAX_TEXT = 2048  # characters of any other value: a URI, a contact
MAX_ITEMS = 10  # entries of a list: redirect URIs, contacts, grant types
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_PRIVATE_USE = re.compile(r"[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+")  # RFC 8252 §7.1: a reversed domain name
# MCP clients whose registered callback is a one-word scheme of their own (Cursor, VS Code).
CLIENT_SCHEMES = frozenset({"cursor", "vscode", "vscode-insiders"})


@dataclass(frozen=True)
class RegistrationLimits:
    per_client: int = 20  # registrations per hour from one address (a proxy's address is everyone's)
    waiting: int = 1000  # registered clients, in all, that have not completed a grant yet
    waiting_seconds: float = 86_400  # how long such a client lives

    def __post_init__(self) -> None:
        if self.per_client < 1 or self.waiting < 1:  # 0 would read as "no limit" to RateLimiter
            raise ConfigError("--registrations-per-client and --max-waiting-clients must be at least 1")


class RegistryFull(Exception):
    """`RegistrationLimits.waiting` clients are waiting to complete a grant: none is taken now."""


def check_registration(client: OAuthClientInformationFull) -> None:
    """RegistrationError (RFC 7591 §3.2.2) for a client we do not register."""
    if problem := _too_big(client):
        raise RegistrationError("invalid_client_metadata", problem)
    for uri in client.redirect_uris or ():
        if problem := redirect_uri_problem(str(uri)):
            raise RegistrationError("invalid_redirect_uri", f"{str(uri)[:100]}: {problem}")


def redirect_uri_problem(uri: str) -> str | None:
    """Why a browser may not be sent to `uri` (None: it may)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if "#" in uri:
        return "a redirect URI must not have a fragment"
    if scheme in ("http", "https"):
        if "@" in parts.netloc:  # https://mcp.example.com@evil.example/ reads as ours on the consent page
            return "a redirect URI must not carry user information"
        if not parts.hostname:
            return "a redirect URI needs a host"
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            return "http is for loopback only (127.0.0.1, [::1], localhost); use https"
        return None
    if _PRIVATE_USE.fullmatch(scheme) or scheme in CLIENT_SCHEMES:
        return None
    return (
        f"the scheme {scheme!r} is not allowed: use https, http on loopback, or a private-use scheme "
        "named after your domain (com.example.app:/callback)"
    )


def _too_big(client: OAuthClientInformationFull) -> str | None:
    if client.client_name is not None and len(client.client_name) > MAX_NAME:
        return f"client_name is longer than {MAX_NAME} characters"
    for name, value in client.model_dump(mode="json").items():
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_ITEMS:
            return f"{name} has more than {MAX_ITEMS} entries"
        if any(isinstance(each, str) and len(each) > MAX_TEXT for each in values):
            return f"{name} is longer than {MAX_TEXT} characters"
    return None


def address_of(host: str) -> str:
    """Whose registrations count together: an IPv4 address, or an IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)
