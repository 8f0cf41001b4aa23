"""Edit a release file's text the way a person would: weights, images, replicas, versions.

Each edit takes the file's text and returns the new text; nothing touches the disk or git.
The change is spliced into the text as written (`splice`), which keeps a canary's pull
request a one-line diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruamel.yaml.nodes import MappingNode

from meshcanary.names import is_dns_label
from meshcanary.release.splice import (
    PAIR_SEPARATOR,
    Doc,
    EditRefused,
    Splice,
    collect,
    end_of,
    entry_end,
    find,
    flow_mapping,
    flow_separator,
    int_text,
    is_empty,
    key_indent,
    line_break,
    line_start,
    lookup,
    parse,
    refuse_shared,
    scalar_span,
    spliced,
    start_of,
    string_text,
    version_names,
    version_node,
    versions_node,
)

# The order `add_version` writes a version's fields in, and where a missing field is inserted.
FIELD_ORDER = ("image", "replicas", "weight")


def check_weight(name: str, weight: object) -> int:
    """`weight` when it is a percentage a version can get."""
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise EditRefused(
            f"the weight of {name} must be a whole number from 0 to 100, not {weight!r}"
        )
    return weight


def check_replicas(name: str, replicas: object) -> int:
    """`replicas` when it is a count of pods."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise EditRefused(
            f"the replicas of {name} must be a whole number, 0 or more, not {replicas!r}"
        )
    return replicas


def check_image(name: str, image: object) -> str:
    """`image` when it is one line of printable text."""
    if not isinstance(image, str) or not image or not image.isprintable():
        raise EditRefused(f"the image of {name} must be one line of text, not {image!r}")
    return image


def check_version_name(version: str) -> None:
    """Refuse a version name that cannot name Kubernetes objects (a DNS-1123 label)."""
    if not isinstance(version, str) or not is_dns_label(version):
        raise EditRefused(
            f'version name "{version}" is not a DNS-1123 label '
            "(lower-case letters, digits and '-', at most 63 characters)"
        )


def set_weights(text: str, weights: Mapping[str, int]) -> str:
    """Set `versions.<v>.weight` of each named version; other text stays byte for byte.

    Does not check that the weights sum to 100: the planners in `traffic` decide the weights.
    """
    doc = parse(text)
    splices: list[Splice] = []
    for name, weight in weights.items():
        splices.extend(_set_field(doc, name, "weight", check_weight(name, weight)))
    return spliced(text, splices)


def set_image(text: str, version: str, image: str) -> str:
    """Set `versions.<version>.image`, keeping its quoting."""
    doc = parse(text)
    return spliced(text, _set_field(doc, version, "image", check_image(version, image)))


def set_replicas(text: str, version: str, replicas: int) -> str:
    """Set `versions.<version>.replicas`; added after the image when the version has none."""
    doc = parse(text)
    return spliced(text, _set_field(doc, version, "replicas", check_replicas(version, replicas)))


def add_version(text: str, version: str, image: str, weight: int, replicas: int | None) -> str:
    """Append `version` as the last entry of `versions:`, written like the entry before it."""
    check_version_name(version)
    check_image(version, image)
    check_weight(version, weight)
    if replicas is not None:
        check_replicas(version, replicas)
    doc = parse(text)
    versions = versions_node(doc)
    if version in version_names(versions):
        raise EditRefused(f'version "{version}" already exists')
    last_key, last_value = versions.value[-1]
    if isinstance(last_value, MappingNode) and not last_value.flow_style:
        flow = False
        sibling_image = lookup(last_value, "image")
    else:
        flow = True
        sibling_image = lookup(last_value, "image") if isinstance(last_value, MappingNode) else None
    fields = [("image", string_text(image, sibling_image[1] if sibling_image else None, flow))]
    if replicas is not None:
        fields.append(("replicas", str(replicas)))
    fields.append(("weight", str(weight)))
    name = string_text(version, last_key, bool(versions.flow_style))

    if versions.flow_style:
        entry = f"{name}: {flow_mapping(text, last_value, fields)}"
        separator = flow_separator(text, versions)
        if len(versions.value) >= 2:
            gap = text[end_of(versions.value[-2][1]) : start_of(last_key)]
            separator = gap if PAIR_SEPARATOR.fullmatch(gap) and "#" not in gap else separator
        end = end_of(last_value)
        return spliced(text, [Splice(end, end, separator + entry)])

    indent = key_indent(text, last_key)
    if flow:
        lines = [f"{indent}{name}: {flow_mapping(text, last_value, fields)}"]
    else:
        inner = key_indent(text, last_value.value[0][0])
        lines = [f"{indent}{name}:"] + [f"{inner}{field}: {value}" for field, value in fields]
    position = entry_end(text, last_key, last_value)
    eol = line_break(text, start_of(last_key))
    if position == len(text) and not text.endswith("\n"):
        insertion = eol + eol.join(lines)
    else:
        insertion = eol.join(lines) + eol
    return spliced(text, [Splice(position, position, insertion)])


