"""De-identification: ours beside dicognito, deid and dicom-anonymizer, on the planted-PHI corpus
(correct actions by the proof's checker, each library with its own defaults) and on 512 x 512
CT slices (milliseconds per image on one core: read, de-identify, write, in memory).

The peers are not dependencies of the product; install them into the venv to compare:

    .venv/bin/pip install dicognito==0.19.0 deid==0.4.13
    taskset -c 0 .venv/bin/python bench/deid_compare.py --images 200 --repeats 5

A peer that is not installed is reported as such. The libraries' own defaults are what is
measured: none of them offers keyed UIDs, a per-patient date offset and the four options
together, so their correctness against our profile says what each would need changed, not that
it is broken. Target (issue 22): ours at most 20 ms per 512 x 512 image on one core.
"""

import argparse
import io
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset

from digital_contrast.repository.deid.deidentify import Deidentifier
from digital_contrast.repository.deid.pseudonyms import SiteKey
from digital_contrast.repository.proof.checker import check
from digital_contrast.repository.proof.corpus import (
    SAFE_LIST,
    ct_image,
    file_bytes,
    planted_corpus,
)

Method = Callable[[Dataset], Dataset]


def ours() -> Method:
    return Deidentifier(SiteKey("bench", b"b" * 32), safe_private=SAFE_LIST).deidentify


def dicognito_method() -> Method:
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed="bench")

    def run(ds: Dataset) -> Dataset:
        anonymizer.anonymize(ds)
        return ds

    return run


def dicom_anonymizer_method() -> Method:
    from dicomanonymizer import anonymize_dataset

    def run(ds: Dataset) -> Dataset:
        anonymize_dataset(ds, delete_private_tags=True)
        return ds

    return run


def deid_method() -> Method:
    from deid.config import DeidRecipe
    from deid.dicom import replace_identifiers

    recipe = DeidRecipe()  # the package's default recipe (deid.dicom)
    folder = Path(tempfile.mkdtemp(prefix="deid-bench-"))

    def run(ds: Dataset) -> Dataset:
        path = folder / "in.dcm"
        ds.save_as(path, enforce_file_format=True)
        return replace_identifiers(dicom_files=[str(path)], deid=recipe, save=False)[0]

    return run


PEERS: dict[str, Callable[[], Method]] = {
    "ours": ours, "dicognito": dicognito_method, "deid": deid_method,
    "dicom-anonymizer": dicom_anonymizer_method,
}


def _slice(index: int) -> bytes:
    """A 512 x 512 CT slice with a realistic header, as file bytes."""
    ds = ct_image(0, "ISO_IR 100")
    ds.Rows = ds.Columns = 512
    rng = np.random.default_rng(index)
    ds.PixelData = rng.integers(0, 2000, (512, 512), dtype=np.int16).tobytes()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^John", "MRN1", "19500101"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1087.9"
    ds.SeriesInstanceUID = ds.StudyInstanceUID + ".1"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{index + 1}"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240315"
    ds.StudyTime = "101500"
    ds.AccessionNumber, ds.InstitutionName = "A123", "St Elsewhere"
    ds.SeriesDescription, ds.StationName = "Abdomen PV 1.0 B30f", "CT01"
    return file_bytes(ds)


def _speed(method: Method, slices: list[bytes], repeats: int) -> list[float]:
    per_image = []
    for _ in range(repeats):
        started = time.perf_counter()
        for raw in slices:
            out = method(dcmread(io.BytesIO(raw)))
            out.save_as(io.BytesIO())
        per_image.append(1000.0 * (time.perf_counter() - started) / len(slices))
    return per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    corpus = planted_corpus()
    slices = [_slice(i) for i in range(args.images)]
    print(f"planted corpus: {len(corpus)} instances, {len(corpus[0].planted)} planted "
          f"attributes each; speed: {args.images} slices of 512 x 512, {args.repeats} repeats, "
          f"CPU affinity {sorted(os.sched_getaffinity(0))}")
    print(f"{'method':<18}{'correct actions':>18}{'misses':>8}{'ms/image median':>17}"
          f"{'range':>16}")
    reference = None
    for name, make in PEERS.items():
        try:
            method = make()
        except ImportError:
            print(f"{name:<18}not installed")
            continue
        outputs = []
        for instance in corpus:
            try:
                outputs.append(method(dcmread(io.BytesIO(file_bytes(instance.dataset)))))
            except Exception as exc:  # a peer failing on the corpus is a result
                print(f"{name:<18}failed on the corpus: {type(exc).__name__}")
                outputs.append(None)
        result = check(corpus, outputs)
        times = _speed(method, slices, args.repeats)
        median = statistics.median(times)
        reference = reference or median
        print(f"{name:<18}{100 * result.correct_fraction:>17.2f}%{len(result.misses):>8}"
              f"{median:>17.2f}{f'{min(times):.2f}-{max(times):.2f}':>16}"
              f"  (x{median / reference:.2f} of ours)")
        worst = Counter(m.category for m in result.misses).most_common(4)
        if worst:
            print(" " * 18 + "misses: " + ", ".join(f"{c} {n}" for c, n in worst))


if __name__ == "__main__":
    main()
