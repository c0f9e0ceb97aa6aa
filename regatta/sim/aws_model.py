"""EKS requests checked against botocore's own service model, as the EKS front end checks them:
required members, types, enums, lengths, ranges and patterns of every member, including those
botocore's client-side validator leaves to the server (it checks only `required` and `min`, so a
`maxResults=101` or a taint effect of `NoSchedule` reaches the service and is refused there).

Used by the simulated EKS API (regatta/sim/eks_api.py): each route gathers the request's members
from the path, the query string and the JSON body the way the model places them, and a member that
breaks its shape is answered 400 InvalidParameterException in the words AWS's validation uses
("1 validation error detected: Value ... at '...' failed to satisfy constraint: ...").
Source: botocore/data/eks/2017-11-01/service-2.json (docs/cloud-conformance.md, EKS table).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape

from regatta.sim.world import SimError


@functools.cache
def _service():
    return botocore.session.get_session().get_service_model("eks")


def operation(name: str) -> OperationModel:
    return _service().operation_model(name)


def gather(name: str, *, path: dict[str, str], query: dict[str, list[str]], body: dict[str, Any]) -> dict[str, Any]:
    """The request's members by their model names, from where the model says each travels."""
    shape = operation(name).input_shape
    members: dict[str, Any] = {}
    if shape is None:
        return members
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire = member_shape.serialization.get("name", member)
        if location == "uri":
            if wire in path:
                members[member] = path[wire]
        elif location == "querystring":
            if wire in query:
                members[member] = _from_query(member_shape, query[wire], where=member)
        elif location == "header":
            continue
        elif member in body:
            members[member] = body[member]
    return members


def _from_query(shape: Shape, values: list[str], *, where: str) -> Any:
    if shape.type_name == "list":
        return list(values)
    value = values[-1]
    if shape.type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise _invalid(where, value, "Member must be a number") from None
    if shape.type_name == "boolean":
        return value.lower() == "true"
    return value


def validate(name: str, members: dict[str, Any]) -> None:
    """Refuse the request as EKS does if a member breaks its shape in the service model."""
    shape = operation(name).input_shape
    if shape is None:
        return
    problems: list[str] = []
    _check_structure(shape, members, "", problems)
    if problems:
        raise SimError(400, "InvalidParameterException",
                       f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: " + "; ".join(problems))


def _invalid(where: str, value: Any, constraint: str) -> SimError:
    return SimError(400, "InvalidParameterException",
                    f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: {constraint}")


def _check_structure(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"Value at '{where}' failed to satisfy constraint: Member must be an object")
        return
    for required in shape.required_members:
        if value.get(required) is None:
            problems.append(f"Value null at '{_join(where, required)}' failed to satisfy constraint: Member must not be null")
    for member, member_shape in shape.members.items():
        if value.get(member) is not None:
            _check(member_shape, value[member], _join(where, member), problems)


def _join(where: str, member: str) -> str:
    return f"{where}.{member}" if where else member


def _check(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        _check_structure(shape, value, where, problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a list")
            return
        _check_size(len(value), meta, value, where, problems, what="length")
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{where}.{index}.member", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a map")
            return
        _check_size(len(value), meta, value, where, problems, what="length")
        for key, item in value.items():
            _check(shape.key, key, f"{where}.{key}.key", problems)
            _check(shape.value, item, f"{where}.{key}.value", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a string")
            return
        enum = meta.get("enum")
        if enum and value not in enum:
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy enum value"
                            f" set: [{', '.join(enum)}]")
        _check_size(len(value), meta, value, where, problems, what="length")
        pattern = meta.get("pattern")
        if pattern and re.search(pattern, value) is None:
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy regular"
                            f" expression pattern: {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a number")
            return
        _check_size(value, meta, value, where, problems, what="value")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a boolean")


def _check_size(size: int, meta: dict, value: Any, where: str, problems: list[str], *, what: str) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and size < low:
        problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have {what} greater than"
                        f" or equal to {low}")
    if high is not None and size > high:
        problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have {what} less than or"
                        f" equal to {high}")
