"""Argument models: phone numbers as people type them, ISO times, bounds, and the wire form."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relatel_mcp.core import catalog
from relatel_mcp.core.models import MODELS


@pytest.mark.parametrize(
    "typed",
    ["+45 71 99 99 99", "0045 71999999", "4571999999", "71 99 99 99", "+45-71-99-99-99", "(+45) 7199 9999"],
)
def test_phone_numbers_are_normalised_to_the_api_form(typed):
    assert MODELS["ContactByNumber"].model_validate({"number": typed}).number == "4571999999"


def test_foreign_numbers_keep_their_country_code():
    assert MODELS["ContactByNumber"].model_validate({"number": "+44 20 7946 0958"}).number == "442079460958"


@pytest.mark.parametrize(
    "bad",
    [
        "abc",
        "123",
        "+45 1234",
        "",
        "45 71 99 99 99 99 99",
        "++4571999999",
        "+45 7199999x",
        "1-800-FLOWERS",
        4571999999,
    ],
)
def test_things_that_are_not_phone_numbers_are_refused(bad):
    with pytest.raises(ValidationError) as info:
        MODELS["ContactByNumber"].model_validate({"number": bad})
    assert info.value.errors()[0]["loc"] == ("number",)


def test_times_must_be_iso_8601():
    model = MODELS["ListCalls"]
    assert (
        model.model_validate({"started_at_lt_or_eq": "2026-11-20T10:00:00Z"}).started_at_lt_or_eq.year == 2026
    )
    for bad in ("yesterday", "20/11/2026", 1763632800):
        with pytest.raises(ValidationError):
            model.model_validate({"started_at_lt_or_eq": bad})


def test_limits_are_bounded_as_the_contract_says():
    model = MODELS["ListContacts"]
    for bad in (0, 101, -1, "10", 10.5, True):
        with pytest.raises(ValidationError):
            model.model_validate({"limit": bad})
    assert model.model_validate({"limit": 100}).limit == 100


def test_unknown_arguments_are_refused():
    with pytest.raises(ValidationError) as info:
        MODELS["ListTags"].model_validate({"nmae": "x"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_updates_with_nothing_to_change_are_refused():
    with pytest.raises(ValidationError, match="give at least one of"):
        MODELS["UpdateContact"].model_validate({"id": 1})


def test_null_clears_only_where_it_means_something():
    op = {o.name: o for o in catalog.load()}["update_current_employee"]
    args = op.args.model_validate({"dnd_timeout_at": None, "do_not_disturb": True})
    assert op.request(args).json == {"employee": {"dnd_timeout_at": None, "do_not_disturb": True}}
    tags = {o.name: o for o in catalog.load()}["list_tags"]
    assert tags.request(tags.args.model_validate({"name": None})).params == ()


def test_lists_documented_as_comma_separated_are_sent_that_way():
    op = {o.name: o for o in catalog.load()}["get_reception_statistics"]
    args = op.args.model_validate(
        {
            "id": 1,
            "answer_target": 20,
            "from_time": "2026-11-01T00:00:00Z",
            "to_time": "2026-11-02T00:00:00Z",
            "phase": ["open", "backup"],
        }
    )
    request = op.request(args)
    assert request.path == "/api/v2/receptions/1/statistics"
    assert dict(request.params)["phase"] == "open,backup"


def test_intervals_must_not_end_before_they_start():
    with pytest.raises(ValidationError, match="ends before it starts"):
        MODELS["SmileyStatistics"].model_validate(
            {"from_time": "2026-11-02T00:00:00Z", "to_time": "2026-11-01T00:00:00Z"}
        )
