"""Config checks shared by every schema: one wording for every "bad value" error.

And `first_line`, how every one-line error quotes the exception beneath it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def require_positive(section: str, **values: float | int | None) -> None:
    """Refuse a value <= 0 or NaN, naming the key and how to set it; None means "not set".

    inf passes (a budget of inf is no budget); `require_finite` refuses it too.
    """
    prefix = f"{section}." if section else ""
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{prefix}{key}=nan is not a number; set {prefix}{key}=<n > 0>")
        if value <= 0:
            raise ValueError(f"{prefix}{key}={value} must be positive; set {prefix}{key}=<n > 0>")


def require_finite(section: str, **values: float | int | None) -> None:
    """Refuse NaN and ±inf, naming the key; None means "not set"."""
    prefix = f"{section}." if section else ""
    for key, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{prefix}{key}={value} must be a finite number")


def require_choice(key: str, value: object, choices: Iterable[object]) -> None:
    """Refuse a value outside `choices`, listing them."""
    allowed = list(choices)
    if value not in allowed:
        raise ValueError(f"{key}={value!r} unknown; choose from {allowed}")


def check_choices(section: str, obj: object, choices: dict[str, Iterable[object]]) -> None:
    """Refuse any field of `obj` named in `choices` whose value is not among its choices."""
    prefix = f"{section}." if section else ""
    for key, allowed in choices.items():
        require_choice(f"{prefix}{key}", getattr(obj, key), allowed)


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of `exc`'s message, at most 200 characters: what a one-line error quotes
    of a library's (often multi-line) exception. Without a message: `default`, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else (default or type(exc).__name__)
