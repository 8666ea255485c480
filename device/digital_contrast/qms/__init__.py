"""Quality-record tooling: schemas and generators over ../../qms and ../../risk."""
