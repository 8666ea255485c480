"""A saved cohort version as batch manifest cases (digital_contrast.batch_manifest, version 1).

A member of a plain cohort is one case: its series. A member of a cohort of native + contrast
pairs is one case too, named by the contrast series, whose series is the native one (what a
synthesis starts from) and whose `reference` is the contrast series (what training and
validation compare the synthesis with). With the repository folder ingest wrote (a site's,
or the folder holding those of several sites), each case names its series' folder there,
relative to the manifest; a series that is not there is refused, never written unfound.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

from digital_contrast.batch_manifest import ManifestCase, ManifestReference
from digital_contrast.repository.errors import RepositoryError
from digital_contrast.repository.index.tables import CohortMember, Series


def manifest_cases(members: list[CohortMember], series: Mapping[tuple[str, str], Series],
                   kept: Collection[tuple[str, str]], files: Path | None,
                   manifest_folder: Path) -> list[ManifestCase]:
    """The cases of the `kept` members (site, series UID), in member order; `series`: their
    index rows (`cohorts.member_series`), which give a pair's phase."""

    def folder(member: CohortMember, series_uid: str) -> str | None:
        if files is None:
            return None
        inside = Path(member.patient, member.study_uid, series_uid)
        # a site's repository folder, or the folder above those of several sites
        for path in (files.resolve() / inside, files.resolve() / member.site / inside):
            if path.is_dir():
                return os.path.relpath(path, manifest_folder.resolve()).replace(os.sep, "/")
        raise RepositoryError("EXPORT_INVALID", f"series {series_uid} of {member.site} is not "
                                                f"in {files} (nor in its {member.site} folder)")

    cases = []
    for m in members:
        if (m.site, m.series_uid) not in kept:
            continue
        case_id = f"{m.site}.{m.series_uid}"[:128]
        if m.native_series_uid is None:
            cases.append(ManifestCase(
                case_id=case_id, series_instance_uid=m.series_uid,
                instance_set_sha256=m.instance_set_sha256, folder=folder(m, m.series_uid),
                provenance={"site": m.site}))
            continue
        if m.instance_set_sha256 is None or m.native_instance_set_sha256 is None:
            raise RepositoryError("EXPORT_INVALID", f"case {case_id}: a pair without the "
                                                    "instance-set hash of both series (not "
                                                    "ingested here) cannot be compared")
        cases.append(ManifestCase(
            case_id=case_id, series_instance_uid=m.native_series_uid,
            instance_set_sha256=m.native_instance_set_sha256,
            folder=folder(m, m.native_series_uid), provenance={"site": m.site},
            reference=ManifestReference(
                series_instance_uid=m.series_uid, instance_set_sha256=m.instance_set_sha256,
                phase=getattr(series.get((m.site, m.series_uid)), "phase", "unknown"),
                folder=folder(m, m.series_uid))))
    return cases
