"""A cohort version as batch manifest cases: plain members and pairs, and the pair that cannot
be compared (a series without its instance-set hash) refused."""

from pathlib import Path

import pytest

from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.export_manifest import manifest_cases
from digital_contrast.repository.index.tables import CohortMember, Series


def _member(uid: str, native: str | None = None, digest: str | None = "a" * 64,
            native_digest: str | None = "b" * 64) -> CohortMember:
    return CohortMember(site="site-a", series_uid=uid, study_uid="2.25.9", patient="P0",
                        instance_set_sha256=digest, native_series_uid=native,
                        native_instance_set_sha256=native_digest if native else None)


@pytest.mark.req("SRS-REPO-013")
def test_a_pair_is_its_native_series_with_the_contrast_series_as_reference() -> None:
    members = [_member("2.25.1"), _member("2.25.2", native="2.25.3")]
    series = {("site-a", "2.25.2"): Series(phase="arterial")}
    plain, pair = manifest_cases(members, series, {("site-a", "2.25.1"), ("site-a", "2.25.2")},
                                 None, Path("."))
    assert (plain.series_instance_uid, plain.reference) == ("2.25.1", None)
    assert (pair.case_id, pair.series_instance_uid, pair.instance_set_sha256) == (
        "site-a.2.25.2", "2.25.3", "b" * 64)
    assert (pair.reference.series_instance_uid, pair.reference.phase) == ("2.25.2", "arterial")


@pytest.mark.req("SRS-REPO-013")
@pytest.mark.parametrize("missing", ["digest", "native_digest"])
def test_a_pair_without_both_instance_sets_is_refused(missing: str) -> None:
    member = _member("2.25.2", native="2.25.3", **{missing: None})
    with pytest.raises(RepositoryError) as refused:
        manifest_cases([member], {}, {("site-a", "2.25.2")}, None, Path("."))
    assert refused.value.code == "EXPORT_INVALID"
