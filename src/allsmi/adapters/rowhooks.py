"""Generated structure hooks for the model's row classes, for the codec's fast converter.

Structuring rows is the hot path of both the remote recorder (every host, every cycle) and
the replay (a 100-host frame holds ~1,700 rows and ~6,400 per-core entries). cattrs' own
generated hooks call one hook function per field; for the primitive fields — almost all of
them — this module writes the check inline instead, so a row costs one function call and
the class's ``__init__``. It is a cattrs hook factory: the converter, its dispatch and the
hooks of every non-primitive field (tuples of rows, dicts, literals, nested rows) stay
cattrs'.

Rules the generated code obeys (the same as the fast converter's per-field hooks):
- ``int``: an ``int`` within :data:`INT_MIN`..:data:`INT_MAX` passes; anything else goes
  through ``int()`` and the bounds, raising when it cannot;
- ``float``/``str``: passes when already that type, else ``float()``/``str()``;
- ``bool``: ``true``/``false`` or 0/1 (:func:`to_bool`); ``X | None`` lets ``None`` through;
- a missing key takes the field's default (a factory is called); a missing required key
  raises ``KeyError``; unknown keys are ignored.
Any exception means "not a valid row": the codec then asks the detailed converter, whose
error says exactly what is wrong.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, Final

import attrs
import cattrs

from allsmi.domain.model import INT_MAX, INT_MIN, bounded_int

__all__ = ["is_plain_row", "row_hook_factory", "to_bool", "to_int"]

_MISSING: Final = object()
_NONE: Final = type(None)
_PRIMITIVES: Final = (int, float, str, bool)


def to_int(value: Any, _: object = None) -> int:
    """An integer reading within what JSON round-trips (:func:`bounded_int`); absurd ones,
    and anything ``int()`` cannot read, make the row invalid."""
    number = value if type(value) is int else int(value)
    if bounded_int(number) is None:
        raise ValueError(f"integer {number} out of range")
    return number


def to_bool(value: Any, _: object = None) -> bool:
    """A JSON ``true``/``false``, or 0/1. Anything else is not a boolean reading (and never
    an ``int`` in its place: ``bool`` is a subclass of ``int``, so a converter without this
    hook would hand booleans to the integer hook and write ``1`` back)."""
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


def is_plain_row(cls: Any) -> bool:
    """An attrs class whose fields are all plain ``__init__`` parameters, in order."""
    if not (isinstance(cls, type) and attrs.has(cls)):
        return False
    return all(f.init and not f.kw_only and f.alias == f.name for f in attrs.fields(cls))


def _primitive(kind: Any) -> tuple[type, bool] | None:
    """``(T, optional)`` for ``T`` and ``T | None`` with ``T`` a primitive, else None."""
    if kind in _PRIMITIVES:
        return kind, False
    args = typing.get_args(kind)
    if len(args) == 2 and _NONE in args:
        (inner,) = (a for a in args if a is not _NONE)
        if inner in _PRIMITIVES:
            return inner, True
    return None


def _check(kind: type, optional: bool) -> str:
    """The expression turning ``v`` into a valid ``kind`` (or raising)."""
    name = kind.__name__
    if kind is int:
        # the bounds of bounded_int inline: this runs for every integer field of every row
        expr = f"v if type(v) is int and {INT_MIN} <= v <= {INT_MAX} else _to_int(v)"
    elif kind is bool:
        expr = "v if type(v) is bool else _to_bool(v)"
    else:
        expr = f"v if type(v) is {name} else {name}(v)"
    return f"None if v is None else ({expr})" if optional else expr


def row_hook_factory(converter: cattrs.Converter) -> Callable[[Any], Any]:
    """A ``register_structure_hook_factory`` factory generating one hook per row class."""

    def make(cls: Any) -> Any:
        fields = attrs.fields(attrs.resolve_types(cls))
        namespace: dict[str, Any] = {
            "_cls": cls,
            "_MISSING": _MISSING,
            "_to_int": to_int,
            "_to_bool": to_bool,
        }
        body: list[str] = []
        for i, field in enumerate(fields):
            key = repr(field.name)
            required = field.default is attrs.NOTHING
            primitive = _primitive(field.type)
            if primitive is not None and primitive[1] and field.default is None:
                # an optional reading: absent and null are the same, one lookup does both
                body.append(f"    v = o.get({key})")
                body.append(f"    a{i} = {_check(*primitive)}")
                continue
            body.append(f"    v = o[{key}]" if required else f"    v = o.get({key}, _MISSING)")
            if primitive is not None:
                convert = _check(*primitive)
            else:
                namespace[f"_h{i}"] = converter.get_structure_hook(field.type)
                namespace[f"_t{i}"] = field.type
                convert = f"_h{i}(v, _t{i})"
            if required:
                body.append(f"    a{i} = {convert}")
            else:
                if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                    namespace[f"_d{i}"] = field.default.factory
                    default = f"_d{i}()"
                else:
                    namespace[f"_d{i}"] = field.default
                    default = f"_d{i}"
                body.append(f"    a{i} = {default} if v is _MISSING else ({convert})")
        args = ", ".join(f"a{i}" for i in range(len(fields)))
        source = "\n".join(
            [f"def structure_{cls.__name__}(o, _):", *body, f"    return _cls({args})"]
        )
        exec(compile(source, f"<allsmi row hook {cls.__name__}>", "exec"), namespace)
        return namespace[f"structure_{cls.__name__}"]

    return make
