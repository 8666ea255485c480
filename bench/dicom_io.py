"""Benchmark: read a 512x512x300 CT series into a Volume and write a synthetic series back,
beside a plain pydicom loop doing the least the same job needs, in the same run.

    .venv/bin/python bench/dicom_io.py [--repeats 3] [--slices 300]

Each measurement runs in a fresh subprocess so peak RSS (VmHWM) belongs to it alone. Figures are
medians over the repeats; the machine is shared, so read the ratios more than the seconds.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def make_series(folder: Path, slices: int) -> None:
    """A 512x512 clinical-geometry series (0.7 mm pixels, 1 mm slices), scanner encoding."""
    from pydicom.dataset import Dataset
    from pydicom.uid import CTImageStorage

    from digital_contrast.imaging.ct_image import add_image_plane, add_pixels, file_meta
    from digital_contrast.imaging.uids import uid_from

    rng = np.random.default_rng(0)
    affine = np.array([[0, 0, 0.7, -179.0], [0, 0.7, 0, -179.0], [1.0, 0, 0, -150.0],
                       [0, 0, 0, 1]])
    yy, xx = np.mgrid[:512, :512]
    body = ((yy - 256) / 200) ** 2 + ((xx - 256) / 240) ** 2 < 1
    folder.mkdir(parents=True)
    for k in range(slices):
        hu = np.where(body, 40.0, -1000.0) + rng.normal(0, 15, (512, 512))
        ds = Dataset()
        ds.update({"PatientName": "BENCH^IO", "PatientID": "BENCH", "Modality": "CT"})
        ds.SOPClassUID = CTImageStorage
        ds.StudyInstanceUID = uid_from("bench-study")
        ds.SeriesInstanceUID = uid_from("bench-series")
        ds.FrameOfReferenceUID = uid_from("bench-for")
        ds.SOPInstanceUID = uid_from("bench", str(k))
        ds.InstanceNumber = k + 1
        ds.SeriesNumber = 2
        add_image_plane(ds, affine, k, 1.0)
        add_pixels(ds, hu, rescale_intercept=-1024)
        ds.file_meta = file_meta(ds.SOPInstanceUID)
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)


def measure(task: str, src: Path, out: Path) -> dict:
    """Runs inside the child process: import first, then time only the task."""
    import pydicom

    from digital_contrast.imaging.series_reader import read_series
    from digital_contrast.imaging.synthetic import SynthesizingModel, write_synthetic_series

    files = sorted(src.iterdir())
    volume = read_series(src) if "write" in task else None
    baseline = _rss_mb("VmRSS")
    start = time.perf_counter()
    if task == "read_series":
        read_series(src)
    elif task == "plain_read":
        # The least a correct reader must also do: parse, decode, rescale to float32 HU.
        slices = []
        for path in files:
            ds = pydicom.dcmread(path)
            slices.append(ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope)
                          + float(ds.RescaleIntercept))
        np.stack(slices)
    elif task == "write_synthetic":
        assert volume is not None and volume.source is not None
        write_synthetic_series(volume, volume.source,
                               SynthesizingModel("bench", "0", "0" * 64), out)
    elif task == "plain_write":
        # Same pixels, a plain copy-and-save loop with new UIDs: no labelling, no atomicity.
        assert volume is not None
        out.mkdir(parents=True)
        for k, path in enumerate(files):
            ds = pydicom.dcmread(path)
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.PixelData = np.rint(volume.array[k] + 1024).astype("<u2").tobytes()
            ds.save_as(out / path.name)
    else:
        raise ValueError(task)
    return {"seconds": time.perf_counter() - start,
            "peak_rss_mb": _rss_mb("VmHWM"), "increment_mb": _rss_mb("VmHWM") - baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--child", nargs=3, metavar=("TASK", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        task, src, out = args.child
        print(json.dumps(measure(task, Path(src), Path(out))))
        return

    tasks = ["read_series", "plain_read", "write_synthetic", "plain_write"]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "series"
        make_series(src, args.slices)
        size_mb = sum(p.stat().st_size for p in src.iterdir()) / 1024**2
        print(f"series: 512x512x{args.slices}, {size_mb:.0f} MB on disk; "
              f"{args.repeats} repeats, medians")
        results: dict[str, list[dict]] = {t: [] for t in tasks}
        for repeat in range(args.repeats):
            for task in tasks:  # interleaved so drift on a shared machine hits all alike
                out = Path(tmp) / f"out-{task}-{repeat}"
                child = subprocess.run([sys.executable, __file__, "--child", task, str(src),
                                        str(out)], capture_output=True, text=True, check=True)
                results[task].append(json.loads(child.stdout.strip().splitlines()[-1]))
    median = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
              for t, rs in results.items()}
    print(f"{'task':<16}{'seconds':>10}{'peak RSS MB':>14}{'+MB in task':>14}")
    for task in tasks:
        m = median[task]
        print(f"{task:<16}{m['seconds']:>10.2f}{m['peak_rss_mb']:>14.0f}{m['increment_mb']:>14.0f}")
    for ours, peer in (("read_series", "plain_read"), ("write_synthetic", "plain_write")):
        print(f"ratio {ours}/{peer}: time {median[ours]['seconds'] / median[peer]['seconds']:.2f}"
              f", memory increment "
              f"{median[ours]['increment_mb'] / max(median[peer]['increment_mb'], 1):.2f}")


if __name__ == "__main__":
    main()
