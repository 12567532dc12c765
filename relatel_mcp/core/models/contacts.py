"""Arguments of the contact and comment tools."""

from __future__ import annotations

from pydantic import Field

from .common import Args, Email, Id, Limit100, Name, Phone, Text


class ListContacts(Args):
    number: Phone | None = None
    limit: Limit100 | None = None
    id_gt_or_eq: Id | None = Field(None, description="from this id on (next_page gives it)")


class CreateContact(Args):
    name: Name | None = None
    number: Phone | None = None
    email: Email | None = None

    # The contract requires none of them; a contact with none would be no one.
    at_least_one = ("name", "number", "email")


class UpdateContact(Args):
    id: Id
    name: Name | None = None
    number: Phone | None = None
    email: Email | None = None

    at_least_one = ("name", "number", "email")


class ContactByNumber(Args):
    number: Phone


class ContactComments(Args):
    contact_id: Id


class CreateComment(Args):
    contact_id: Id
    body: Text


class DeleteComment(Args):
    contact_id: Id
    id: Id
