"""The input contract: every field's type, range and the machine code a client receives."""

from __future__ import annotations

import pytest

from edge.clinical.case import CASE_FIELDS, MAX_COMPLAINT_CHARS, NUMERIC_BOUNDS, parse_case
from edge.errors import CaseError


def error_of(payload: object) -> CaseError:
    with pytest.raises(CaseError) as info:
        parse_case(payload)
    return info.value


def test_full_case_round_trips() -> None:
    payload = {"complaint": "  chest   pain ", "age": 61, "sex": "M", "arrival": "ambulance", "injury": False,
               "mental": "A", "pain": 7, "sbp": 150, "dbp": 90, "hr": 104, "rr": 22, "temp_c": 37.1, "spo2": 95}
    case = parse_case(payload)
    assert case.complaint == "chest pain"  # whitespace normalised
    assert case.to_dict() == {**payload, "complaint": "chest pain"}


def test_null_optional_fields_mean_not_recorded() -> None:
    case = parse_case({"complaint": "cough", "spo2": None, "sex": None})
    assert case.spo2 is None and case.sex is None


@pytest.mark.parametrize("payload, code, field", [
    ([], "not_an_object", None),
    ({}, "missing_field", "complaint"),
    ({"complaint": 3}, "wrong_type", "complaint"),
    ({"complaint": "   "}, "empty_complaint", "complaint"),
    ({"complaint": "x" * (MAX_COMPLAINT_CHARS + 1)}, "too_long", "complaint"),
    ({"complaint": "cough", "weight": 70}, "unknown_field", None),
    ({"complaint": "cough", "hr": "90"}, "wrong_type", "hr"),
    ({"complaint": "cough", "hr": True}, "wrong_type", "hr"),
    ({"complaint": "cough", "temp_c": 98.6}, "out_of_range", "temp_c"),
    ({"complaint": "cough", "spo2": 101}, "out_of_range", "spo2"),
    ({"complaint": "cough", "age": -1}, "out_of_range", "age"),
    ({"complaint": "cough", "pain": 11}, "out_of_range", "pain"),
    ({"complaint": "cough", "sex": "X"}, "invalid_choice", "sex"),
    ({"complaint": "cough", "arrival": "helicopter"}, "invalid_choice", "arrival"),
    ({"complaint": "cough", "mental": "alert"}, "invalid_choice", "mental"),
    ({"complaint": "cough", "injury": "yes"}, "wrong_type", "injury"),
    ({"complaint": "cough", "sbp": 80, "dbp": 120}, "inconsistent", "dbp"),
])
def test_invalid_input_has_machine_code_and_field(payload: object, code: str, field: str | None) -> None:
    error = error_of(payload)
    assert error.code == code
    assert error.field == field
    assert error.http_status == 400
    assert error.to_dict()["error"]["code"] == code


def test_not_finite_numbers_are_rejected() -> None:
    assert error_of({"complaint": "cough", "hr": float("nan")}).code == "not_finite"
    assert error_of({"complaint": "cough", "hr": float("inf")}).code == "not_finite"


def test_abnormal_but_possible_values_are_data() -> None:
    case = parse_case({"complaint": "collapse", "sbp": 60, "dbp": 30, "hr": 180, "rr": 40, "spo2": 70, "temp_c": 41})
    assert case.spo2 == 70


@pytest.mark.parametrize("name", list(NUMERIC_BOUNDS))
def test_error_messages_never_echo_the_value(name: str) -> None:
    low, high, _ = NUMERIC_BOUNDS[name]
    canary = high + 12345.678
    message = error_of({"complaint": "cough", name: canary}).message
    assert "12345" not in message and name in message


def test_every_contract_field_is_accepted() -> None:
    assert set(CASE_FIELDS) == {"complaint", "age", "sex", "arrival", "injury", "mental", "pain", "sbp", "dbp",
                                "hr", "rr", "temp_c", "spo2", "scale"}


@pytest.mark.parametrize("value, code", [
    (10**309, "out_of_range"), (-10**309, "out_of_range"), (float("1e999"), "not_finite"),
    (float("-1e999"), "not_finite"), (10**4000, "out_of_range"),
])
def test_huge_numbers_are_errors_not_crashes(value: object, code: str) -> None:
    for name in NUMERIC_BOUNDS:
        error = error_of({"complaint": "cough", name: value})
        assert error.code == code and error.field == name


def test_negative_zero_is_zero() -> None:
    case = parse_case({"complaint": "cough", "pain": -0.0, "spo2": -0})
    assert case.pain == 0.0 and str(case.pain) == "0.0" and case.spo2 == 0.0


def test_unknown_field_names_are_never_echoed() -> None:
    error = error_of({"complaint": "cough", "MRN-4711-Smith": 1})
    assert error.field is None and "4711" not in error.message and "Smith" not in str(error.to_dict())
