"""Results to a DICOMweb destination: STOW-RS by dicomweb-client, a series' instances in
requests of at most BATCH instances. Server errors, throttling and unreachable peers are
worth another attempt; other refusals (4xx, instances failed in the response) need an
operator. Instances named in the Failed SOP Sequence are counted by their Failure Reason."""

from pathlib import Path

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

from digital_contrast.delivery.outcome import SendOutcome

BATCH = 50
_RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}


def send_by_stow_rs(files: list[Path], *, url: str, headers: dict[str, str],
                    timeout_s: float) -> SendOutcome:
    outcome = SendOutcome()
    client = DICOMwebClient(url.rstrip("/"), headers=headers, timeout=timeout_s)
    for start in range(0, len(files), BATCH):
        datasets = [pydicom.dcmread(path) for path in files[start:start + BATCH]]
        try:
            response = client.store_instances(datasets)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            outcome.problems.append(f"HTTP {status} from the STOW-RS service")
            outcome.retryable = status in _RETRYABLE_HTTP
            return outcome
        except (requests.ConnectionError, requests.Timeout) as exc:
            outcome.problems.append(f"STOW-RS service unreachable ({type(exc).__name__})")
            return outcome
        outcome.sent += len(response.get("ReferencedSOPSequence", []))
        for item in response.get("FailedSOPSequence", []):
            outcome.problems.append(f"failure reason 0x{int(item.FailureReason):04X}")
            outcome.retryable = False
    return outcome

