"""TLS for DIMSE (PS3.15 B.1, the TLS secure transport connection profile): the certificates
live in the keys folder like every other key, the private key 0600.

    <keys_dir>/tls/dimse.pem        our certificate chain (listener, and client for destinations)
    <keys_dir>/tls/dimse.key        its private key, 0600
    <keys_dir>/tls/clients-ca.pem   optional: the listener then requires a client certificate
                                    signed by it (mutual TLS)
    <keys_dir>/tls/peers-ca.pem     optional: the CAs trusted for destinations' certificates
                                    (default: the system's)

Rotation: replace the files (each written whole) and restart the listener; deliveries read
them at every association.
"""

from __future__ import annotations

import ssl

from digital_contrast.keys.errors import KeysError
from digital_contrast.keys.folder import KeysFolder

CERT, KEY = ("tls", "dimse.pem"), ("tls", "dimse.key")
CLIENTS_CA, PEERS_CA = ("tls", "clients-ca.pem"), ("tls", "peers-ca.pem")


def _chain(folder: KeysFolder, required: bool) -> tuple[str, str] | None:
    cert, key = folder.file(*CERT), folder.file(*KEY)
    if not cert.exists() or folder.read_private(*KEY) is None:  # the key's mode is checked
        if required:
            raise KeysError("TLS_CERT_MISSING", f"DIMSE TLS needs {'/'.join(CERT)} and "
                            f"{'/'.join(KEY)} (0600) in the keys folder {folder.path}")
        return None
    return str(cert), str(key)


def server_context(folder: KeysFolder) -> ssl.SSLContext:
    """The listener's context: TLS 1.2 or later, our certificate, client certificates
    required when clients-ca.pem is present."""
    chain = _chain(folder, required=True)
    assert chain is not None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(*chain)
        if folder.file(*CLIENTS_CA).exists():
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(folder.file(*CLIENTS_CA)))
    except (ssl.SSLError, ValueError) as exc:
        raise KeysError("TLS_CERT_INVALID", f"the DIMSE TLS files cannot be used "
                        f"({type(exc).__name__})") from None
    return context


def client_context(folder: KeysFolder) -> ssl.SSLContext:
    """A destination's context: its certificate verified (peers-ca.pem or the system's CAs)
    against its host name, ours presented when we have one."""
    peers = folder.file(*PEERS_CA)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(peers) if peers.exists() else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    chain = _chain(folder, required=False)
    if chain is not None:
        context.load_cert_chain(*chain)
    return context
