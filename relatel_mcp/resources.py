"""MCP resources: what is naturally a document, read on demand rather than put in a tool result.

A voicemail's recording (`audio/mpeg`), a contact and an employee (JSON, as get_contact and
get_employee answer with detail "full"), and the audit. Each template is one of the catalogue's
reads, so a resource is read through the same client, token, rate limit and size limits as that
tool, is offered only where the tool is (toolsets, what the account can use), and reading one
only ever sends that GET.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import mcp.types as types

from .core import catalog
from .core.catalog import Operation
from .core.errors import ToolError
from .core.results import MAX_AUDIO_BYTES, audio_bytes, shape
from .core.sanitize import clean_data
from .store import Store
from .upstream.accounts import Accounts, token_key
from .upstream.client import RelatelClient, Tenant

AUDIT_URI = "relatel://audit"
AUDIT = types.Resource(
    uri=AUDIT_URI,
    name="audit",
    title="Audit",
    description="The latest costly and destructive attempts on this account and what became of them.",
    mime_type="application/json",
)
Contents = list[types.TextResourceContents | types.BlobResourceContents]


@dataclass(frozen=True)
class Template:
    """A resource template: one catalogue read, its `{id}` the read's `id` argument."""

    uri_template: str
    operation: str  # the contract operationId it reads
    name: str
    title: str
    description: str
    mime_type: str
    completes: str  # what its {id} completes from (upstream/directory.py)

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.escape(self.uri_template).replace(r"\{id\}", "(?P<id>[0-9]{1,18})") + "$")

    @cached_property
    def tool(self) -> str:
        """The catalogue tool it reads as: served and scoped as that tool is."""
        return catalog.named(self.operation).name

    def uri(self, id: int) -> str:
        return self.uri_template.replace("{id}", str(id))

    def described(self) -> types.ResourceTemplate:
        return types.ResourceTemplate(
            uri_template=self.uri_template,
            name=self.name,
            title=self.title,
            description=self.description,
            mime_type=self.mime_type,
        )


RECORDING = Template(
    "relatel://voicemails/{id}/recording",
    "downloadVoiceMail",
    "voicemail_recording",
    "Voicemail recording",
    "A voicemail's recording as MP3 (id from list_voicemails; download_voicemail links it). "
    f"Recordings over {MAX_AUDIO_BYTES // 1024 // 1024} MB are refused.",
    "audio/mpeg",
    "voicemail",
)
TEMPLATES = (
    RECORDING,
    Template(
        "relatel://contacts/{id}",
        "getContact",
        "contact",
        "Contact",
        "A contact with every field, as get_contact answers with detail full.",
        "application/json",
        "contact",
    ),
    Template(
        "relatel://employees/{id}",
        "getEmployee",
        "employee",
        "Employee",
        "An employee with every field, as get_employee answers with detail full.",
        "application/json",
        "employee",
    ),
)


def resolve(uri: str, served: Mapping[str, Operation]) -> tuple[Template, Operation, int] | None:
    """The template a URI is of, the served tool it reads as, and its id; None for a URI of no
    template, or of one whose tool is not served."""
    for template in TEMPLATES:
        if (found := template.pattern.match(uri)) and (op := served.get(template.tool)):
            return template, op, int(found["id"])
    return None


def unknown(uri: str, served: Mapping[str, Operation]) -> str:
    """What to tell a caller who named no resource this server serves."""
    shapes = ", ".join([AUDIT_URI, *(t.uri_template for t in TEMPLATES if t.tool in served)])
    return f"Unknown resource {uri[:100]!r}: this server serves {shapes}."


class Resources:
    """Reads resources for a tenant, through the one client."""

    def __init__(self, client: RelatelClient, accounts: Accounts, store: Store, *, max_bytes: int) -> None:
        self.client = client
        self.accounts = accounts
        self.store = store
        self.max_bytes = max_bytes  # a JSON document's size, as for a tool result

    async def read(self, template: Template, op: Operation, id: int, tenant: Tenant) -> Contents:
        """The document at `template.uri(id)`, as `op` (the template's read) answers for `tenant`."""
        uri = template.uri(id)
        request = op.request(op.args.model_validate({"id": id}))
        audio = template.mime_type == "audio/mpeg"
        try:
            response = await self.client.send(
                request,
                tenant,
                idempotent=True,
                expect_json=not audio,
                max_bytes=MAX_AUDIO_BYTES if audio else None,
            )
            if audio:
                data = audio_bytes(op, response)
                return [types.BlobResourceContents(
                    uri=uri, blob=base64.b64encode(data).decode("ascii"), mime_type=template.mime_type
                )]  # fmt: skip
            result = shape(op, response, max_bytes=self.max_bytes, full=True)
        except ToolError as error:
            if error.code == "unauthorized":
                await self.accounts.refused(tenant)
            raise
        text = json.dumps(result.structured_content, ensure_ascii=False)
        return [types.TextResourceContents(uri=uri, text=text, mime_type=template.mime_type)]

    async def audit(self, tenant: Tenant) -> Contents:
        """This account's latest gated attempts (and those made before its account was known)."""
        account = await self.accounts.require(tenant)
        records = await self.store.recent(50, accounts=(account, token_key(tenant)))
        # Stored arguments are what agents wrote: cleaned like any other text a model reads.
        text = json.dumps({"audit": clean_data(records)}, ensure_ascii=False)
        return [types.TextResourceContents(uri=AUDIT_URI, text=text, mime_type="application/json")]
