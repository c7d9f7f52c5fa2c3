"""Query strings, read the same strict way on every route that declares a query model.

A query string is text, so each value is read by the type its field declares,
before the model (validated strictly) checks ranges and allowed values:

- an integer is ASCII digits with an optional leading ``-`` and nothing else
  (``0.0``, ``1e2``, ``+3``, `` 3``, ``true`` are not integers); one past 64 bits is
  still an integer, just out of every range (a filter on it finds nothing), but one
  of more than 4,300 digits (leading zeros aside) is refused, as Python's ``int`` is;
- a boolean is ``true`` or ``false``;
- anything else (text, a choice, a cursor) is the value as given, empty included.

A parameter the route knows, given more than once, is 422 whatever its values
(equal ones too): the route cannot tell which one was meant. Parameters the route
does not know are ignored, as most HTTP APIs do. Every problem is reported at
once, as API.md's ``details`` (``{"field": "query.<name>", "message": ...}``).
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from starlette.datastructures import ImmutableMultiDict

from novawrite.errors import ValidationFailed
from novawrite.web.http import validation_details

M = TypeVar("M", bound=BaseModel)

INTEGER = re.compile(r"-?[0-9]+")
BOOLEANS = {"true": True, "false": False}
MAX_DIGITS = 4300  # sys.get_int_max_str_digits()'s default
#: Digits beyond this many stand for a value past every range (their exact value does not matter).
SIGNIFICANT_DIGITS = 30
REPEATED = "Given more than once; give it at most once"
TOO_LONG = f"An integer of more than {MAX_DIGITS} digits"


def parse_query(params: ImmutableMultiDict[str, str], model: type[M]) -> M:
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}  # name -> what is wrong, before the model looks
    for name, field in model.model_fields.items():
        given = params.getlist(name)
        if not given:
            continue
        if len(given) > 1:
            problems[name] = REPEATED
        try:
            values[name] = _typed(given[0], _types(field.annotation))
        except ValueError as error:
            problems.setdefault(name, str(error))
    details = [{"field": f"query.{name}", "message": message} for name, message in problems.items()]
    try:
        parsed = model.model_validate(values, strict=True)
    except ValidationError as error:
        # a parameter reported above is reported once, whatever its (first) value was
        skip = {f"query.{name}" for name in problems}
        details += [d for d in validation_details(error, "query") if d["field"] not in skip]
        raise ValidationFailed(details) from None
    if details:
        raise ValidationFailed(details)
    return parsed


def _typed(raw: str, types_: set[Any]) -> Any:
    """The value ``raw`` stands for, given the types its field accepts; ``raw`` itself when it is none of them
    (the strict model then says what was expected). ValueError: an integer too long to read."""
    if bool in types_ and raw in BOOLEANS:
        return BOOLEANS[raw]
    if int in types_ and INTEGER.fullmatch(raw):
        sign, digits = ("-", raw[1:]) if raw.startswith("-") else ("", raw)
        digits = digits.lstrip("0") or "0"
        if len(digits) > MAX_DIGITS:
            raise ValueError(TOO_LONG)
        value = int(digits) if len(digits) <= SIGNIFICANT_DIGITS else 10**SIGNIFICANT_DIGITS
        return -value if sign else value
    return raw


def _types(annotation: Any) -> set[Any]:
    """The plain types an annotation accepts: ``Annotated[int, ...] | None`` is {int, NoneType};
    a ``Literal`` counts as the types of its values."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _types(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return {t for arg in get_args(annotation) for t in _types(arg)}
    if origin is Literal:
        return {type(value) for value in get_args(annotation)}
    return {annotation}
