"""Building blocks of the argument models: a strict base class and the value types agents type.

Schemas are what a model reads on every turn, so `Args.input_schema()` keeps them small: no
generated titles, no `default: null`, and an optional field is just its type (sending `null`
for it means "not given"). Every property has one `type` (or, for a NULLABLE field, `anyOf`
branches of one `type` each): several clients and model providers take nothing else. A NULLABLE
field is one whose `null` upstream means something (e.g. "clear the do-not-disturb timeout"); its
schema takes its value or the word "clear" (`CLEAR`), which is sent upstream as `null`. (A
client's `null` there still clears, as before "clear" existed; the schema does not offer it.)

Constraints say only what the contract (contract/openapi.yaml) says, or what keeps a human's yes
honest (SHOWN text, numbers dialled or shown): where the contract lists no values, the known ones
are described as examples and others pass through, for Relatel to accept or refuse. The list of
what is checked beyond the contract, and why, is in docs/tools.md ("Constraints beyond the
contract"). What a model needs to know is said (formats with an example, units, closed sets as
enums); what only mirrors a limit or the validation itself (`additionalProperties: false`: an
unknown argument is refused anyway, naming the one meant) is checked but not shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import cache, partial
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic.fields import FieldInfo

from .. import phones
from ..sanitize import clean_text, hidden


class _Nullable:
    """Marker: `null` is a meaningful value for this field and is sent upstream; the schema offers
    "clear" for it (see the module's docstring)."""

    def __repr__(self) -> str:
        return "NULLABLE"


NULLABLE = _Nullable()
CLEAR = "clear"  # a NULLABLE field's value that is sent upstream as null
CLEAR_SCHEMA = {"type": "string", "enum": [CLEAR]}


class _Shown:
    """Marker: text a human approves exactly as it is sent (an SMS, a product name). Invisible and
    formatting characters are taken out before it is checked, sent or shown, since they could hide
    what is sent; `Args.removed` says how many, so that the question can say so."""

    def __repr__(self) -> str:
        return "SHOWN"


SHOWN = _Shown()


class Args(BaseModel):
    """Base of every tool's arguments: strict types, no unknown fields, a compact JSON schema."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Fields marked NULLABLE and SHOWN, filled in per subclass.
    nullable_fields: ClassVar[frozenset[str]] = frozenset()
    shown_fields: ClassVar[frozenset[str]] = frozenset()
    # For updates: at least one of these must be given, so no empty body is ever sent.
    at_least_one: ClassVar[tuple[str, ...]] = ()

    _removed: dict[str, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _cleared(cls, data: Any) -> Any:
        """A NULLABLE field's "clear" is its null."""
        if cls.nullable_fields and isinstance(data, dict):
            cleared = {name for name in cls.nullable_fields & data.keys() if data[name] == CLEAR}
            if cleared:
                data = {**data, **dict.fromkeys(cleared)}
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _count_removed(cls, data: Any, handler: ModelWrapValidatorHandler[Args]) -> Args:
        model = handler(data)
        if cls.shown_fields and isinstance(data, dict):
            given = {name: data[name] for name in cls.shown_fields if isinstance(data.get(name), str)}
            model._removed = {name: sum(map(hidden, text)) for name, text in given.items()}
        return model

    def removed(self, name: str) -> int:
        """How many invisible or formatting characters were taken out of a SHOWN field."""
        return self._removed.get(name, 0)

    @model_validator(mode="after")
    def _something_given(self) -> Args:
        # `null` is "not given" unless it means something for that field: it never counts.
        given = {
            name
            for name in self.model_fields_set & set(self.at_least_one)
            if getattr(self, name) is not None or name in self.nullable_fields
        }
        if self.at_least_one and not given:
            raise ValueError(f"give at least one of: {', '.join(self.at_least_one)}")
        return self

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.nullable_fields = frozenset(
            name for name, field in cls.model_fields.items() if NULLABLE in field.metadata
        )
        cls.shown_fields = frozenset(name for name, field in cls.model_fields.items() if _shown(field))

    @classmethod
    def input_schema(cls) -> dict[str, Any]:
        return _compact_schema(cls)

    def upstream_fields(self) -> dict[str, Any]:
        """The given fields as JSON values; `null` survives only where it means something."""
        data = self.model_dump(mode="json", exclude_unset=True)
        return {k: v for k, v in data.items() if v is not None or k in self.nullable_fields}


class NoArgs(Args):
    """For operations that take no arguments."""


@cache
def _compact_schema(model: type[Args]) -> dict[str, Any]:
    schema = model.model_json_schema()
    properties = {
        name: _compact_property(prop, nullable=name in model.nullable_fields)
        for name, prop in schema.get("properties", {}).items()
    }
    compact: dict[str, Any] = {"type": "object", "properties": properties}
    if schema.get("required"):
        compact["required"] = schema["required"]
    return compact


def _compact_property(prop: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    prop = {k: v for k, v in prop.items() if k not in ("title", "default")}
    variants = prop.pop("anyOf", None)
    if variants is not None:
        non_null = [v for v in variants if v != {"type": "null"}]
        if len(non_null) != 1:
            raise TypeError(f"cannot compact a union schema: {variants}")
        inner = {k: v for k, v in non_null[0].items() if k != "title"}
        # A NULLABLE field: its value or "clear", each branch of one type (never a type array).
        prop = {"anyOf": [inner, CLEAR_SCHEMA], **prop} if nullable else {**inner, **prop}
    if "items" in prop:
        prop["items"] = {k: v for k, v in prop["items"].items() if k != "title"}
    return prop


# --------------------------------------------------------------------------- value types
#
# The contract's own types, and only the constraints it states, unless a comment here says why
# (docs/tools.md lists them all). A value the contract does not rule out goes to Relatel, whose
# refusal comes back as an error the agent can act on.


def _iso(parse: Callable[[str], Any], example: str) -> Callable[[object], Any]:
    def validate(value: object) -> Any:
        if isinstance(value, str):
            try:
                return parse(value)
            except ValueError:
                pass
        raise ValueError(f"{value!r} is not ISO 8601, e.g. {example}")

    return validate


# What a model reads about each kind of value: the format, with one example. A field's own
# `description` (Field(description=...)) replaces it where the name needs more.
PHONE = "e.g. +45 28 11 44 77"  # the example says it: international, the country code first
ENDPOINT = "Reception#1 or Employee#7"

# Any plausible number, in the contract's form (country code and digits): what is stored and
# searched for (contacts, filters, account data). Beyond the contract: a text that has no such
# form (no digits, no country's length) is refused rather than sent as something else.
Phone = Annotated[
    str, BeforeValidator(phones.normalize), WithJsonSchema({"type": "string", "description": PHONE})
]
# A number in an allocated range: what is dialled, checked against the operator's destinations
# and shown to the human who approves the call. (Numbers an SMS reaches come from the account.)
Destination = Annotated[
    str,
    BeforeValidator(partial(phones.normalize, strict=True)),
    WithJsonSchema({"type": "string", "description": PHONE}),
]
# The contract shows endpoints by example only (Employee#1, Reception#2, ChatReception#3).
Endpoint = Annotated[str, WithJsonSchema({"type": "string", "description": ENDPOINT})]
# The contract's date-time and ISO 8601 date parameters (its `any` time filters say "timestamp").
Timestamp = Annotated[
    datetime,
    BeforeValidator(_iso(datetime.fromisoformat, "2026-11-27T09:30:00+01:00")),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Day = Annotated[
    date,
    BeforeValidator(_iso(date.fromisoformat, "2026-11-27")),
    WithJsonSchema({"type": "string", "format": "date"}),
]
# An unknown id, zero or negative included, is the API's 404 to give.
Id = Annotated[int, WithJsonSchema({"type": "integer"})]
# A page's size: the contract says "maximum: 100" for contacts, calls and voicemails (Limit100),
# and nothing for the others (Limit). The bound is checked but not shown: it would cost bytes in
# every schema a model reads every turn, and a value beyond it is refused with an error saying it.
Limit = Annotated[int, WithJsonSchema({"type": "integer"})]
Limit100 = Annotated[int, Field(le=100), WithJsonSchema({"type": "integer"})]
Text = Annotated[str, WithJsonSchema({"type": "string"})]


def visible(value: object) -> object:
    if not isinstance(value, str):
        return value
    cleaned = clean_text(value)
    if value and not cleaned:
        raise ValueError("holds only invisible or formatting characters, which are never sent")
    return cleaned


def _shown(field: FieldInfo) -> bool:
    """Is this field SHOWN text (also as the `str` of an optional `X | None`)?"""
    members = get_args(field.annotation) if get_origin(field.annotation) in (Union, UnionType) else ()
    return SHOWN in field.metadata or any(SHOWN in getattr(m, "__metadata__", ()) for m in members)


# Text that is sent and approved as it is: what the human is shown is what is sent, to the letter.
# Beyond the contract, for the human who reads it whole in the question: 1 to 1,000 characters
# (an empty SMS shows nothing and still costs a segment).
SmsText = Annotated[
    str,
    Field(min_length=1, max_length=1000),
    WithJsonSchema({"type": "string"}),
    SHOWN,
    BeforeValidator(visible),
]
Uuid = Annotated[str, WithJsonSchema({"type": "string"})]
Email = Annotated[str, WithJsonSchema({"type": "string"})]
Name = Annotated[str, WithJsonSchema({"type": "string"})]


class ById(Args):
    id: Id
