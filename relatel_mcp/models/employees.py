"""Arguments of the employee and employee-group tools."""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from .common import NULLABLE, Args, Email, Id, Name, Phone, Text, Timestamp, require_one_of


class CreateEmployee(Args):
    name: Name
    email: Email | None = None
    number: Phone | None = None
    admin: bool | None = None


class EmployeeSettings(Args):
    """Settings an employee may change on themself; null clears the two nullable ones."""

    name: Name | None = None
    do_not_disturb: bool | None = None
    dnd_timeout_at: Annotated[Timestamp | None, NULLABLE] = None
    cloak_reception_id: Annotated[Id | None, NULLABLE] = None

    @model_validator(mode="after")
    def _has_change(self) -> EmployeeSettings:
        require_one_of(self, "name", "do_not_disturb", "dnd_timeout_at", "cloak_reception_id")
        return self


class UpdateEmployee(EmployeeSettings):
    id: Id


class SendEmployeeSms(Args):
    id: Id
    body: Text


class GroupMembership(Args):
    employee_group_id: Id


class CreateGroup(Args):
    name: Name
    employee_ids: list[Id] | None = None


class UpdateGroup(Args):
    id: Id
    name: Name | None = None
    employee_ids: list[Id] | None = None

    @model_validator(mode="after")
    def _has_change(self) -> UpdateGroup:
        require_one_of(self, "name", "employee_ids")
        return self


class SendGroupSms(Args):
    employee_group_id: Id
    body: Text
