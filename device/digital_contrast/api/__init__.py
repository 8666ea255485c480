"""The clinical HTTP interface (FastAPI): DICOMweb and the job API."""
