"""Request validation driven by botocore's own service models (SageMaker, Tagging, STS).

The service model is the most faithful local copy of what AWS enforces: required
members, enums (``ProductionVariantInstanceType``), lengths, patterns and
numeric ranges. We compile each operation's input shape once into a small
tree of :class:`Rule` and check requests against it, reporting violations in
AWS's format::

    2 validation errors detected: Value 'ml.g5.12xlarg' at
    'productionVariants.1.member.instanceType' failed to satisfy constraint:
    Member must satisfy enum value set: [...]; Value null at 'endpointName' ...
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.model import Shape

from .errors import ApiError

# AWS shapes use Java regex classes that Python's ``re`` lacks. These ranges are
# approximations (wide enough never to reject real tag text), documented as such.
_JAVA_CLASSES = {
    r"\p{L}": r"a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\uffff",
    r"\p{Z}": r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
    r"\p{N}": r"0-9\u00b2\u00b3\u00b9\u00bc-\u00be\u0660-\u0669\uff10-\uff19",
}

_NUMERIC = {"integer", "long", "float", "double"}


@dataclass
class Rule:
    """One shape, reduced to what validation needs."""

    type_name: str
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    regex: re.Pattern[str] | None = None
    enum: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    members: dict[str, Rule] = field(default_factory=dict)
    item: Rule | None = None  # list member
    key: Rule | None = None  # map key
    value: Rule | None = None  # map value


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """Python regex for an AWS (Java) pattern, or None when it cannot be expressed."""
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error:
        return None


def _compile(shape: Shape, seen: dict[str, Rule]) -> Rule:
    # Shapes can be recursive (and are shared): compile each name once.
    if shape.name in seen:
        return seen[shape.name]
    meta = shape.metadata
    rule = Rule(type_name=shape.type_name, min=meta.get("min"), max=meta.get("max"))
    seen[shape.name] = rule
    if shape.type_name == "string":
        rule.enum = tuple(getattr(shape, "enum", None) or ())
        if meta.get("pattern"):
            rule.pattern = meta["pattern"]
            rule.regex = compile_pattern(meta["pattern"])
    elif shape.type_name == "structure":
        rule.required = tuple(shape.required_members)
        rule.members = {n: _compile(s, seen) for n, s in shape.members.items()}  # type: ignore[attr-defined]
    elif shape.type_name == "list":
        rule.item = _compile(shape.member, seen)  # type: ignore[attr-defined]
    elif shape.type_name == "map":
        rule.key = _compile(shape.key, seen)  # type: ignore[attr-defined]
        rule.value = _compile(shape.value, seen)  # type: ignore[attr-defined]
    return rule


@functools.cache
def _service_model(service: str = "sagemaker") -> Any:
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def input_rule(operation: str, service: str = "sagemaker") -> Rule:
    """The compiled input shape of ``operation`` (raises KeyError-like botocore errors if unknown)."""
    shape = _service_model(service).operation_model(operation).input_shape
    if shape is None:
        return Rule(type_name="structure")
    return _compile(shape, {})


def known_operations(service: str = "sagemaker") -> frozenset[str]:
    return frozenset(_service_model(service).operation_names)


def _wire_name(member: str) -> str:
    # AWS reports paths in lowerCamelCase: EndpointName -> endpointName.
    return member[:1].lower() + member[1:]


def _show(value: Any) -> str:
    return "null" if value is None else f"'{value}'"


def _type_ok(rule: Rule, value: Any) -> bool:
    if rule.type_name == "structure":
        return isinstance(value, dict)
    if rule.type_name == "list":
        return isinstance(value, list)
    if rule.type_name == "map":
        return isinstance(value, dict)
    if rule.type_name in ("string", "blob"):
        return isinstance(value, str)
    if rule.type_name == "boolean":
        return isinstance(value, bool)
    if rule.type_name in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if rule.type_name in _NUMERIC or rule.type_name == "timestamp":
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    return True


def _check(rule: Rule, value: Any, path: str, out: list[str]) -> None:
    def fail(constraint: str) -> None:
        out.append(f"Value {_show(value)} at '{path}' failed to satisfy constraint: Member must {constraint}")

    if not _type_ok(rule, value):
        fail(f"be of type {rule.type_name}")
        return
    if rule.type_name in ("string", "list", "map", "blob"):
        size = len(value)
        if rule.min is not None and size < rule.min:
            fail(f"have length greater than or equal to {int(rule.min)}")
        if rule.max is not None and size > rule.max:
            fail(f"have length less than or equal to {int(rule.max)}")
    if rule.type_name == "string":
        if rule.enum and value not in rule.enum:
            fail(f"satisfy enum value set: [{', '.join(rule.enum)}]")
        if rule.regex is not None and not rule.regex.fullmatch(value):
            fail(f"satisfy regular expression pattern: {rule.pattern}")
    elif rule.type_name in _NUMERIC:
        if rule.min is not None and value < rule.min:
            fail(f"have value greater than or equal to {_number(rule.min)}")
        if rule.max is not None and value > rule.max:
            fail(f"have value less than or equal to {_number(rule.max)}")
    elif rule.type_name == "structure":
        for name in rule.required:
            if value.get(name) is None:
                out.append(
                    f"Value null at '{_join(path, _wire_name(name))}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member_value in value.items():
            member_rule = rule.members.get(name)
            # Unknown members are ignored, as AWS's JSON protocol does.
            if member_rule is not None and member_value is not None:
                _check(member_rule, member_value, _join(path, _wire_name(name)), out)
    elif rule.type_name == "list" and rule.item is not None:
        for index, item in enumerate(value, start=1):
            _check(rule.item, item, f"{path}.{index}.member", out)
    elif rule.type_name == "map" and rule.key is not None and rule.value is not None:
        for map_key, map_value in value.items():
            _check(rule.key, map_key, f"{path}.key", out)
            _check(rule.value, map_value, f"{path}.{map_key}", out)


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def violations(operation: str, params: Any, service: str = "sagemaker") -> list[str]:
    """Every constraint ``params`` breaks, each in AWS's wording (empty when valid)."""
    out: list[str] = []
    _check(input_rule(operation, service), params, "", out)
    return out


