"""The config's error type and the validators of single values.

:class:`ConfigError` locates a problem by its dotted key, shows the value and says the fix, in one
line. The validators map ``(dotted key, raw value)`` to the normalised value or raise it; the
factories (:func:`number_in`, :func:`integer_in`, :func:`choice_of`, :func:`optional`) build them
from a range or a list of choices. The tables that use them are in
:mod:`kmdflow.experiments.config_schema`.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable, Mapping

from kmdflow.experiments.toml_writer import toml_scalar

# --------------------------------------------------------------------------------------------
# Errors and one-line display of values


class ConfigError(ValueError):
    """A problem with a configuration, located by its dotted key.

    Parameters
    ----------
    key : str
        Dotted key (``"time.t_end"``, ``"initial.positions[2]"``), a file name or a CLI option.
    message : str
        What is wrong and how to fix it.
    value : object, optional
        The offending value, shown in TOML syntax by ``str(error)``.

    Notes
    -----
    ``str(error)`` is always one line: ``"time.t_end = -1.0: must be > 0; set a positive end
    time"``, or ``"key: message"`` when there is no value to show.
    """

    def __init__(self, key: str, message: str, *value: object):
        self.key = str(key)
        self.message = " ".join(str(message).split())
        self.has_value = bool(value)
        self.value = value[0] if value else None
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.has_value:
            return f"{self.key} = {show(self.value)}: {self.message}"
        return f"{self.key}: {self.message}"

    def __reduce__(self):
        return (type(self), (self.key, self.message) + ((self.value,) if self.has_value else ()))


def show(value: object, limit: int = 60, depth: int = 0) -> str:
    """Short one-line TOML-like text for ``value`` (for error messages)."""
    if isinstance(value, (list, tuple)) and depth < 3:
        items = [show(v, limit, depth + 1) for v in list(value)[:6]]
        text = "[" + ", ".join(items) + (", ...]" if len(value) > 6 else "]")
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(str(k) for k in list(value)[:6]) + (", ...}" if len(value) > 6 else "}")
    elif isinstance(value, (bool, int, float, str)):
        text = toml_scalar(value)
    else:
        text = repr(value)
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if value is None:
        return "nothing (None)"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a float"
    return f"a {type(value).__name__}"


def suggest(word: str, candidates) -> str:
    near = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}? " if near else ""


def quoted(options) -> str:
    return ", ".join(f'"{o}"' for o in options)


# --------------------------------------------------------------------------------------------
# Scalar validators: (dotted key, raw value) -> normalised value, or ConfigError


def as_float(key: str, value: object, what: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fix = "remove the quotes" if isinstance(value, str) and _parses_as_float(value) else \
            "write a number"
        raise ConfigError(key, f"expected {what}, got {type_name(value)}; {fix}", value)
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError):
        raise ConfigError(key, "is too large for a float; write a smaller number", value) from None
    if not math.isfinite(number):
        raise ConfigError(key, f"must be a finite number (not nan or inf); write {what}", value)
    return number


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def as_int(key: str, value: object, what: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fix = "write a whole number without a decimal point" if isinstance(value, float) \
            else "write a whole number"
        raise ConfigError(key, f"expected {what}, got {type_name(value)}; {fix}", value)
    return int(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def _bounds(gt, ge, lt, le) -> str:
    """``"> 0 and < 1"``-style text for the given bounds ('' when unbounded)."""
    parts = [f"{op} {_fmt(b)}" for op, b in ((">", gt), (">=", ge), ("<", lt), ("<=", le)) if b is not None]
    return " and ".join(parts)


def _range_text(gt, ge, lt, le) -> str:
    return "must be " + _bounds(gt, ge, lt, le)


def _in_range(x: float, gt, ge, lt, le) -> bool:
    return ((gt is None or x > gt) and (ge is None or x >= ge)
            and (lt is None or x < lt) and (le is None or x <= le))


def number_in(gt=None, ge=None, lt=None, le=None, fix: str = "") -> Callable[[str, object], float]:
    """Validator for a finite float in the given range."""

    what = f"a number {_bounds(gt, ge, lt, le)}".rstrip()

    def validate(key: str, value: object) -> float:
        x = as_float(key, value, what)
        if not _in_range(x, gt, ge, lt, le):
            raise ConfigError(key, _range_text(gt, ge, lt, le) + (f"; {fix}" if fix else ""), value)
        return x

    return validate


def integer_in(ge=None, le=None, fix: str = "") -> Callable[[str, object], int]:
    """Validator for an integer in ``[ge, le]``."""

    what = f"an integer {_bounds(None, ge, None, le)}".rstrip()

    def validate(key: str, value: object) -> int:
        n = as_int(key, value, what)
        if not _in_range(n, None, ge, None, le):
            raise ConfigError(key, _range_text(None, ge, None, le) + (f"; {fix}" if fix else ""), value)
        return n

    return validate


def choice_of(options: tuple[str, ...], reserved: Mapping[str, str] | None = None):
    """Validator for one of ``options``; ``reserved`` names planned ones with their message."""
    reserved = reserved or {}

    def validate(key: str, value: object) -> str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {type_name(value)}; choose one of "
                              f"{quoted(options)}", value)
        if value in options:
            return value
        if value in reserved:
            raise ConfigError(key, f"not yet supported ({reserved[value]}); use {quoted(options)}",
                              value)
        raise ConfigError(key, f"unknown choice; {suggest(value, [*options, *reserved])}"
                          f"choose one of {quoted(options)}", value)

    return validate


def nonempty_string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {type_name(value)}; write it in quotes", value)
    if not value.strip():
        raise ConfigError(key, "must not be empty", value)
    return value


def optional(validate):
    """Allow ``None`` (key unset; only reachable from dict input, TOML has no null)."""
    return lambda key, value: None if value is None else validate(key, value)


#: The largest sphere dimension ``d`` of ``S^d`` a config may ask for.
MAX_SPHERE_DIM = 8


def domain_dim(key: str, value: object) -> int:
    """``domain.dim``: 1, 2 or 3 on the torus, up to :data:`MAX_SPHERE_DIM` on the sphere (the
    torus limit is checked once ``domain.kind`` is known)."""
    dim = as_int(key, value)
    if not 1 <= dim <= MAX_SPHERE_DIM:
        raise ConfigError(key, f"dim must be 1, 2 or 3 on the torus (T^1, T^2, T^3) and 1 .. "
                          f"{MAX_SPHERE_DIM} on the sphere (S^d)", value)
    return dim
