"""ED shorthand normalisation: expanded where its sense is clear, left and reported where not."""

from __future__ import annotations

import pytest

from edge.clinical.abbreviations import Abbreviations

ROWS = [
    {"abbreviation": "SOB", "expansion": "shortness of breath"},
    {"abbreviation": "CP", "expansion": "chest pain"},
    {"abbreviation": "N/V/D", "expansion": "nausea, vomiting and diarrhea"},
    {"abbreviation": "s/p fall", "expansion": "status post fall"},
    {"abbreviation": "s/p", "expansion": "status post"},
    {"abbreviation": "LOC", "expansion": "loss of consciousness"},
    {"abbreviation": "PE", "expansion": "pulmonary embolism"},
    {"abbreviation": "HI", "expansion": "homicidal ideation"},
    {"abbreviation": "SI", "expansion": "suicidal ideation"},
    {"abbreviation": "OR", "expansion": "operating room"},
    {"abbreviation": "x2", "expansion": "times two (two episodes / two days)"},
    {"abbreviation": "L", "expansion": "left"},
]


@pytest.fixture(scope="module")
def table() -> Abbreviations:
    return Abbreviations.from_rows(ROWS)


@pytest.mark.parametrize("text, age, expected", [
    ("CP, SOB", 60, "chest pain, shortness of breath"),
    ("s/p fall, +LOC", 80, "status post fall, +loss of consciousness"),
    ("N/V/D x2", 30, "nausea, vomiting and diarrhea times two"),  # the gloss in parentheses is for people
    ("SI and HI", 25, "suicidal ideation and homicidal ideation"),  # HI beside SI: homicidal ideation
    ("HI after fall", 70, "head injury after fall"),  # HI beside a fall: head injury
    ("sob", 40, "shortness of breath"),  # three letters: any case
])
def test_clear_senses_are_expanded(table: Abbreviations, text: str, age: float, expected: str) -> None:
    assert table.normalise(text, age).text == expected


def test_ambiguous_forms_are_left_and_reported(table: Abbreviations) -> None:
    result = table.normalise("PE", 50)
    assert result.text == "PE" and result.unresolved == ("PE",)
    child = table.normalise("CP", 9)  # chest pain or cerebral palsy in a child: not guessed
    assert child.text == "CP" and child.unresolved == ("CP",)
    assert table.normalise("HI", 30).unresolved == ("HI",)


def test_english_words_and_single_letters_stay(table: Abbreviations) -> None:
    text = "pain in arm or leg, L hand"
    assert table.normalise(text, 40).text == text  # "or" is not "OR"; "L" is never expanded
    assert table.normalise("needs OR", 40).text == "needs operating room"


def test_basis_lists_what_was_read(table: Abbreviations) -> None:
    basis = table.normalise("CP, PE", 60).basis()
    assert basis == {"expanded": [{"written": "CP", "read_as": "chest pain"}], "unresolved": ["PE"]}
