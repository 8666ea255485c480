"""The repository's series index: one row per de-identified series, typed columns for what
cohorts are chosen by and JSON for the rest, in a database apart from the clinical store."""
