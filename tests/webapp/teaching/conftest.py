"""Fixtures for the teaching tests (helpers in teaching_support.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def trainee(make_user: Callable[..., Any]) -> Any:
    return make_user("sonographer", username="trainee_a", is_trainee=True)


@pytest.fixture
def supervisors(make_user: Callable[..., Any]) -> list[Any]:
    return [make_user("supervisor", username=f"sup{i}") for i in (1, 2, 3)]
