"""PyYAML's values as Kubernetes reads them, for tests that hold a loader to PyYAML's."""

from __future__ import annotations

from typing import Any


def json_keys(value: Any) -> Any:
    """What sigs.k8s.io/yaml makes of PyYAML's value: every mapping key a string."""
    if isinstance(value, dict):
        return {_json_key(k): json_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_keys(v) for v in value]
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def entries(value: Any) -> int:
    """How many keys and items `value` holds, all the way down: fewer in PyYAML's value than
    in ours when PyYAML merged two keys (`0` and `False`) that Kubernetes keeps apart."""
    if isinstance(value, dict):
        return len(value) + sum(map(entries, value.values()))
    if isinstance(value, list):
        return len(value) + sum(map(entries, value))
    return 0
