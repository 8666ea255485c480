"""Delivery: results pushed to the PACS. The durable outbox (`store.outbox`) is worked by
delivery workers that send a job's result series to each destination by DIMSE C-STORE
(pynetdicom, transfer syntax negotiated per destination) or DICOMweb STOW-RS
(dicomweb-client), with retries and backoff, audited and shown in the job record."""

from digital_contrast.delivery.credentials import credential_headers, store_credential
from digital_contrast.delivery.worker import DeliveryWorker, start_delivery_threads

__all__ = ["DeliveryWorker", "credential_headers", "start_delivery_threads",
           "store_credential"]
