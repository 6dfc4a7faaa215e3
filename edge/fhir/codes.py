"""The codes the FHIR mapping reads and writes: LOINC for the triage facts, UCUM for their units,
HL7 v2 table 0430 for arrival mode, and this device's own code systems for what has no standard
code (the triage scales, the model, the error codes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ARRIVAL_MODE_V2 = "http://terminology.hl7.org/CodeSystem/v2-0430"
ERROR_SYSTEM = "urn:edge-triage:error"
MODEL_SYSTEM = "urn:edge-triage:model-sha256"
REQUEST_ID_SYSTEM = "urn:edge-triage:request-id"
SCALE_SYSTEMS = {"ktas": "urn:edge-triage:scale:ktas", "esi": "urn:edge-triage:scale:esi"}
SCALE_NAMES = {"ktas": "KTAS", "esi": "ESI"}

CHIEF_COMPLAINT = "8661-1"  # Chief complaint - Reported
BP_PANEL = "85354-9"  # Blood pressure panel: systolic and diastolic as components
ARRIVAL_MODE = "11459-5"  # Transport method (DEEDS "ED arrival mode")


def _same(value: float) -> float:
    return value


def _fahrenheit(value: float) -> float:
    return (value - 32.0) * 5.0 / 9.0


@dataclass(frozen=True)
class Vital:
    """One LOINC-coded vital sign: the case field it fills and its accepted UCUM units, each with
    the conversion to the case's unit. ``unitless`` accepts a value without a unit (scores)."""

    field: str
    units: dict[str, Callable[[float], float]]
    unitless: bool = False


PER_MIN = {"/min": _same}
VITALS: dict[str, Vital] = {
    "8480-6": Vital("sbp", {"mm[Hg]": _same}),
    "8462-4": Vital("dbp", {"mm[Hg]": _same}),
    "8867-4": Vital("hr", {**PER_MIN, "{beats}/min": _same}),
    "9279-1": Vital("rr", {**PER_MIN, "{breaths}/min": _same}),
    "8310-5": Vital("temp_c", {"Cel": _same, "[degF]": _fahrenheit}),
    "59408-5": Vital("spo2", {"%": _same}),  # SpO2 by pulse oximetry
    "2708-6": Vital("spo2", {"%": _same}),  # oxygen saturation in arterial blood
    "72514-3": Vital("pain", {"{score}": _same, "1": _same}, unitless=True),
}

# HL7 v2 table 0430 (mode of arrival) -> the case's arrival vocabulary.
ARRIVAL_CODES = {"A": "ambulance", "H": "ambulance", "C": "private", "F": "walk", "P": "other", "O": "other"}
ARRIVAL_WORDS = (("ambulance", "ambulance"), ("helicopter", "ambulance"), ("ems", "ambulance"),
                 ("walk", "walk"), ("foot", "walk"), ("car", "private"), ("private", "private"))

GENDERS = {"female": "F", "male": "M"}  # "other" and "unknown" are not recorded for the model

# Observation statuses that mean "this value does not stand".
WITHDRAWN = ("entered-in-error", "cancelled")

# The JSON API's machine codes -> FHIR issue types (http://hl7.org/fhir/issue-type).
ISSUE_TYPES = {
    "missing_field": "required", "missing_code": "required", "not_an_object": "structure",
    "invalid_json": "structure", "not_a_bundle": "structure", "invalid_resource": "structure",
    "unsupported_media_type": "not-supported", "method_not_allowed": "not-supported",
    "body_too_large": "too-long", "too_long": "too-long", "not_found": "not-found",
    "unauthorized": "security", "forbidden": "security", "token_required": "security",
    "overloaded": "throttled", "degraded_mode": "transient", "internal_error": "exception",
    "unknown_field": "structure", "conflicting_values": "business-rule", "inconsistent": "business-rule",
}
VALUE_ISSUE = "value"  # out_of_range, wrong_unit, wrong_type, invalid_choice… : a bad value
