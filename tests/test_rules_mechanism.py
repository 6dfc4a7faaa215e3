"""Mechanism-of-injury words must not fire on pain descriptors ("crushing", "stabbing" pain)."""

import pytest

from edge.clinical.case import parse_case
from edge.clinical.rules import RULES_BY_ID


@pytest.mark.parametrize("complaint, fires", [
    ("crushing chest pain", False),
    ("stabbing pain in the chest", False),
    ("crushed by a forklift", True),
    ("crush injury of the hand", True),
    ("stab wound to the abdomen", True),
    ("stabbed in the back", True),
])
def test_major_trauma_words(complaint: str, fires: bool) -> None:
    assert RULES_BY_ID["C-MAJOR-TRAUMA"].applies(parse_case({"complaint": complaint})) is fires
