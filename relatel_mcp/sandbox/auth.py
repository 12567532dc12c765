"""Who is calling and what they may do: the demo tokens, token -> identity, and the one table of
plan/admin/M2M requirements per operation.

Tokens never reach the request log in clear; `token_fingerprint` is what it keeps instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from relatel_mcp.sandbox.data import Company, Record

DEMO_TOKENS: dict[str, str] = {
    "sandbox-admin": "Mette Hansen, admin of Fjordlys ApS (company 1: Switch Premium, M2M agreement)",
    "sandbox-employee": "Jonas Nielsen, employee (not admin) of Fjordlys ApS (company 1)",
    "sandbox-starter": "Lars Bager, admin of Bageriet Solsikke (company 2: Switch Starter, no M2M agreement)",
}
IDENTITIES = {"sandbox-admin": (1, 1), "sandbox-employee": (1, 2), "sandbox-starter": (2, 101)}
TENANT_TOKEN = re.compile(r"sandbox-tenant-[A-Za-z0-9_-]{1,64}")  # any of these is Mette in company 1


def request_token(headers: Any, query: dict[str, list[str]]) -> str | None:
    """The access token from `Authorization: Bearer` or, as a testing convenience, `?access_token=`."""
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    tokens = query.get("access_token")
    return tokens[0] if tokens else None


def token_fingerprint(token: str | None) -> str | None:
    return None if token is None else hashlib.sha256(token.encode()).hexdigest()[:16]


def identify(token: str | None, issued: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """(company, employee) of a demo token, a tenant token or a token issued by OAuth (`issued`)."""
    if token in IDENTITIES:
        return IDENTITIES[token]
    if token in issued:
        return issued[token]
    return (1, 1) if token and TENANT_TOKEN.fullmatch(token) else None


@dataclass(frozen=True)
class Requirement:
    message: str
    met: Callable[[Company, Record], bool]


PREMIUM = Requirement("Switch Premium required", lambda company, me: company.plan == "Switch Premium")
ADMIN = Requirement("Admin access required", lambda company, me: bool(me["admin"]))
M2M = Requirement("M2M agreement required", lambda company, me: company.m2m_agreement)

REQUIREMENTS: dict[str, Requirement] = {
    "sendEmployeeMessage": PREMIUM,
    "sendEmployeeGroupMessage": PREMIUM,
    "getReceptionStatistics": PREMIUM,
    "getReceptionCallStatus": PREMIUM,
    "createEmployee": ADMIN,
    "updateEmployee": ADMIN,
    "deleteEmployee": ADMIN,
    "createEmployeeGroup": ADMIN,
    "updateEmployeeGroup": ADMIN,
    "getM2MSubscriptionIds": M2M,
    "getM2MSubscription": M2M,
    "updateM2MSubscription": M2M,
    "createM2MActivationOrder": M2M,
    "createM2MCancellationOrder": M2M,
    "getM2MConsumptionCsv": M2M,
    "createSubscriptionCancellationOrder": M2M,
    "createM2MProductChangeOrder": M2M,
}
