"""Nguồn: the application shell."""

from nguon.app import create_app

__all__ = ["create_app"]
