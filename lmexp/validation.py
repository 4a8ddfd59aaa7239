"""Config checks shared by every schema: one wording for every "bad value" error."""

from __future__ import annotations

from collections.abc import Iterable


def require_positive(section: str, **values: float | int | None) -> None:
    """Refuse a value <= 0, naming the key and how to set it; None means "not set"."""
    prefix = f"{section}." if section else ""
    for key, value in values.items():
        if value is not None and value <= 0:
            raise ValueError(f"{prefix}{key}={value} must be positive; set {prefix}{key}=<n > 0>")


def require_choice(key: str, value: object, choices: Iterable[object]) -> None:
    """Refuse a value outside `choices`, listing them."""
    allowed = list(choices)
    if value not in allowed:
        raise ValueError(f"{key}={value!r} unknown; choose from {allowed}")