def remove_version(text: str, version: str) -> str:
    """Remove `version`'s entry: its lines, and comment lines attached above it.

    Comment lines directly above the entry, at its indentation, go with it only when a blank
    line sets them apart from what comes before: then they read as the entry's own heading. Right under `versions:` or right under the previous entry they may as well
    be about the list or the previous entry, so they stay. Comment lines indented under the
    entry go with it.

    Refused while a match rule or the mirror names the version, or while it has traffic.
    """
    doc = parse(text)
    versions = versions_node(doc)
    names = version_names(versions)
    if version not in names:
        raise EditRefused(f'unknown version "{version}" (the release has {", ".join(names)})')
    if len(names) == 1:
        raise EditRefused(f'version "{version}" is the only version; a release needs one')
    users: list[str] = []
    for index, rule in enumerate(doc.data.get("match") or []):
        if isinstance(rule, Mapping) and rule.get("version") == version:
            label = f' ("{rule["name"]}")' if "name" in rule else ""
            users.append(f"match rule {index + 1}{label}")
    mirror = doc.data.get("mirror")
    if isinstance(mirror, Mapping) and mirror.get("version") == version:
        users.append("the mirror")
    if users:
        raise EditRefused(
            f'version "{version}" is still named by {" and ".join(users)}; '
            "remove them or point them at another version first"
        )
    weight = doc.data["versions"][version].get("weight") if doc.data.get("versions") else None
    if isinstance(weight, int) and not isinstance(weight, bool) and weight > 0:
        raise EditRefused(
            f'version "{version}" still receives {weight}% of the traffic; '
            "move its weight to the other versions first"
        )
    index = names.index(version)
    key, value = versions.value[index]
    _check_removable(doc, value, version)

    if versions.flow_style:
        if index > 0:
            start, end = end_of(versions.value[index - 1][1]), end_of(value)
        else:
            start, end = start_of(key), start_of(versions.value[1][0])
        return spliced(text, [Splice(start, end, "")])

    indent = key_indent(text, key)
    start = _attached_comments(text, line_start(text, start_of(key)), indent)
    end = entry_end(text, key, value)
    if end == len(text) and not text.endswith("\n") and start > 0:
        # The entry was the last line and had no line break: keep the file ending the same way.
        start -= 2 if text[start - 2 : start] == "\r\n" else 1
    return spliced(text, [Splice(start, end, "")])


def _same(current: object, value: object) -> bool:
    return (
        type(value) is not bool
        and not isinstance(current, bool)
        and isinstance(current, type(value))
        and current == value
    )


def _set_field(doc: Doc, version: str, field: str, value: int | str) -> list[Splice]:
    key, mapping = version_node(doc, version)
    current = doc.data["versions"][version].get(field)
    if _same(current, value):
        return []
    flow = bool(mapping.flow_style)
    found = lookup(mapping, field)
    if found is None:
        written = string_text(value, None, flow) if isinstance(value, str) else str(value)
        return [_insert_field(doc.text, key, mapping, field, written)]
    field_key, node = found
    what = f"{version}.{field}"
    refuse_shared(doc, node, what)
    written = string_text(value, node, flow) if isinstance(value, str) else int_text(value, node)
    if is_empty(node):
        colon = find(doc.text, ":", end_of(field_key), what)
        return [Splice(colon + 1, colon + 1, " " + written)]
    start, end = scalar_span(doc.text, node, what)
    return [Splice(start, end, written)]


def _insert_field(text: str, key: Any, mapping: Any, field: str, written: str) -> Splice:
    """A new `field: value` pair in a version's mapping, placed in FIELD_ORDER."""
    rank = FIELD_ORDER.index(field)
    before = [
        (k, v)
        for k, v in mapping.value
        if k.value in FIELD_ORDER and FIELD_ORDER.index(k.value) < rank
    ]
    first_key = mapping.value[0][0] if mapping.value else None
    if mapping.flow_style:
        separator = flow_separator(text, mapping)
        if before:
            end = end_of(before[-1][1])
            return Splice(end, end, f"{separator}{field}: {written}")
        if first_key is not None:
            start = start_of(first_key)
            return Splice(start, start, f"{field}: {written}{separator}")
        brace = find(text, "{", start_of(mapping), f"version {key.value}")
        return Splice(brace + 1, brace + 1, f"{field}: {written}")
    if first_key is None:  # pragma: no cover - an empty block mapping is written {}
        raise EditRefused(f'version "{key.value}" has no fields')
    indent = key_indent(text, first_key)
    # After the fields that come before it; else as the first line of the mapping.
    position = entry_end(text, *before[-1]) if before else line_start(text, start_of(first_key))
    eol = line_break(text, start_of(first_key))
    line = f"{indent}{field}: {written}"
    if position == len(text) and not text.endswith("\n"):
        return Splice(position, position, eol + line)
    return Splice(position, position, line + eol)


def _check_removable(doc: Doc, value: Any, version: str) -> None:
    """Refuse to remove an entry holding a node that an alias or merge key also reaches."""
    inside: set[int] = set()
    collect(value, inside, set())
    if inside & doc.shared:
        raise EditRefused(
            f'version "{version}" uses or defines a YAML anchor that is also used elsewhere; '
            "edit the file by hand"
        )


def _attached_comments(text: str, start: int, indent: str) -> int:
    top = start
    while top > 0:
        above = line_start(text, top - 1)
        line = text[above:top].rstrip("\r\n")
        if not (line.startswith(indent) and line[len(indent) :].startswith("#")):
            break
        top = above
    if top == start or top == 0:
        return start
    above = line_start(text, top - 1)
    return top if text[above:top].strip() == "" else start
