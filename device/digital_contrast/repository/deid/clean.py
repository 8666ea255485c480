"""Clean Descriptors: free text kept only as words known to describe an acquisition.

A description can carry anything an operator typed (a name, a phone number, a date), and no
rule can tell a surname from a word it has not seen. So cleaning keeps a safe-list, not a
block-list: words of CT and radiology vocabulary, and short technical tokens (1.0, B30F, 5MM,
120KV); anything else, and any word of the dataset's own identifiers, is dropped. What the
series index needs from a description (phase, region, kernel, thickness) survives; a name
typed into it does not.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

VOCABULARY = frozenset(yaml.safe_load(
    Path(__file__).with_name("clean_vocabulary.yaml").read_text("utf-8"))["words"])
_TECHNICAL = re.compile(r"^[A-Z]{0,4}\d{1,4}([.,]\d{1,3})?[A-Z]{0,4}$")
_SPLIT = re.compile(r"[\s^/\\_:;,()\[\]{}|+=*\"'<>#@!?&-]+")
_DIGITS = re.compile(r"\d+")


def _keeps(token: str, identifiers: frozenset[str]) -> bool:
    if not token or token in identifiers:
        return False
    if token in VOCABULARY:
        return True
    if _TECHNICAL.match(token):
        # digit runs of 5 or more are ids or dates, not acquisition parameters
        return max(len(run) for run in _DIGITS.findall(token)) < 5
    return False


def _part_of_a_number(tokens: list[str], i: int) -> bool:
    """A bare number of more than 3 digits, or next to another bare number: a phone number or
    an id split up, not an acquisition parameter."""
    if not tokens[i].isdigit():
        return False
    neighbours = tokens[max(i - 1, 0):i] + tokens[i + 1:i + 2]
    return len(tokens[i]) > 3 or any(n.isdigit() for n in neighbours)


def identifier_words(values: list[str]) -> frozenset[str]:
    """The words of the dataset's own identifiers (names, ids, addresses) to drop anywhere."""
    return frozenset(word for value in values for word in _SPLIT.split(value.upper())
                     if len(word) >= 2)


def clean_text(text: str, identifiers: frozenset[str] = frozenset(), max_length: int = 64
               ) -> str:
    """The words of `text` that are known to describe an acquisition, upper-cased, in order."""
    tokens = [t for t in _SPLIT.split(text.upper()) if t]
    words = [t for i, t in enumerate(tokens)
             if _keeps(t, identifiers) and not _part_of_a_number(tokens, i)]
    return " ".join(words)[:max_length].strip()
