"""Result destinations of a site: DIMSE peers (C-STORE SCU) and STOW-RS services. A name is
unique within its site; disabling keeps the row (deliveries and the audit trail name it)."""

import re
from urllib.parse import urlsplit

from pydicom.uid import UID
from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.dicom_senders import normal_ae_title
from digital_contrast.store.enums import Protocol
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import Destination

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _invalid(detail: str) -> StoreError:
    return StoreError(StoreErrorCode.DESTINATION_INVALID, detail)


def add_destination(db: Session, site: str, name: str, protocol: Protocol | str, *,
                    ae_title: str | None = None, host: str | None = None,
                    port: int | None = None, url: str | None = None,
                    transfer_syntaxes: list[str] | None = None, auto: bool = False,
                    tls: bool = False, has_credential: bool = False) -> Destination:
    """A new destination, checked whole before anything is written (DESTINATION_INVALID)."""
    if not _NAME.fullmatch(name):
        raise _invalid("a destination name is 1-64 letters, digits, '.', '_' or '-'")
    protocol = Protocol(protocol)
    if protocol is Protocol.DIMSE:
        if ae_title is None or not host or port is None or url is not None:
            raise _invalid("a DIMSE destination needs --ae-title, --host and --port, no URL")
        ae_title = normal_ae_title(ae_title)
        if not 1 <= port <= 65_535:
            raise _invalid("a port is 1 to 65535")
        for syntax in transfer_syntaxes or []:
            if not UID(syntax).is_transfer_syntax:
                raise _invalid(f"{syntax} is not a transfer syntax UID")
    else:
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc or ae_title or host \
                or port is not None or transfer_syntaxes or tls:
            raise _invalid("a STOW-RS destination needs --url http(s)://host/... (its DICOMweb "
                           "root; https for TLS), and no AE title, host, port, transfer "
                           "syntaxes or --tls")
        if parts.username or parts.password:
            raise _invalid("credentials never go in the URL: use --auth-header (kept in the "
                           "keys folder)")
    if db.scalar(select(Destination).where(Destination.site == site,
                                           Destination.name == name)) is not None:
        raise StoreError(StoreErrorCode.DESTINATION_EXISTS,
                         f"site {site} already has a destination {name!r}")
    destination = Destination(site=site, name=name, protocol=protocol, ae_title=ae_title,
                              host=host, port=port, url=url,
                              transfer_syntaxes=list(transfer_syntaxes or []), auto=auto,
                              tls=tls, has_credential=has_credential)
    db.add(destination)
    db.flush()
    return destination


def list_destinations(db: Session, site: str | None = None) -> list[Destination]:
    query = select(Destination).order_by(Destination.site, Destination.name)
    return list(db.scalars(query if site is None else query.where(Destination.site == site)))


def get_destination(db: Session, site: str, name: str, *, enabled: bool = True) -> Destination:
    destination = db.scalar(select(Destination).where(Destination.site == site,
                                                      Destination.name == name))
    if destination is None or (enabled and destination.disabled_at is not None):
        raise StoreError(StoreErrorCode.DESTINATION_NOT_FOUND,
                         f"site {site} has no {'enabled ' if enabled else ''}destination "
                         f"{name!r}")
    return destination


def set_destination_enabled(db: Session, site: str, name: str, enabled: bool) -> Destination:
    destination = get_destination(db, site, name, enabled=False)
    destination.disabled_at = None if enabled else (destination.disabled_at or utcnow())
    db.flush()
    return destination
