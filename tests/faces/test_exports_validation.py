"""Export API validation: a request is checked whole and one 400 names every invalid field.

The seed's envelope is kept: ``{"success": false, "error": {"<field>": "<message>", ...}}``, one
key per field (dotted: ``filters.limit``, ``options.delimiter``), exactly the seed's object when
only one field is wrong. Problems of the request's shape and problems the table reveals
(unknown columns, values of the wrong type) come in the same answer. Nothing is created.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from entrepot.client import Client, InvalidRequest
from entrepot.core.exports.spec import FORMAT_MESSAGE
from support.exports_api import call, create_bucket, datasource_id, make_table
from support.server import RunningServer


@pytest.fixture(scope="module")
def ds(server: RunningServer) -> str:
    create_bucket(server, "valid")
    table = make_table(server, "in.c-valid", "people", ["id", "name"], [("1", "Ann"), ("2", "Bob")])
    return datasource_id(server, table)


def _job_count(server: RunningServer) -> int:
    r = call(server, "GET", "/exports/", params={"page_size": 100})
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["pagination"]["total_count"])


def _fields(r: requests.Response) -> dict[str, str]:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], dict), body
    assert all(isinstance(v, str) and v for v in body["error"].values()), body
    return body["error"]


def _create(server: RunningServer, body: dict[str, Any]) -> requests.Response:
    return call(server, "POST", "/exports/", json=body)


def test_create_with_three_invalid_fields_names_all_three(server, ds) -> None:  # type: ignore[no-untyped-def]
    before = _job_count(server)
    body = {"datasource": ds, "format": "xml", "filters": {"limit": 0}, "options": {"delimiter": "ab"}}
    errors = _fields(_create(server, body))
    assert set(errors) == {"format", "filters.limit", "options.delimiter"}, errors
    assert errors["format"] == FORMAT_MESSAGE
    assert _job_count(server) == before


def test_create_names_shape_and_table_problems_together(server, ds) -> None:  # type: ignore[no-untyped-def]
    body = {
        "datasource": ds,
        "format": "csv",
        "colour": "blue",
        "filters": {
            "columns": ["id", "ghost"],
            "limit": "many",
            "where_conditions": [
                {"column": "id", "operator": "~", "value": 1},
                {"column": "nope", "operator": "=", "value": 1},
                {"column": "name", "operator": "in", "value": "Ann"},
            ],
            "order_by": "spooky DESC",
            "date_range": {"start": [2024]},
        },
        "options": {"json_format": "lines", "encoding": "klingon"},
    }
    errors = _fields(_create(server, body))
    assert set(errors) == {
        "colour",
        "filters.columns",
        "filters.limit",
        "filters.where_conditions[0]",
        "filters.where_conditions[1].column",  # keeps its index after a refused condition
        "filters.where_conditions[2]",
        "filters.order_by",
        "filters.date_range.start",
        "options.json_format",
        "options.encoding",
    }, errors
    assert "'ghost' is not a column" in errors["filters.columns"], errors
    assert "'nope' is not a column" in errors["filters.where_conditions[1].column"], errors


def test_create_without_datasource_names_it_with_the_other_fields(server) -> None:  # type: ignore[no-untyped-def]
    errors = _fields(_create(server, {"format": "pdf", "filters": {"limit": -5}}))
    assert set(errors) == {"datasource", "format", "filters.limit"}, errors


def test_create_with_one_invalid_field_keeps_the_seed_format(server, ds) -> None:  # type: ignore[no-untyped-def]
    r = _create(server, {"datasource": ds, "format": "xml"})
    assert r.status_code == 400
    assert r.json() == {"success": False, "error": {"format": FORMAT_MESSAGE}}


def test_create_with_invalid_fields_and_an_unknown_datasource_is_400(server) -> None:  # type: ignore[no-untyped-def]
    body = {"datasource": "123e4567-e89b-12d3-a456-426614174000", "format": "xml", "filters": {"limit": 0}}
    assert set(_fields(_create(server, body))) == {"format", "filters.limit"}


def test_template_create_and_update_name_every_invalid_field(server) -> None:  # type: ignore[no-untyped-def]
    bad = {
        "name": "",
        "template_type": "global",
        "is_active": "yes",
        "configuration": {"format": "csv", "filters": {"limit": 0}, "options": {"sheet_name": "x"}},
    }
    errors = _fields(call(server, "POST", "/export-templates/", json=bad))
    wrong = {"name", "template_type", "is_active", "filters.limit", "options.sheet_name"}
    assert set(errors) == wrong, errors
    good = {"name": "valid-tpl", "configuration": {"format": "csv", "filters": {"limit": 5}}}
    r = call(server, "POST", "/export-templates/", json=good)
    assert r.status_code == 201, r.text
    template = r.json()["data"]
    update = {"description": 7, "is_active": None, "configuration": {"format": "yaml", "extra": 1}}
    errors = _fields(call(server, "PUT", f"/export-templates/{template['id']}/", json=update))
    assert set(errors) == {"description", "is_active", "format", "configuration.extra"}, errors
    r = call(server, "GET", f"/export-templates/{template['id']}/")
    assert r.json()["data"] == template  # unchanged


def test_list_query_parameters_are_checked_together(server) -> None:  # type: ignore[no-untyped-def]
    params = {"page": "0", "page_size": "lots", "status": "done", "format": "xml"}
    errors = _fields(call(server, "GET", "/exports/", params=params))
    assert set(errors) == {"page", "page_size", "status", "format"}, errors
    errors = _fields(call(server, "GET", "/export-templates/", params={"type": "mine", "format": "xml"}))
    assert set(errors) == {"type", "format"}, errors


def test_sdk_error_carries_every_field(server, ds) -> None:  # type: ignore[no-untyped-def]
    with Client(server.url, server.token) as client, pytest.raises(InvalidRequest) as info:
        client.exports.create(ds, "xml", filters={"limit": 0}, options={"delimiter": "ab"})
    assert set(info.value.fields or {}) == {"format", "filters.limit", "options.delimiter"}
    assert "filters.limit: " in str(info.value)
