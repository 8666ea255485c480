"""DIMSE senders: which calling AE titles may associate, from where, and for which site.

An AE title is unique across sites, so that every received instance belongs to exactly one
site; disabling keeps the row (the audit trail names it) and refuses the AE at once.
"""

import ipaddress
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from digital_contrast.store.columns import utcnow
from digital_contrast.store.errors import StoreError, StoreErrorCode
from digital_contrast.store.tables import DicomSender

# PS3.5 AE: 1-16 characters of the default repertoire, no backslash or control characters;
# leading and trailing spaces are not significant.
_AE_TITLE = re.compile(r"^[ -\[\]-~]{1,16}$")


def normal_ae_title(value: str) -> str:
    """The AE title without its insignificant spaces; SENDER_INVALID when not a valid one."""
    title = value.strip(" ")
    if not title or not _AE_TITLE.fullmatch(value):
        raise StoreError(StoreErrorCode.SENDER_INVALID,
                         "an AE title is 1 to 16 printable ASCII characters, not only spaces, "
                         "without a backslash")
    return title


def _normal_host(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise StoreError(StoreErrorCode.SENDER_INVALID,
                         "a sender's host is an IP address (the peer address of its "
                         "connections), not a name") from None


def add_sender(db: Session, ae_title: str, site: str, *, host: str | None = None,
               description: str | None = None) -> DicomSender:
    title = normal_ae_title(ae_title)
    if not site.strip():
        raise StoreError(StoreErrorCode.SENDER_INVALID, "a sender needs a site")
    existing = db.scalar(select(DicomSender).where(DicomSender.ae_title == title))
    if existing is not None:
        raise StoreError(StoreErrorCode.SENDER_EXISTS,
                         f"AE title {title!r} is already a sender (site {existing.site}, "
                         f"{'disabled' if existing.disabled_at else 'enabled'}): AE titles "
                         "are unique across sites")
    sender = DicomSender(ae_title=title, site=site, host=_normal_host(host),
                         description=description)
    db.add(sender)
    db.flush()
    return sender


def list_senders(db: Session, site: str | None = None) -> list[DicomSender]:
    query = select(DicomSender).order_by(DicomSender.site, DicomSender.ae_title)
    return list(db.scalars(query if site is None else query.where(DicomSender.site == site)))


def set_sender_enabled(db: Session, ae_title: str, enabled: bool) -> DicomSender:
    sender = db.scalar(select(DicomSender).where(
        DicomSender.ae_title == normal_ae_title(ae_title)))
    if sender is None:
        raise StoreError(StoreErrorCode.SENDER_NOT_FOUND, f"no sender with AE title {ae_title!r}")
    if enabled:
        sender.disabled_at = None
    elif sender.disabled_at is None:
        sender.disabled_at = utcnow()
    db.flush()
    return sender


def sender_for(db: Session, ae_title: str, address: str) -> DicomSender | None:
    """The enabled sender an association from `ae_title` at `address` belongs to, or None."""
    try:
        title = normal_ae_title(ae_title)
    except StoreError:
        return None
    sender = db.scalar(select(DicomSender).where(DicomSender.ae_title == title,
                                                 DicomSender.disabled_at.is_(None)))
    if sender is None:
        return None
    if sender.host is not None:
        try:
            if sender.host != _normal_host(address):
                return None
        except StoreError:  # not an IP address: cannot be the one the sender is bound to
            return None
    return sender
