"""RelatelClient: the one HTTP connection pool every tool call goes through.

The token travels with each request, never on the shared client, so one pool can serve several
tenants without one's token reaching another's request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import httpx2

from . import __version__
from .errors import from_transport


@dataclass(frozen=True)
class Tenant:
    """Whose Relatel account a call acts on. The token goes upstream and nowhere else."""

    token: str = field(repr=False)

    @property
    def id(self) -> str:
        """A stable pseudonym for budgets and the audit log: never the token itself."""
        return hashlib.sha256(b"relatel-mcp tenant:" + self.token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UpstreamRequest:
    """Exactly what is sent: method, path, query pairs (repeated keys for lists) and JSON body."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.params:
            described["query"] = [list(pair) for pair in self.params]
        if self.json is not None:
            described["body"] = self.json
        return described


class RelatelClient:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            timeout=httpx2.Timeout(read_timeout, connect=connect_timeout),
            headers={"Accept": "application/json", "User-Agent": f"relatel-mcp/{__version__}"},
            follow_redirects=False,
            transport=transport,
        )

    async def send(self, request: UpstreamRequest, tenant: Tenant) -> httpx2.Response:
        """Send once; transport failures become ToolErrors, HTTP statuses are the caller's."""
        try:
            return await self._http.request(
                request.method,
                request.path,
                params=list(request.params),
                json=request.json,
                headers={**request.headers, "Authorization": f"Bearer {tenant.token}"},
            )
        except httpx2.TransportError as exc:
            raise from_transport(exc) from None

    async def aclose(self) -> None:
        await self._http.aclose()
