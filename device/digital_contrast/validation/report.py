"""The validation report of a run: HTML for browsing and its PDF, with the per-case table,
metric distributions as plots, the failed cases, bundle and protocol hashes and environment."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

from digital_contrast.qms.documents import document_header, render, write_pdf
from digital_contrast.usecases import load_use_case
from digital_contrast.validation.metrics import (
    METRICS,
    PHANTOM_STRATA,
    PRIMARY,
    SHIFT,
    SHIFT_STRATUM,
    STRATA,
)
from digital_contrast.validation.protocol import PhantomDataset, Protocol
from digital_contrast.validation.results import CASES_COMPLETED, ValidationRun, stratum_medians

TITLE = "Validation report"
APPROVALS = ("Prepared: validation engineer", "Reviewed: clinical and regulatory affairs",
             "Approved: quality")


def _plot(run: ValidationRun, metric: str, op: str, threshold: float) -> str:
    """One metric over the cases as an SVG data URI: primary-stratum cases dark, others
    grey, the acceptance threshold dashed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    def values(primary: bool) -> list[float]:
        return [c.metrics[metric] for c in run.cases if (c.stratum == PRIMARY) == primary
                and math.isfinite(c.metrics.get(metric, math.nan))]

    primary, other = values(True), values(False)
    fig, ax = plt.subplots(figsize=(5.6, 1.6), dpi=100)
    ax.scatter(other, [0.3] * len(other), color="#aaa", s=14, label="other strata")
    ax.scatter(primary, [0.0] * len(primary), color="#234", s=14, label="primary stratum")
    ax.axvline(threshold, color="#b00", linestyle="--", linewidth=1,
               label=f"acceptance {op} {threshold:g}")
    ax.set_yticks([])
    ax.set_ylim(-0.5, 0.8)
    unit = METRICS[metric].unit if metric in METRICS else ""
    ax.set_xlabel(f"{metric}{f' ({unit})' if unit else ''}", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue().encode()).decode()


def _strata(protocol: Protocol) -> dict[str, str]:
    """What each stratum of the protocol's dataset holds, as the report lists them."""
    dataset = protocol.dataset
    if not isinstance(dataset, PhantomDataset):
        return dict(STRATA)  # as before: paired cases are all primary
    strata = dict(PHANTOM_STRATA[dataset.phantom])
    if dataset.shift is not None:
        strata[SHIFT] = f"{SHIFT_STRATUM}: {dataset.shift.description}"
    return strata


def write_report(folder: Path, run: ValidationRun) -> list[Path]:
    """report.html and report.pdf in `folder`."""
    protocol = run.protocol.protocol
    criteria = [{"criterion": c, "floor": run.floor_of(c),
                 "description": (METRICS[c.metric].description if c.metric in METRICS else
                                 "cases run through the whole path (of all cases)")}
                for c in run.record.criteria]
    plots = [{"metric": rule.metric, "uri": _plot(run, rule.metric, rule.op, rule.threshold)}
             for rule in protocol.acceptance if rule.statistic != "mean"]
    context = {
        "document": document_header(f"DC-VAL-{run.run_id}", TITLE, source=run.protocol.name,
                                    records=(run.protocol.name,),
                                    approvals=APPROVALS),
        "run": run, "record": run.record, "protocol": protocol, "criteria": criteria,
        "plots": plots, "columns": list(dict.fromkeys(r.metric for r in protocol.acceptance)),
        "floor_failures": run.floor_failures, "strata": _strata(protocol),
        # Every report repeats what the use case excludes (abdomen-pv: lesion detection and
        # characterisation), so no figure in it reads as evidence for what is excluded.
        "exclusions": load_use_case(protocol.use_case).exclusions,
        "by_stratum": [{"metric": m, "model": stratum_medians(run.cases, m),
                        "floor": stratum_medians(run.cases, m, floor=True)}
                       for m in dict.fromkeys(r.metric for r in protocol.acceptance)],
        "failed": run.failed_cases, "cases_completed": CASES_COMPLETED,
        "duration_s": round((run.finished - run.started).total_seconds(), 1),
    }
    html = render("validation_report.html.j2", context, folder / "report.html",
                  package="digital_contrast.validation")
    return [html, write_pdf(html)]
