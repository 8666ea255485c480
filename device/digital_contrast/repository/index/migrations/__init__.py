"""Alembic environment of the series index (a package so that it ships with the wheel)."""
