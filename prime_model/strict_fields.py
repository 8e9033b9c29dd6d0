"""Strict scalars for configs read from YAML: numbers as numbers, booleans as booleans.

Pydantic's lax mode reads ``num_layers: yes`` as 1 and ``batch_size: "64"`` as 64; from a
hand-written file both are mistakes. These checks run before pydantic sees the values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from prime_model.errors import ConfigError
from prime_model.text import shown


def _allowed_scalars(annotation: Any) -> tuple[set[type], bool]:
    """The scalar types an annotation admits, and whether it admits anything else too (str-like).

    Unions, Optionals, ``Annotated`` and ``Literal`` are unwrapped; anything unknown counts as
    "anything else", so the strict check only ever refuses a bool or string for a number field.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        return _allowed_scalars(get_args(annotation)[0])
    if origin in (Union, UnionType):
        scalars: set[type] = set()
        other = False
        for arg in get_args(annotation):
            more, more_other = _allowed_scalars(arg)
            scalars |= more
            other = other or more_other
        return scalars, other
    if origin is Literal:
        return {type(arg) for arg in get_args(annotation)}, False
    if annotation in (int, float, bool, str, type(None)):
        return {annotation}, False
    return set(), True


def strict_scalars(cls: type[BaseModel], data: Mapping[str, Any], where: str) -> None:
    """Refuse a YAML bool or string where ``cls`` wants a number, and a string for a bool.

    Pydantic's lax mode reads ``num_layers: yes`` as 1 and ``batch_size: "64"`` as 64; from a
    hand-written file both are mistakes, so a YAML config must give numbers as numbers.
    """
    strict_values({name: f.annotation for name, f in cls.model_fields.items()}, data, where)


def strict_values(annotations: Mapping[str, Any], data: Mapping[str, Any], where: str) -> None:
    """:func:`strict_scalars` for any name -> annotation table (a pipeline's parameters)."""
    for name, value in data.items():
        if not isinstance(name, str) or name not in annotations:
            continue  # unknown keys are pydantic's to refuse, with its message
        annotation = annotations[name]
        nested = _model_in(annotation)
        if nested is not None and isinstance(value, dict):
            strict_scalars(nested, value, f"{where}.{name}")
            continue
        scalars, other = _allowed_scalars(annotation)
        if other or not scalars & {int, float, bool}:
            continue
        numbers = [kind.__name__ for kind in (int, float) if kind in scalars]
        expected = " or ".join(numbers) if numbers else "bool (true/false)"
        if isinstance(value, bool) and bool not in scalars:
            raise ConfigError(
                f"{where}.{name}: got the boolean {value!r} (YAML reads yes/no/on/off/true/false "
                f"as booleans); expected {expected}"
            )
        if isinstance(value, str) and str not in scalars:
            raise ConfigError(
                f"{where}.{name}: got the string {shown(value)}; expected {expected}, "
                "written unquoted in YAML"
            )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation is, or is Optional of."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, UnionType):
        models = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(models) == 1:
            return _model_in(models[0])
    return None
