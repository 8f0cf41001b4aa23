"""Edit release files the way a person would: weights, images, replicas, versions.

The text edits take a release file's text and return the new text; nothing touches the disk or
git. ruamel.yaml only finds where things stand (the start and end offset of each composed
node); the change is spliced into the original text. Comments, blank lines, quoting, flow or
block style, indentation, key order, CRLF line endings and a byte-order mark therefore stay
exactly as written: only the changed scalars (or the lines of an added or removed version)
differ, which keeps a canary's pull request a one-line diff.

The planners compute a release's next weights from the typed model and refuse, with a message
for the person who asked, a request that makes no sense.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from meshcanary.release.model import Release

# The order `add_version` writes a version's fields in, and where a missing field is inserted.
FIELD_ORDER = ("image", "replicas", "weight")

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Tags and anchors written before a scalar (`!!int "70"`, `&w 70`): not part of the value.
_PROPERTIES = re.compile(r"(?:[!&][^\s,\[\]{}]*\s+)*")
_PAIR_SEPARATOR = re.compile(r"[ \t]*,\s*")
_NULL_TAG = "tag:yaml.org,2002:null"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_KEY = "<<"


# --- finding things in the text ---------------------------------------------------------------


@dataclass(frozen=True)
class _Doc:
    """One parsed release file: its text, its composed nodes and its constructed values."""

    text: str
    root: Any  # MappingNode
    data: Any  # CommentedMap
    shared: frozenset[int]  # ids of nodes reached more than once (anchors with aliases, merges)


@dataclass(frozen=True)
class _Splice:
    start: int
    end: int
    text: str


def _parse(text: str) -> _Doc:
    if re.search("\r(?!\n)", text):
        # ruamel counts a lone CR as a line break; the line arithmetic here counts LF only.
        raise ValueError(
            "the file has carriage returns without line feeds; save it with LF or CRLF line endings"
        )
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        root = YAML(typ="rt").compose(text)
        data = yaml.load(text)
    except YAMLError as exc:
        raise ValueError(_yaml_problem(exc)) from None
    if not isinstance(root, MappingNode):
        raise ValueError("a release file holds a mapping at the top level")
    seen: set[int] = set()
    shared: set[int] = set()
    _collect(root, seen, shared)
    return _Doc(text, root, data, frozenset(shared))


def _yaml_problem(exc: YAMLError) -> str:
    # The loader reports these with hints; an edit only sees them if the file changed since.
    if not isinstance(exc, MarkedYAMLError):
        return f"not valid YAML: {exc}"
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or exc.context or "").strip()
    if "duplicate key" in problem:
        problem = problem.split(" with value")[0].removeprefix("found ")
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML{where}: {problem}"


def _collect(node: Any, seen: set[int], shared: set[int]) -> None:
    """Every node under `node` into `seen`; those reached a second time into `shared`."""
    if id(node) in seen:
        shared.add(id(node))
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            _collect(key, seen, shared)
            _collect(value, seen, shared)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _collect(item, seen, shared)


def _get(mapping: Any, key: str) -> tuple[Any, Any] | None:
    for key_node, value in mapping.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key and key != _MERGE_KEY:
            return key_node, value
    return None


def _unshared(doc: _Doc, node: Any, what: str) -> None:
    if id(node) in doc.shared:
        raise ValueError(
            f"{what} is shared through a YAML anchor, alias or merge key; "
            "changing it here would change it everywhere it is used, so edit it by hand"
        )


def _versions(doc: _Doc) -> Any:
    found = _get(doc.root, "versions")
    if found is None or not isinstance(found[1], MappingNode) or not found[1].value:
        raise ValueError("the release file has no versions")
    _unshared(doc, found[1], "versions")
    return found[1]


def _names(versions: Any) -> list[str]:
    return [str(key.value) for key, _ in versions.value]


def _version(doc: _Doc, name: str) -> tuple[Any, Any]:
    versions = _versions(doc)
    for key, value in versions.value:
        if key.value == name:
            if not isinstance(value, MappingNode):
                raise ValueError(f'version "{name}" is not a mapping of image, replicas and weight')
            _unshared(doc, value, f'version "{name}"')
            return key, value
    raise ValueError(f'unknown version "{name}" (the release has {", ".join(_names(versions))})')


def _start(node: Any) -> int:
    index: int = node.start_mark.index
    return index


def _end(node: Any) -> int:
    index: int = node.end_mark.index
    return index


def _is_empty(node: Any) -> bool:
    """A key with nothing after it: ruamel places that null at the next token, lines below."""
    return (
        isinstance(node, ScalarNode)
        and node.tag == _NULL_TAG
        and node.value == ""
        and node.style is None
    )


def _content_end(key: Any, value: Any) -> int:
    """Offset just after the last character written for `key: value` (comments excluded).

    A block collection's own end mark lies at the next token, possibly past comments and
    blank lines, so the end of its last member counts instead.
    """
    if _is_empty(value):
        return _end(key)
    if isinstance(value, MappingNode) and not value.flow_style and value.value:
        return _content_end(*value.value[-1])
    if isinstance(value, SequenceNode) and not value.flow_style and value.value:
        return _content_end(key, value.value[-1])
    return _end(value)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _next_line(text: str, index: int) -> int:
    """Start of the line after the one holding `index` (the end of the text on the last line)."""
    if index > 0 and text[index - 1] == "\n":
        return index  # a block scalar ends after its line break
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def _eol(text: str, index: int) -> str:
    """The line break that ends the line holding `index` (the file's usual one on the last)."""
    found = text.find("\n", index)
    if found < 0:
        return "\r\n" if "\r\n" in text else "\n"
    return "\r\n" if found > 0 and text[found - 1] == "\r" else "\n"


def _indent(text: str, node: Any) -> str:
    """The spaces before a block key, which starts its line."""
    start = _line_start(text, _start(node))
    indent = text[start : _start(node)]
    if indent.strip(" "):
        raise ValueError(
            f'"{node.value}" does not start its line; meshcanary edits block mappings '
            "written one key per line"
        )
    return indent


def _entry_end(text: str, key: Any, value: Any) -> int:
    """Start of the line after a block mapping entry, past comment lines indented under it."""
    column = len(_indent(text, key))
    position = _next_line(text, _content_end(key, value))
    while position < len(text):
        found = text.find("\n", position)
        line_end = len(text) if found < 0 else found + 1
        line = text[position:line_end].rstrip("\r\n")
        body = line.lstrip(" ")
        if not body.startswith("#") or len(line) - len(body) <= column:
            break
        position = line_end
    return position


def _apply(text: str, splices: list[_Splice]) -> str:
    result = text
    limit = len(text)
    for splice in sorted(splices, key=lambda s: (s.start, s.end), reverse=True):
        if splice.end > limit:
            raise RuntimeError("overlapping edits")  # a bug here, not bad input
        result = result[: splice.start] + splice.text + result[splice.end :]
        limit = splice.start
    return result


# --- writing values ---------------------------------------------------------------------------


def _plain_reads_back(value: str, flow: bool) -> bool:
    """Whether `value` written unquoted reads back as the same string where it goes."""
    probe = f"{{k: {value}, z: 0}}\n" if flow else f"k: {value}\n"
    try:
        loaded = YAML(typ="rt").load(probe)
    except YAMLError:
        return False
    expected = ["k", "z"] if flow else ["k"]
    return (
        isinstance(loaded, dict)
        and list(loaded) == expected
        and isinstance(loaded["k"], str)
        and loaded["k"] == value
    )


def _double_quoted(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


def _string_text(value: str, like: Any | None, flow: bool) -> str:
    """`value` written as a scalar in the quoting style of `like` (plain where it can be)."""
    style = like.style if isinstance(like, ScalarNode) else None
    if style == '"':
        return _double_quoted(value)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return value if _plain_reads_back(value, flow) else _double_quoted(value)


def _int_text(value: int, like: Any | None) -> str:
    # A quoted number is a string (the schema refuses it): write the integer plain, unless a
    # `!!int` tag makes the quoted text an integer, where the quotes can stay.
    if isinstance(like, ScalarNode) and like.style in ('"', "'") and like.tag == _INT_TAG:
        return f"{like.style}{value}{like.style}"
    return str(value)


def _scalar_span(text: str, node: Any, what: str) -> tuple[int, int]:
    if not isinstance(node, ScalarNode):
        raise ValueError(f"{what} is not a single value")
    if node.style in ("|", ">"):
        raise ValueError(f"{what} is a block scalar ({node.style}); write it on one line first")
    start, end = _start(node), _end(node)
    found = _PROPERTIES.match(text, start, end)
    return (found.end() if found else start), end


def _same(current: object, value: object) -> bool:
    return (
        type(value) is not bool
        and not isinstance(current, bool)
        and isinstance(current, type(value))
        and current == value
    )


def _set_field(doc: _Doc, version: str, field: str, value: int | str) -> list[_Splice]:
    key, mapping = _version(doc, version)
    current = doc.data["versions"][version].get(field)
    if _same(current, value):
        return []
    flow = bool(mapping.flow_style)
    found = _get(mapping, field)
    if found is None:
        written = _string_text(value, None, flow) if isinstance(value, str) else str(value)
        return [_insert_field(doc.text, key, mapping, field, written)]
    field_key, node = found
    what = f"{version}.{field}"
    _unshared(doc, node, what)
    written = _string_text(value, node, flow) if isinstance(value, str) else _int_text(value, node)
    if _is_empty(node):
        colon = doc.text.index(":", _end(field_key))
        return [_Splice(colon + 1, colon + 1, " " + written)]
    start, end = _scalar_span(doc.text, node, what)
    return [_Splice(start, end, written)]


def _insert_field(text: str, key: Any, mapping: Any, field: str, written: str) -> _Splice:
    """A new `field: value` pair in a version's mapping, placed in FIELD_ORDER."""
    rank = FIELD_ORDER.index(field)
    before = [
        (k, v)
        for k, v in mapping.value
        if k.value in FIELD_ORDER and FIELD_ORDER.index(k.value) < rank
    ]
    first_key = mapping.value[0][0] if mapping.value else None
    if mapping.flow_style:
        separator = _flow_separator(text, mapping)
        if before:
            end = _end(before[-1][1])
            return _Splice(end, end, f"{separator}{field}: {written}")
        if first_key is not None:
            start = _start(first_key)
            return _Splice(start, start, f"{field}: {written}{separator}")
        brace = text.index("{", _start(mapping))
        return _Splice(brace + 1, brace + 1, f"{field}: {written}")
    if first_key is None:  # pragma: no cover - an empty block mapping is written {}
        raise ValueError(f'version "{key.value}" has no fields')
    indent = _indent(text, first_key)
    # After the fields that come before it; else as the first line of the mapping.
    position = _entry_end(text, *before[-1]) if before else _line_start(text, _start(first_key))
    eol = _eol(text, _start(first_key))
    line = f"{indent}{field}: {written}"
    if position == len(text) and not text.endswith("\n"):
        return _Splice(position, position, eol + line)
    return _Splice(position, position, line + eol)


def _flow_separator(text: str, mapping: Any) -> str:
    """What stands between two pairs of a flow mapping (`, ` unless the file says otherwise)."""
    if len(mapping.value) >= 2:
        gap = text[_end(mapping.value[0][1]) : _start(mapping.value[1][0])]
        if _PAIR_SEPARATOR.fullmatch(gap) and "#" not in gap:
            return gap
    return ", "


def _flow_mapping(text: str, like: Any | None, fields: list[tuple[str, str]]) -> str:
    """`{image: …, replicas: …, weight: …}` spaced like the flow mapping `like`."""
    opening = closing = ""
    separator = ", "
    if isinstance(like, MappingNode) and like.flow_style and like.value:
        brace = text.index("{", _start(like))
        gap = text[brace + 1 : _start(like.value[0][0])]
        opening = gap if gap.strip(" ") == "" else ""
        gap = text[_end(like.value[-1][1]) : _end(like) - 1]
        closing = gap if gap.strip(" ") == "" else ""
        separator = _flow_separator(text, like)
    body = separator.join(f"{name}: {value}" for name, value in fields)
    return "{" + opening + body + closing + "}"


def _check_weight(name: str, weight: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise ValueError(
            f"the weight of {name} must be a whole number from 0 to 100, not {weight!r}"
        )
    return weight


def _check_replicas(name: str, replicas: object) -> int:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(
            f"the replicas of {name} must be a whole number, 0 or more, not {replicas!r}"
        )
    return replicas


def _check_image(name: str, image: object) -> str:
    if not isinstance(image, str) or not image or not image.isprintable():
        raise ValueError(f"the image of {name} must be one line of text, not {image!r}")
    return image


def _check_name(version: str) -> None:
    if not isinstance(version, str) or len(version) > 63 or not _DNS_LABEL.fullmatch(version):
        raise ValueError(
            f'version name "{version}" is not a DNS-1123 label '
            "(lower-case letters, digits and '-', at most 63 characters)"
        )


# --- text edits -------------------------------------------------------------------------------


def set_weights(text: str, weights: Mapping[str, int]) -> str:
    """Set `versions.<v>.weight` of each named version; other text stays byte for byte.

    Does not check that the weights sum to 100: the planners below decide the weights.
    """
    doc = _parse(text)
    splices: list[_Splice] = []
    for name, weight in weights.items():
        splices.extend(_set_field(doc, name, "weight", _check_weight(name, weight)))
    return _apply(text, splices)


def set_image(text: str, version: str, image: str) -> str:
    """Set `versions.<version>.image`, keeping its quoting."""
    doc = _parse(text)
    return _apply(text, _set_field(doc, version, "image", _check_image(version, image)))


def set_replicas(text: str, version: str, replicas: int) -> str:
    """Set `versions.<version>.replicas`; added after the image when the version has none."""
    doc = _parse(text)
    return _apply(text, _set_field(doc, version, "replicas", _check_replicas(version, replicas)))


def add_version(text: str, version: str, image: str, weight: int, replicas: int | None) -> str:
    """Append `version` as the last entry of `versions:`, written like the entry before it."""
    _check_name(version)
    _check_image(version, image)
    _check_weight(version, weight)
    if replicas is not None:
        _check_replicas(version, replicas)
    doc = _parse(text)
    versions = _versions(doc)
    if version in _names(versions):
        raise ValueError(f'version "{version}" already exists')
    last_key, last_value = versions.value[-1]
    if isinstance(last_value, MappingNode) and not last_value.flow_style:
        flow = False
        sibling_image = _get(last_value, "image")
    else:
        flow = True
        sibling_image = _get(last_value, "image") if isinstance(last_value, MappingNode) else None
    fields = [("image", _string_text(image, sibling_image[1] if sibling_image else None, flow))]
    if replicas is not None:
        fields.append(("replicas", str(replicas)))
    fields.append(("weight", str(weight)))
    name = _string_text(version, last_key, bool(versions.flow_style))

    if versions.flow_style:
        entry = f"{name}: {_flow_mapping(text, last_value, fields)}"
        separator = _flow_separator(text, versions)
        if len(versions.value) >= 2:
            gap = text[_end(versions.value[-2][1]) : _start(last_key)]
            separator = gap if _PAIR_SEPARATOR.fullmatch(gap) and "#" not in gap else separator
        end = _end(last_value)
        return _apply(text, [_Splice(end, end, separator + entry)])

    indent = _indent(text, last_key)
    if flow:
        lines = [f"{indent}{name}: {_flow_mapping(text, last_value, fields)}"]
    else:
        inner = _indent(text, last_value.value[0][0])
        lines = [f"{indent}{name}:"] + [f"{inner}{field}: {value}" for field, value in fields]
    position = _entry_end(text, last_key, last_value)
    eol = _eol(text, _start(last_key))
    if position == len(text) and not text.endswith("\n"):
        insertion = eol + eol.join(lines)
    else:
        insertion = eol.join(lines) + eol
    return _apply(text, [_Splice(position, position, insertion)])


def remove_version(text: str, version: str) -> str:
    """Remove `version`'s entry: its lines, and comment lines attached above it.

    Comment lines directly above the entry, at its indentation, go with it only when a blank
    line sets them apart from what comes before: then they read as the entry's own heading. Right under `versions:` or right under the previous entry they may as well
    be about the list or the previous entry, so they stay. Comment lines indented under the
    entry go with it.

    Refused while a match rule or the mirror names the version, or while it has traffic.
    """
    doc = _parse(text)
    versions = _versions(doc)
    names = _names(versions)
    if version not in names:
        raise ValueError(f'unknown version "{version}" (the release has {", ".join(names)})')
    if len(names) == 1:
        raise ValueError(f'version "{version}" is the only version; a release needs one')
    users: list[str] = []
    for index, rule in enumerate(doc.data.get("match") or []):
        if isinstance(rule, Mapping) and rule.get("version") == version:
            label = f' ("{rule["name"]}")' if "name" in rule else ""
            users.append(f"match rule {index + 1}{label}")
    mirror = doc.data.get("mirror")
    if isinstance(mirror, Mapping) and mirror.get("version") == version:
        users.append("the mirror")
    if users:
        raise ValueError(
            f'version "{version}" is still named by {" and ".join(users)}; '
            "remove them or point them at another version first"
        )
    weight = doc.data["versions"][version].get("weight") if doc.data.get("versions") else None
    if isinstance(weight, int) and not isinstance(weight, bool) and weight > 0:
        raise ValueError(
            f'version "{version}" still receives {weight}% of the traffic; '
            "move its weight to the other versions first"
        )
    index = names.index(version)
    key, value = versions.value[index]
    _check_removable(doc, value, version)

    if versions.flow_style:
        if index > 0:
            start, end = _end(versions.value[index - 1][1]), _end(value)
        else:
            start, end = _start(key), _start(versions.value[1][0])
        return _apply(text, [_Splice(start, end, "")])

    indent = _indent(text, key)
    start = _attached_comments(text, _line_start(text, _start(key)), indent)
    end = _entry_end(text, key, value)
    if end == len(text) and not text.endswith("\n") and start > 0:
        # The entry was the last line and had no line break: keep the file ending the same way.
        start -= 2 if text[start - 2 : start] == "\r\n" else 1
    return _apply(text, [_Splice(start, end, "")])


def _check_removable(doc: _Doc, value: Any, version: str) -> None:
    """Refuse to remove an entry holding a node that an alias or merge key also reaches."""
    inside: set[int] = set()
    _collect(value, inside, set())
    if inside & doc.shared:
        raise ValueError(
            f'version "{version}" uses or defines a YAML anchor that is also used elsewhere; '
            "edit the file by hand"
        )


def _attached_comments(text: str, start: int, indent: str) -> int:
    top = start
    while top > 0:
        above = _line_start(text, top - 1)
        line = text[above:top].rstrip("\r\n")
        if not (line.startswith(indent) and line[len(indent) :].startswith("#")):
            break
        top = above
    if top == start or top == 0:
        return start
    above = _line_start(text, top - 1)
    return top if text[above:top].strip() == "" else start


# --- planning weights -------------------------------------------------------------------------


def weights(release: Release) -> dict[str, int]:
    """The release's weights, version → percent, in the file's order."""
    return {v.name: v.weight for v in release.versions}


def _checked(planned: dict[str, int]) -> dict[str, int]:
    for name, weight in planned.items():
        _check_weight(name, weight)
    total = sum(planned.values())
    if total != 100:
        parts = " + ".join(f"{name} {weight}" for name, weight in planned.items())
        raise ValueError(f"weights would sum to {total}, not 100 ({parts})")
    return planned


def _two_versions(release: Release, doing: str) -> None:
    if len(release.versions) < 2:
        raise ValueError(
            f"{release.service} has one version ({release.stable.name}), so there is no canary "
            f"to {doing}; start one first"
        )


def _no_steps(release: Release) -> ValueError:
    return ValueError(
        f"{release.service} has no canary steps; set canary.steps in {release.path} "
        f"or defaults.canary.steps in {release.environment.path}, or give a weight"
    )


def plan_step(release: Release, to: int | None = None, next_step: bool = False) -> dict[str, int]:
    """The canary (last version) to `to` percent, or to the next step of the plan.

    The stable version (the first) takes what the canary leaves; versions between them keep
    their weights.
    """
    if to is None and not next_step:
        raise ValueError("give the canary's new weight, or ask for the next step")
    if to is not None and next_step:
        raise ValueError("give the canary's new weight or ask for the next step, not both")
    _two_versions(release, "step")
    stable, canary = release.stable, release.canary
    if next_step:
        if not release.steps:
            raise _no_steps(release)
        later = [step for step in release.steps if step > canary.weight]
        if not later:
            plan = ", ".join(map(str, release.steps))
            if canary.weight == 100:
                # Promoting now would change nothing: what is left is taking the old ones away.
                raise ValueError(
                    f"{canary.name} already receives all the traffic, the last step of the plan "
                    f"({plan}); the rollout is done: {_retire_advice(release)}"
                )
            raise ValueError(
                f"{canary.name} is at {canary.weight}%, at or past the last step of the plan "
                f"({plan}); promote it, or give a weight"
            )
        to = later[0]
    target = _check_weight(canary.name, to)
    if target == canary.weight:
        raise ValueError(f"{canary.name} is already at {target}%")
    middle = release.versions[1:-1]
    kept = sum(v.weight for v in middle)
    left = 100 - target - kept
    if left < 0:
        holders = [v.name for v in middle if v.weight]
        verb = "takes" if len(holders) == 1 else "take"
        # A step to 100% is what promote does, and promote also takes the middle versions' share.
        instead = f"promote {canary.name}, or " if target == 100 else ""
        raise ValueError(
            f"{canary.name} at {target}% would leave {100 - target}% for the other versions, "
            f"but {' and '.join(holders)} already {verb} {kept}%; {instead}lower "
            f"{'it' if len(holders) == 1 else 'them'} first, or give {canary.name} at most "
            f"{100 - kept}%"
        )
    planned = weights(release)
    planned[canary.name] = target
    planned[stable.name] = left
    return _checked(planned)


def plan_promote(release: Release) -> dict[str, int]:
    """All traffic to the canary (the last version)."""
    _two_versions(release, "promote")
    canary = release.canary
    if canary.weight == 100:
        raise ValueError(
            f"{canary.name} already receives all the traffic, so there is nothing to promote; "
            f"{_retire_advice(release)}"
        )
    return _checked({v.name: 100 if v is canary else 0 for v in release.versions})


def _retire_advice(release: Release) -> str:
    """What to run once the canary has all the traffic: retire each version left without any."""
    idle = [v.name for v in release.versions[:-1] if v.weight == 0]
    if not idle:
        return "nothing is left to do"
    where = f"{release.environment.name} {release.service}"
    commands = " and ".join(f"`meshcanary retire {where} {name}`" for name in idle)
    return f"retire the old version{'s' if len(idle) > 1 else ''} with {commands}"


def plan_rollback(release: Release) -> dict[str, int]:
    """The canary's traffic back to the stable version (the first)."""
    _two_versions(release, "roll back")
    stable, canary = release.stable, release.canary
    if canary.weight == 0:
        raise ValueError(
            f"{canary.name} already receives no traffic; there is nothing to roll back"
        )
    planned = weights(release)
    planned[stable.name] += canary.weight
    planned[canary.name] = 0
    return _checked(planned)


def plan_set(release: Release, requested: Mapping[str, int]) -> dict[str, int]:
    """The given versions' weights; the others keep theirs. The result must sum to 100."""
    if not requested:
        raise ValueError("name at least one version and its weight, such as v2=50")
    planned = weights(release)
    unknown = [name for name in requested if name not in planned]
    if unknown:
        listed = ", ".join(f'"{name}"' for name in unknown)
        raise ValueError(
            f"unknown version{'s' if len(unknown) > 1 else ''} {listed} "
            f"(the release has {', '.join(planned)})"
        )
    for name, weight in requested.items():
        planned[name] = _check_weight(name, weight)
    _checked(planned)
    if planned == weights(release):
        now = ", ".join(f"{name} {weight}" for name, weight in planned.items())
        raise ValueError(f"nothing to change: the weights already are {now}")
    return planned


def plan_start(release: Release, version: str, first_step: bool) -> dict[str, int]:
    """Weights once `version` joins as the new canary: 0, or the plan's first step.

    The first step's traffic comes from the stable version (the first).
    """
    _check_name(version)
    if release.version(version) is not None:
        raise ValueError(f'version "{version}" already exists in {release.path}')
    planned = weights(release)
    if not first_step:
        planned[version] = 0
        return _checked(planned)
    if not release.steps:
        raise _no_steps(release)
    first, stable = release.steps[0], release.stable
    if stable.weight < first:
        raise ValueError(
            f"the first step gives {version} {first}% from {stable.name}, "
            f"which has only {stable.weight}%"
        )
    planned[stable.name] -= first
    planned[version] = first
    return _checked(planned)


@dataclass(frozen=True)
class WeightChange:
    """Weights before and after one change, for commit messages and PR titles.

    `images`: the image of each version the change adds (`start`), which the release read
    before the change cannot say.
    """

    before: dict[str, int]
    after: dict[str, int]
    images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, release: Release, after: Mapping[str, int]) -> WeightChange:
        return cls(weights(release), dict(after))

    def moved(self) -> list[tuple[str, int, int]]:
        """(version, before, after) of each version whose weight changed; absent counts as 0."""
        names = [*self.after, *(name for name in self.before if name not in self.after)]
        changes = [(name, self.before.get(name, 0), self.after.get(name, 0)) for name in names]
        return [change for change in changes if change[1] != change[2]]

    def describe(self) -> str:
        """What the change did, in one line, for the commit message and the command's output.

        `v2 30% -> 50%`: a move of the canary (the last version) against the stable (the
        first) names only the canary. With versions between them, it also says where the rest
        of the traffic is: `v3 10% -> 25%; v1 (stable) keeps the rest, 80% -> 65%; v2 stays at
        10%`. A version added or removed says so: `start v3 at 0% (image …)`, `retire v1`.
        """
        parts = [self._started(name) for name in self.after if name not in self.before]
        parts += [f"retire {name}" for name in self.before if name not in self.after]
        kept = [name for name in self.after if name in self.before]
        moves = [
            (n, self.before[n], self.after[n]) for n in kept if self.before[n] != self.after[n]
        ]
        if not moves:
            return "; ".join(parts) or "weights unchanged"
        stable, canary = kept[0], kept[-1]
        moved = {name for name, _, _ in moves}
        if parts and moved == {stable}:
            # The new version's share comes from the stable version (start --first-step).
            return "; ".join([*parts, self._rest(stable)])
        if parts or len(kept) < 2 or canary not in moved or not moved <= {stable, canary}:
            return "; ".join([*parts, ", ".join(f"{n} {b}% -> {a}%" for n, b, a in moves)])
        step = f"{canary} {self.before[canary]}% -> {self.after[canary]}%"
        if len(kept) == 2:
            return step
        rest = [self._rest(stable)] if stable in moved else []
        stays = ", ".join(f"{name} stays at {self.after[name]}%" for name in kept[1:-1])
        return "; ".join([step, *rest, stays])

    def _started(self, name: str) -> str:
        image = self.images.get(name)
        return f"start {name} at {self.after[name]}%" + (f" (image {image})" if image else "")

    def _rest(self, stable: str) -> str:
        return f"{stable} (stable) keeps the rest, {self.before[stable]}% -> {self.after[stable]}%"
