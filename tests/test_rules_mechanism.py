"""Mechanism-of-injury words must not fire on pain descriptors ("crushing", "stabbing" pain)."""

import pytest

from edge.clinical.case import parse_case
from edge.clinical.rules import RULES_BY_ID, evaluate


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


@pytest.mark.parametrize("complaint", ["Motor vehicle accident, type of injury unspecified", "MVC, restrained driver",
                                       "pedestrian struck by car"])
def test_a_crash_alone_is_a_ktas_floor_not_an_esi_one(complaint: str) -> None:
    """KTAS's "high-risk mechanism" modifier; ESI asks for loss of consciousness with the crash (ESI-2-049)."""
    case = parse_case({"complaint": complaint})
    assert "C-MAJOR-TRAUMA" in {f.id for f in evaluate(case, "ktas")}
    assert not {f.id for f in evaluate(case, "esi") if f.level <= 2}
