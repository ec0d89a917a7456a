"""A small TOML writer (``tomllib`` only reads): :func:`dump_toml` and the value formatting.

Used for the resolved config that every run stores
(:meth:`kmdflow.experiments.config.Config.to_toml`) and for showing values in
:class:`~kmdflow.experiments.config.ConfigError` messages.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping

__all__ = ["dump_toml", "toml_key", "toml_scalar"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_key(key: str) -> str:
    """``key`` as a TOML key: bare when it is made of ``A-Za-z0-9_-``, else a quoted string."""
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_scalar(value) -> str:
    """A bool, int, float, string or (nested) array of those as one line of TOML value syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")


def _is_table_array(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, Mapping) for v in value)


def dump_toml(document: Mapping) -> str:
    """Write a dict of tables as TOML text.

    Parameters
    ----------
    document : Mapping
        Values may be bools, ints, floats, strings, arrays of those, tables (dicts) and arrays of
        tables (lists of dicts); ``None`` values are left out (TOML has no null).

    Returns
    -------
    str
        Text that ``tomllib.loads`` reads back to ``document`` (minus the ``None`` entries).
    """
    lines: list[str] = []
    _emit(document, [], lines, header=None)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit(table: Mapping, path: list[str], lines: list[str], header: str | None) -> None:
    if header is not None:
        lines.extend(["", header])
    nested = []
    for key, value in table.items():
        if value is None:
            continue
        if isinstance(value, Mapping) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{toml_key(key)} = {toml_scalar(value)}")
    for key, value in nested:
        sub = [*path, toml_key(key)]
        if isinstance(value, Mapping):
            _emit(value, sub, lines, f"[{'.'.join(sub)}]")
        else:
            for item in value:
                _emit(item, sub, lines, f"[[{'.'.join(sub)}]]")
