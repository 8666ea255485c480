"""The planted-PHI proof of the repository's de-identifier, and the proof that the checker fails
de-identifiers that are wrong in the ways real ones are."""

import dataclasses
import datetime as dt
import zlib
from collections import Counter

import pytest
from pydicom.tag import Tag

from digital_contrast.repository.deid.deidentify import Deidentifier
from digital_contrast.repository.deid.profile import Action, research_profile
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.proof.checker import ProofResult, check
from digital_contrast.repository.proof.corpus import SAFE_LIST, planted_corpus
from digital_contrast.repository.proof.table import load_table


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


def _deidentifier(key: bytes = b"k" * 32, **kwargs) -> Deidentifier:
    return Deidentifier(SiteKey("site-a", key), safe_private=SAFE_LIST, **kwargs)


def _run(corpus, deidentifier) -> ProofResult:
    return check(corpus, [deidentifier.deidentify(i.dataset) for i in corpus])


def _misses(result: ProofResult) -> str:
    return "\n".join(f"{m.category}: {m.where}: expected {m.expected}, got {m.observed}"
                     for m in result.misses[:40])


@pytest.mark.req("SRS-REPO-004", "SRS-REPO-001", "SRS-REPO-002")
def test_every_planted_action_is_correct(corpus) -> None:
    result = _run(corpus, _deidentifier())
    assert not result.misses, _misses(result)
    assert result.correct_fraction == 1.0
    planted = {p.tag for p in corpus[0].planted}
    assert len(planted) >= 600  # the table's attributes, less command-group and unknown tags
    # every MIDI-B category was exercised, at every placement
    for category in ("tag removed", "tag emptied", "tag replaced", "UID changed",
                     "tag retained", "text cleaned", "date shifted", "private removed",
                     "private safe-list retained", "UID changed consistently",
                     "patient ID consistent", "date shifted consistently",
                     "no identifying value left"):
        assert result.checked[category] > 0, category
    assert {p.placement for p in corpus[0].planted} == {"top", "nested"}
    assert {i.charset for i in corpus} >= {"ISO_IR 100", "ISO_IR 192"}


@pytest.mark.req("SRS-REPO-004")
def test_the_checker_reads_another_table_than_the_deidentifier() -> None:
    table = load_table()
    assert table.edition == "2024e" and "innolitics" in table.source
    from digital_contrast.repository.deid.profile import BASIC_TABLE_EDITION, basic_table

    assert BASIC_TABLE_EDITION == "2026c"
    exact, _ = basic_table()
    assert len(exact) > 550  # dicom-anonymizer's transcription, not the checker's file


@pytest.mark.req("SRS-REPO-004")
def test_the_checker_fails_a_deidentifier_that_keeps_an_identifier(corpus) -> None:
    profile = research_profile()
    rules = dict(profile.rules)
    rules[Tag(0x00080050)] = Action.KEEP  # AccessionNumber kept
    broken = _deidentifier(profile=dataclasses.replace(profile, rules=rules))
    result = _run(corpus, broken)
    assert any("Accession Number" in m.where and m.observed == "retained"
               for m in result.misses)
    assert any(m.category == "no identifying value left" for m in result.misses)


@pytest.mark.req("SRS-REPO-004")
def test_the_checker_fails_a_deidentifier_that_skips_nested_sequences(corpus) -> None:
    class TopLevelOnly(Deidentifier):
        def _items(self, element, context) -> None:
            pass

    result = _run(corpus, TopLevelOnly(SiteKey("site-a", b"k" * 32), safe_private=SAFE_LIST))
    nested = [m for m in result.misses if " nested " in m.where]
    assert nested


@pytest.mark.req("SRS-REPO-004", "SRS-REPO-002")
def test_the_checker_fails_new_uids_on_every_pass(corpus) -> None:
    """The weakness of a commercial gateway: a study sent again became a duplicate."""
    calls = Counter()

    class FreshKeys(SiteKey):
        def uid(self, original: str) -> str:
            calls[original] += 1
            return super().uid(f"{original}#{calls[original]}")

    result = _run(corpus, Deidentifier(FreshKeys("site-a", b"k" * 32), safe_private=SAFE_LIST))
    assert {m.category for m in result.misses} == {"UID changed consistently"}


@pytest.mark.req("SRS-REPO-004", "SRS-REPO-002")
def test_the_checker_fails_a_date_offset_per_study(corpus) -> None:
    class OffsetPerStudy(Deidentifier):
        def _offset(self, dataset):
            return dt.timedelta(days=400 + zlib.crc32(str(dataset.StudyInstanceUID).encode()) % 50)

    result = _run(corpus, OffsetPerStudy(SiteKey("site-a", b"k" * 32), safe_private=SAFE_LIST))
    assert {m.category for m in result.misses} == {"date shifted consistently"}


@pytest.mark.req("SRS-REPO-004")
def test_a_refused_instance_fails_the_proof(corpus) -> None:
    result = check(corpus, [None, *(_deidentifier().deidentify(i.dataset)
                                    for i in corpus[1:])])
    assert [m.category for m in result.misses] == ["instance kept"]


@pytest.mark.req("SRS-REPO-004")
def test_the_proof_command_prints_every_category() -> None:
    from typer.testing import CliRunner

    from digital_contrast.cli import app

    result = CliRunner().invoke(app, ["repository", "proof"])
    assert result.exit_code == 0, result.output
    assert "correct actions: 100.00 %" in result.output
    assert "no identifying value left" in result.output and "MISS" not in result.output
