"""Migrations of the series index, applied in order (r0001, r0002, ...)."""
