"""Migrations: frozen snapshots of the schema; they never import the ORM models."""
