"""Fixtures of the input tests: an API token of a given role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nguon.db import db


@pytest.fixture
def bearer(in_tx: Callable[..., Any], make_user: Callable[..., Any]) -> Callable[..., dict]:
    """bearer(role) -> the Authorization header of a new user of that role."""
    from nguon import services
    from nguon.models import User

    def make(role: str = "admin") -> dict[str, str]:
        user_id, _email = make_user(role)
        token = in_tx(lambda: services.create_token(db.session.get(User, user_id), "inputs"))
        return {"Authorization": f"Bearer {token.secret}"}

    return make
