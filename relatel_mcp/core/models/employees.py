"""Arguments of the employee and employee-group tools."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .common import NULLABLE, Args, Email, Id, Name, Phone, SmsText, Timestamp


class CreateEmployee(Args):
    name: Name
    email: Email | None = None
    number: Phone | None = None
    admin: bool | None = None


class EmployeeSettings(Args):
    """Settings an employee may change on themself; "clear" clears the two NULLABLE ones (sent
    upstream as null, as the contract has it)."""

    name: Name | None = None
    do_not_disturb: bool | None = None
    dnd_timeout_at: Annotated[Timestamp | None, NULLABLE] = Field(
        None, description="when do-not-disturb ends; clear: never"
    )
    cloak_reception_id: Annotated[Id | None, NULLABLE] = Field(
        None, description="calls show this reception's number; clear: the employee's own"
    )

    at_least_one = ("name", "do_not_disturb", "dnd_timeout_at", "cloak_reception_id")


class UpdateEmployee(EmployeeSettings):
    id: Id


class SendEmployeeSms(Args):
    id: Id
    body: SmsText


class GroupMembership(Args):
    employee_group_id: Id


class CreateGroup(Args):
    name: Name
    employee_ids: list[Id] | None = None


class UpdateGroup(Args):
    id: Id
    name: Name | None = None
    employee_ids: list[Id] | None = Field(None, description="the new members, replacing all")

    at_least_one = ("name", "employee_ids")


class SendGroupSms(Args):
    employee_group_id: Id
    body: SmsText
