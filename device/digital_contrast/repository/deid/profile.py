"""The de-identification rules: PS3.15 Table E.1-1's Basic Application Level Confidentiality
Profile with the options a research repository needs.

The basic profile's action per attribute comes from the dicom-anonymizer package's transcription
of the standard (release 2026c), a maintained library that follows the standard's editions. The
option columns (options.yaml) were transcribed from the only machine-readable copy of them here,
the extraction the proof's checker reads (`repository.proof.table`): the basic profile is
checked against an independent transcription, the options against their own source.

A compound action of the table ("X/Z", "Z/D", "X/Z/D") is resolved to the one that keeps every
IOD conformant without keeping data: emptying (Z), which Types 2 and 3 allow; "X/D" removes;
"X/Z/U*" (references to instances) keeps the sequence and walks it, so the UIDs inside are
replaced by their own rule.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import yaml
from pydicom.datadict import dictionary_VR
from pydicom.tag import BaseTag, Tag

BASIC_TABLE_EDITION = "2026c"  # the dicom-anonymizer database transcribing that edition


class Action(StrEnum):
    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    UID = "U"
    KEEP = "K"
    CLEAN = "C"  # dates shifted by the patient's offset; text cleaned of identifying words
    WALK = "W"  # a sequence kept so that its items are de-identified by their own rules


class Option(StrEnum):
    """The PS3.15 options this repository applies, with their CID 7050 code values."""

    MODIFIED_DATES = "113107"  # Retain Longitudinal Temporal Information Modified Dates
    PATIENT_CHARACTERISTICS = "113108"  # Retain Patient Characteristics
    DEVICE_IDENTITY = "113109"  # Retain Device Identity
    CLEAN_DESCRIPTORS = "113105"  # Clean Descriptors


BASIC_PROFILE_CODE = "113100"  # Basic Application Confidentiality Profile
SAFE_PRIVATE_CODE = "113111"  # Retain Safe Private Option: only with a non-empty safe-list
CODE_MEANINGS = {
    BASIC_PROFILE_CODE: "Basic Application Confidentiality Profile",
    Option.MODIFIED_DATES: "Retain Longitudinal Temporal Information Modified Dates Option",
    Option.PATIENT_CHARACTERISTICS: "Retain Patient Characteristics Option",
    Option.DEVICE_IDENTITY: "Retain Device Identity Option",
    Option.CLEAN_DESCRIPTORS: "Clean Descriptors Option",
    SAFE_PRIVATE_CODE: "Retain Safe Private Option",
}

# dicom-anonymizer's categories, resolved as the module docstring says.
_CATEGORIES = {
    "D_TAGS": Action.DUMMY, "Z_TAGS": Action.EMPTY, "X_TAGS": Action.REMOVE,
    "U_TAGS": Action.UID, "Z_D_TAGS": Action.EMPTY, "X_Z_TAGS": Action.EMPTY,
    "X_D_TAGS": Action.REMOVE, "X_Z_D_TAGS": Action.EMPTY, "X_Z_U_STAR_TAGS": Action.WALK,
}

OPTIONS_FILE = Path(__file__).with_name("options.yaml")
_OPTION_KEYS = {Option.MODIFIED_DATES: "modified_dates",
                Option.PATIENT_CHARACTERISTICS: "patient_characteristics",
                Option.DEVICE_IDENTITY: "device_identity",
                Option.CLEAN_DESCRIPTORS: "clean_descriptors"}


@dataclass(frozen=True)
class MaskedRule:
    """A rule of a repeating group (50xx curves, 60xx overlays): tag & mask == value."""

    value: int
    mask: int
    action: Action


@dataclass(frozen=True)
class Profile:
    """Action per attribute: exact tags, then masked repeating groups; anything else is kept."""

    rules: dict[BaseTag, Action]
    masked: tuple[MaskedRule, ...]
    options: frozenset[Option]

    def action(self, tag: BaseTag) -> Action | None:
        found = self.rules.get(tag)
        if found is not None:
            return found
        for rule in self.masked:
            if int(tag) & rule.mask == rule.value:
                return rule.action
        return None


def _tag_pattern(text: str) -> tuple[int, int]:
    """(value, mask) of an 8-digit tag where "X" digits match anything (50XX, 60XX)."""
    value = int(text.replace("X", "0"), 16)
    mask = int("".join("0" if c == "X" else "F" for c in text), 16)
    return value, mask


@cache
def option_columns() -> dict[Option, dict[tuple[int, int], Action]]:
    """Per option, (tag value, mask) -> K or C, from options.yaml."""
    raw = yaml.safe_load(OPTIONS_FILE.read_text("utf-8"))
    return {option: {_tag_pattern(tag): Action(value)
                     for tag, value in (raw.get(key) or {}).items()}
            for option, key in _OPTION_KEYS.items()}


def _option_action(tag: int, option: Option) -> Action | None:
    for (value, mask), action in option_columns()[option].items():
        if tag & mask == value:
            return action
    return None


def _with_options(tag: int, basic: Action, options: frozenset[Option], vr: str) -> Action:
    """The date option first (a kept date would undo the shift of the others), then a K of
    any other option, then a C."""
    if Option.MODIFIED_DATES in options and \
            _option_action(tag, Option.MODIFIED_DATES) is not None:
        return Action.CLEAN if vr in ("DA", "DT", "TM") else basic
    chosen = [a for o in options - {Option.MODIFIED_DATES}
              if (a := _option_action(tag, o)) is not None]
    if Action.KEEP in chosen:
        return Action.KEEP
    return Action.CLEAN if chosen else basic


@cache
def basic_table() -> tuple[dict[BaseTag, Action], tuple[MaskedRule, ...]]:
    """The basic profile's action per tag, from dicom-anonymizer's transcription."""
    module = importlib.import_module("dicomanonymizer.dicom_anonymization_databases."
                                     f"dicomfields_{BASIC_TABLE_EDITION}")
    exact: dict[BaseTag, Action] = {}
    masked: list[MaskedRule] = []
    for category, action in _CATEGORIES.items():
        for entry in getattr(module, category):
            if len(entry) == 2:
                exact[Tag(entry[0], entry[1])] = action
            else:  # (group, element, group mask, element mask)
                group, element, group_mask, element_mask = entry
                masked.append(MaskedRule((group << 16) | element,
                                         (group_mask << 16) | element_mask, action))
    return exact, tuple(masked)


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:  # not in pydicom's dictionary: no VR-specific handling
        return ""


@cache
def research_profile(options: frozenset[Option] = frozenset(Option)) -> Profile:
    """The basic profile with `options` (default: all four of this repository)."""
    exact, masked = basic_table()
    rules = {tag: _with_options(int(tag), basic, options, _vr(tag))
             for tag, basic in exact.items()}
    # an option may name an attribute the basic table has not (yet): its rule is the option's
    for columns in (option_columns()[o] for o in options):
        for (value, mask), _ in columns.items():
            if mask == 0xFFFFFFFF and Tag(value) not in rules:
                rules[Tag(value)] = _with_options(value, Action.REMOVE, options, _vr(value))
    masked = tuple(MaskedRule(m.value, m.mask, _with_options(m.value, m.action, options, ""))
                   for m in masked)
    return Profile(rules, masked, options)
