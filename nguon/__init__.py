"""Nguồn: the application shell."""

# First: marshmallow's messages must be catalogue messages before any schema is built.
from nguon import validation_messages  # noqa: F401  (installs itself)
from nguon.app import create_app

__all__ = ["create_app"]
