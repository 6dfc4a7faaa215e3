"""ED shorthand in chief complaints → plain words, before the tokenizer.

The table (abbreviation, expansion, whether its sense is ambiguous) ships in the model bundle as
``abbreviations.json``, built from the clinical-abbreviations fact table (Medical Abbreviation and
Acronym Meta-Inventory, CC BY 4.0; Wikipedia's List of medical abbreviations, CC BY-SA 3.0).
The same normaliser runs at build time and at run time, so the model reads what it learned on.

Rules, so that nothing is guessed silently:
- a short form is expanded only where its sense is clear in a triage complaint ("SOB", "N/V",
  "s/p fall"); the expansion replaces it in the text the model reads;
- a short form with several senses that the complaint cannot settle (PE: pulmonary embolism or
  physical exam; BS: blood sugar or bowel sounds; SA: suicide attempt, sexual assault, …) is left
  as written and reported as ``unresolved`` so the answer shows it;
- a few settle from context the way a triage nurse reads them: CP is chest pain in an adult,
  HI beside SI is homicidal ideation, beside a fall or trauma a head injury;
- two-letter forms written in capitals in the table match only capitals in the complaint ("OR",
  "IN", "AM" stay English words); single letters are never expanded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

# Senses a triage complaint cannot settle by itself (PROVENANCE caveats and the table's notes).
AMBIGUOUS = frozenset({
    "PE", "BS", "PTA", "SA", "MS", "CA", "RA", "CO", "PT", "ST", "HD", "PD", "UC", "GA", "FM", "NB", "CS",
    "HS", "CC", "LE", "SW", "EDP", "MCA", "MCC", "BAL", "PCP", "ROM", "ICD", "PPM", "SCD", "AMA", "POV",
    "CHI", "VERT", "EPI", "HI", "CP",
})
# Ambiguous forms that the complaint and age settle as a triage nurse would.
_SUICIDAL = re.compile(r"\b(SI|suicid\w*)\b", re.IGNORECASE)
_TRAUMA = re.compile(r"\b(fall|fell|hit|struck|trauma|mvc|mva|assault\w*|injur\w*|s/p)\b", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:/[A-Za-z0-9]+)*/?")


@dataclass(frozen=True)
class Normalised:
    text: str
    expanded: tuple[tuple[str, str], ...] = ()  # (as written, read as)
    unresolved: tuple[str, ...] = ()  # short forms left as written: several senses

    def basis(self) -> dict[str, object]:
        return {"expanded": [{"written": w, "read_as": r} for w, r in self.expanded],
                "unresolved": list(self.unresolved)}


@dataclass
class Abbreviations:
    """The normaliser: ``normalise(text, age)``."""

    expansions: dict[str, str]  # key: the form as matched (upper-cased unless case matters)
    case_sensitive: frozenset[str] = frozenset()
    ambiguous: frozenset[str] = AMBIGUOUS
    phrases: tuple[tuple[re.Pattern[str], str, str], ...] = field(default_factory=tuple)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]]) -> "Abbreviations":
        expansions: dict[str, str] = {}
        case_sensitive = set()
        phrases = []
        for row in rows:
            short = row["abbreviation"].strip()
            # "times two (two episodes / two days)" -> "times two": the gloss is for people.
            long = re.sub(r"\s*\([^)]*\)", "", row["expansion"]).strip()
            if len(short) < 2 or not long:
                continue
            if " " in short:  # multi-word shorthand ("abd pain", "s/p fall")
                pattern = re.compile(r"(?<![\w/])" + re.escape(short) + r"(?![\w/])", re.IGNORECASE)
                phrases.append((pattern, short, long))
                continue
            key = short.upper()
            if len(short) == 2 and short.isupper():
                case_sensitive.add(key)  # "OR", "IN": only as written in capitals
            expansions.setdefault(key, long)
        phrases.sort(key=lambda p: -len(p[1]))
        return cls(expansions, frozenset(case_sensitive), AMBIGUOUS, tuple(phrases))

    @classmethod
    def load(cls, path: str | Path) -> "Abbreviations":
        return cls.from_rows(json.loads(Path(path).read_text(encoding="utf-8"))["rows"])

    def _resolve(self, key: str, text: str, age: float | None) -> str | None:
        if key == "CP":
            return "chest pain" if age is None or age >= 18 else None
        if key == "HI":
            if _SUICIDAL.search(text):
                return "homicidal ideation"
            return "head injury" if _TRAUMA.search(text) else None
        return None

    def normalise(self, text: str, age: float | None = None) -> Normalised:
        expanded: list[tuple[str, str]] = []
        unresolved: list[str] = []
        for pattern, short, long in self.phrases:
            if pattern.search(text):
                text = pattern.sub(long, text)
                expanded.append((short, long))
        out: list[str] = []
        last = 0
        for match in _TOKEN.finditer(text):
            word = match.group(0).rstrip("/")
            key = word.upper()
            if key not in self.expansions or len(word) < 2:
                continue
            if key in self.case_sensitive and word != key:
                continue
            if key in self.ambiguous:
                sense = self._resolve(key, text, age)
                if sense is None:
                    unresolved.append(word)
                    continue
            else:
                sense = self.expansions[key]
            out.append(text[last:match.start()])
            out.append(sense)
            last = match.start() + len(word)
            expanded.append((word, sense))
        out.append(text[last:])
        return Normalised("".join(out), tuple(expanded), tuple(dict.fromkeys(unresolved)))


def table_rows(csv_path: Path) -> list[dict[str, str]]:
    """The bundle's copy of the table (build time): abbreviation and expansion only."""
    import csv

    with csv_path.open(encoding="utf-8") as handle:
        return [{"abbreviation": r["abbreviation"], "expansion": r["expansion"]} for r in csv.DictReader(handle)]
