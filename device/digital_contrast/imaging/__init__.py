"""Imaging: CT series and NIfTI to and from `Volume`, intended-use conformity checks, the
labelled synthetic (derived) series; no web, database or job code."""