def validate(operation: str, params: Any, service: str = "sagemaker", code: str = "ValidationException") -> None:
    """Raise AWS's ``ValidationException`` (or the service's own ``code``) listing every violation, as AWS does."""
    found = violations(operation, params, service)
    if found:
        noun = "error" if len(found) == 1 else "errors"
        raise ApiError(code, f"{len(found)} validation {noun} detected: " + "; ".join(found))


@functools.cache
def _output_shape(operation: str, service: str) -> Shape | None:
    shape: Shape | None = _service_model(service).operation_model(operation).output_shape
    return shape


def response_violations(operation: str, data: Any, service: str = "sagemaker", wire: bool = True) -> list[str]:
    """How a response breaks ``operation``'s output shape in botocore's model (empty when it conforms).

    Stricter than request validation: members the model does not declare, missing required
    members, wrong types and values outside an enum are all reported. ``wire=True`` checks a
    JSON body as sent (timestamps are epoch-second numbers, blobs base64 strings); ``wire=False``
    checks what botocore parsed (timestamps are datetimes) -- for XML protocols. Members bound
    to HTTP headers, the status code or the payload are left to the caller."""
    shape = _output_shape(operation, service)
    out: list[str] = []
    if shape is None:
        if data not in ({}, None):
            out.append(f"{operation} has no output shape, got {data!r}")
        return out
    _check_output(shape, data, operation, out, wire, top=True)
    return out


def _check_output(shape: Shape, value: Any, path: str, out: list[str], wire: bool, top: bool = False) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            out.append(f"{path}: expected a structure, got {type(value).__name__}")
            return
        members = shape.members  # type: ignore[attr-defined]
        for name in shape.required_members:
            if value.get(name) is None and (not top or members[name].serialization.get("location") is None):
                out.append(f"{path}.{name}: required by the model, missing")
        for name, member_value in value.items():
            if top and name == "ResponseMetadata" and not wire:
                continue
            member = members.get(name)
            if member is None:
                out.append(f"{path}.{name}: not a member of {shape.name}")
            elif member_value is not None:
                _check_output(member, member_value, f"{path}.{name}", out, wire)
    elif kind == "list":
        if not isinstance(value, list):
            out.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            _check_output(shape.member, item, f"{path}[{index}]", out, wire)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            out.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check_output(shape.key, key, f"{path}<key>", out, wire)  # type: ignore[attr-defined]
            _check_output(shape.value, item, f"{path}[{key!r}]", out, wire)  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            out.append(f"{path}: expected a string, got {value!r}")
        elif getattr(shape, "enum", None) and value not in shape.enum:  # type: ignore[attr-defined]
            out.append(f"{path}: {value!r} is not one of {shape.enum}")  # type: ignore[attr-defined]
    elif kind == "boolean":
        if not isinstance(value, bool):
            out.append(f"{path}: expected a boolean, got {value!r}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: expected an integer, got {value!r}")
    elif kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(f"{path}: expected a number, got {value!r}")
    elif kind == "timestamp":
        if wire and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            out.append(f"{path}: expected epoch seconds (a JSON number), got {value!r}")
        if not wire and not isinstance(value, datetime.datetime):
            out.append(f"{path}: expected a timestamp, got {value!r}")
    elif kind == "blob" and wire and not isinstance(value, str):
        out.append(f"{path}: expected base64 text, got {value!r}")


def has_output(operation: str, service: str = "sagemaker") -> bool:
    """Whether ``operation`` declares an output shape (RPC v2 answers an empty body otherwise)."""
    return _output_shape(operation, service) is not None
