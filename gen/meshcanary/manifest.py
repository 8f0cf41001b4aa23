"""Kubernetes manifests from files, folders or stdin: resources and the position of each field.

Documents are read in YAML 1.1, as Kubernetes reads them: the block style that kustomize
prints by `fastyaml` (plain scalars by `yaml11`), everything else (and anything it is unsure
of) by PyYAML's C loader. Positions cost a second parse, so they are found only for the
documents that have something to report: `Resource.location(path)` composes that document's
node tree on first use. PyYAML is imported only then, or for a document the fast reader
leaves to it: importing it costs more than reading a small file (11-16 ms, most of it the
regular expression of its reader module).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from meshcanary import fastyaml, yaml11
from meshcanary.positions import at_mark, node_position, stray_space, yaml_problem
from meshcanary.problem import Location, Problem, ResourceRef

if TYPE_CHECKING:
    import yaml

    Loader: type[yaml.CSafeLoader]  # the class `loader_class()` gives, by that name too

JsonPath = Sequence[str | int]
# A line `---` (with anything after a blank) or `...`, and the line break before it: starting
# with a literal newline lets the regular expression engine skip from line to line, where a
# multi-line `^` is tried at every character (four times slower on 50 MB of manifests).
_DOCUMENT_MARK = re.compile(r"\n(?:---(?:[ \t][^\n]*)?|\.\.\.[ \t]*)(?=\n|\Z)")
_RESOLVED_MAX = 200_000  # scalar tags the Loader remembers


@functools.cache
def loader_class() -> type[yaml.CSafeLoader]:
    """PyYAML's C loader, reading as Kubernetes does; PyYAML is imported on the first call.

    `yaml11` gives the fast reader's plain scalars the values this loader gives them, and
    tests/unit/test_yaml11.py holds the two equal.
    """
    import yaml

    resolved: dict[tuple[str, bool, bool], str] = {}
    no_digits = re.compile(r"[-+]?0[bx]_+")

    class Loader(yaml.CSafeLoader):
        """Safe loader that keeps timestamps as the strings JSON Schema expects."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            # A manifest repeats the same keys and values thousands of times, and a plain
            # scalar's tag depends only on its text: remember the answers.
            if kind is yaml.ScalarNode:
                key = (value, implicit[0], implicit[1])
                tag = resolved.get(key)
                if tag is None:
                    tag = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
                    if tag == "tag:yaml.org,2002:int" and no_digits.fullmatch(value):
                        # `0b_`, `0x_`: YAML 1.1's pattern takes them for integers with no
                        # digits (PyYAML then fails); Go's parser reads them as strings.
                        tag = "tag:yaml.org,2002:str"
                    if len(resolved) < _RESOLVED_MAX:
                        resolved[key] = tag
                return tag
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    # Go writes floats such as 1e-05 without a dot, which YAML 1.1 would read as a string.
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    # Kubernetes (Go) reads timestamps, and YAML 1.1's `=` and `<<` as values, as plain
    # strings.
    for tag in (
        "tag:yaml.org,2002:timestamp",
        "tag:yaml.org,2002:value",
        "tag:yaml.org,2002:merge",
    ):
        Loader.add_constructor(
            tag,
            lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
        )
    return Loader


def yaml_error() -> type[yaml.YAMLError]:
    """PyYAML's parse error, for an `except` clause: its expression is evaluated only when an
    exception is being matched, so a run without errors does not import PyYAML for it."""
    import yaml

    return yaml.YAMLError


if not TYPE_CHECKING:  # (for mypy, `Loader` is declared above and nothing else is here)

    def __getattr__(name: str) -> Any:
        # `Loader`, as other modules and the tests name the class: PyYAML is imported then.
        if name == "Loader":
            return loader_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Bounds on one document: Kubernetes objects nest a few dozen levels; aliases may share a
# node, but not expand a small text into a huge object (a "billion laughs").
MAX_DEPTH = 200
MAX_NODES = 5_000_000

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SIMPLE: dict[str, Callable[[Any, yaml.ScalarNode], Any]] = {
    "tag:yaml.org,2002:null": lambda loader, node: None,
    "tag:yaml.org,2002:bool": lambda loader, node: loader.bool_values[node.value.lower()],
    "tag:yaml.org,2002:int": lambda loader, node: loader.construct_yaml_int(node),
    "tag:yaml.org,2002:float": lambda loader, node: loader.construct_yaml_float(node),
    # Kubernetes (Go) reads these as plain strings, as the Loader's constructors do.
    "tag:yaml.org,2002:timestamp": lambda loader, node: node.value,
    "tag:yaml.org,2002:value": lambda loader, node: node.value,
}


_CYCLE = "an alias refers to a node that contains it"


class BadDocument(ValueError):
    """A document that parses but is refused, with where."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.mark = mark

    def describe(self) -> str:
        return str(self)


class TooLarge(BadDocument):
    """A document nested too deeply or expanded by aliases beyond the bounds."""

    def describe(self) -> str:
        return f"document too large: {self}"


class Unsupported(BadDocument):
    """A document with a tag outside JSON's data model (!!binary, !!set, !!omap…)."""


_JSON_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp", "value")
)


class _Builder:
    """Python values from a composed node tree, faster than PyYAML's generic constructor.

    Plain maps, sequences and the core scalar tags are built here; a document using anything
    else (merge keys, other tags) goes to PyYAML's constructor. An alias gives back the same
    object, as PyYAML does; how much the aliases expand is counted against MAX_NODES, since
    everything after parsing (schemas, rules) walks the expanded object.
    """

    def __init__(self, loader: yaml.CSafeLoader) -> None:
        import yaml

        self.loader = loader
        self.scalar, self.mapping = yaml.ScalarNode, yaml.MappingNode
        self.built: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}
        self.total = 0

    def __call__(self, node: yaml.Node, depth: int = 0) -> Any:
        if isinstance(node, self.scalar):
            self.total += 1
            tag = node.tag
            if tag == _STR:
                return node.value
            make = _SIMPLE.get(tag)
            if make is None:
                raise _Fallback
            return make(self.loader, node)
        known = id(node)
        if known in self.built:
            if known not in self.sizes:
                raise TooLarge(_CYCLE, node.start_mark)
            self.total += self.sizes[known]
            return self.built[known]
        if depth >= MAX_DEPTH:
            raise TooLarge(f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
        start = self.total
        value: Any
        if isinstance(node, self.mapping):
            if node.tag != _MAP:
                raise _Fallback
            value = {}
            self.built[known] = value
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Fallback
                key = self(key_node, depth + 1)
                if not isinstance(key, str):
                    key = _key_text(key)
                try:
                    value[key] = self(value_node, depth + 1)
                except TypeError:  # an unhashable key, like a mapping: PyYAML's message
                    raise _Fallback from None
        else:
            if node.tag != _SEQ:
                raise _Fallback
            value = []
            self.built[known] = value
            value.extend(self(item, depth + 1) for item in node.value)
        self.total += 1
        self.sizes[known] = self.total - start
        # Checked once a collection is whole, so the position is that of the collection
        # whose aliases expand too far, not of the anchor they name.
        if self.total > MAX_NODES:
            raise TooLarge(
                f"aliases expand this document to more than {MAX_NODES:,} values",
                node.start_mark,
            )
        return value


def _key_text(key: Any) -> Any:
    """The JSON key sigs.k8s.io/yaml makes of a YAML key that is not a string."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return str(key)
    return key  # a mapping or a list as a key: PyYAML's error says so


def _string_keys(value: Any, seen: dict[int, Any]) -> Any:
    """`value` with every mapping key a string, for what PyYAML's constructor built."""
    known = id(value)
    if known in seen:
        return seen[known]
    if isinstance(value, dict):
        fixed: dict[Any, Any] = {}
        seen[known] = fixed
        for key, item in value.items():
            fixed[key if isinstance(key, str) else _key_text(key)] = _string_keys(item, seen)
        return fixed
    if isinstance(value, list):
        items: list[Any] = []
        seen[known] = items
        items.extend(_string_keys(item, seen) for item in value)
        return items
    return value


class _Fallback(Exception):
    """The document needs PyYAML's full constructor."""


# The value of a plain scalar, as the Loader resolves and builds it (`<<` is Unsure: a merge
# key, which PyYAML's constructor handles).
_plain_scalar = yaml11.value


def _plain_key(text: str) -> str:
    key = _plain_scalar(text)
    return key if isinstance(key, str) else str(_key_text(key))


_FAST = fastyaml.Reader(_plain_scalar, _plain_key, MAX_DEPTH, MAX_NODES)


def load_document(text: str) -> Any:
    """The value of one YAML document, as `yaml.load(text, Loader)` gives it, within bounds."""
    try:
        return _FAST.load(text)
    except fastyaml.Unsure:
        return _load_with_pyyaml(text)


def _load_with_pyyaml(text: str) -> Any:
    """`load_document` for any text: PyYAML's C parser, its constructor for the rare rest."""
    loader = loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _Builder(loader)(node)
        except _Fallback:
            pass
        # PyYAML's constructor, after the same bounds (it would recurse without a limit).
        bounded = _measure(node)
        if bounded is not None:
            raise bounded
        return _string_keys(loader.construct_document(node), {})
    finally:
        loader.dispose()


def _measure(node: yaml.Node) -> BadDocument | None:
    """Whether a node tree breaks MAX_DEPTH or MAX_NODES once aliases expand."""
    import yaml

    sizes: dict[int, int] = {}

    def size(current: yaml.Node, depth: int) -> int:
        # YAML's own tags beyond JSON (an unknown tag is PyYAML's error, at the same place).
        if current.tag.startswith("tag:yaml.org,2002:") and current.tag not in _JSON_TAGS:
            raise Unsupported(
                f"tag {current.tag.replace('tag:yaml.org,2002:', '!!')} builds a value JSON "
                "cannot hold; Kubernetes reads only maps, lists, strings, numbers, booleans "
                "and null",
                current.start_mark,
            )
        if isinstance(current, yaml.ScalarNode):
            return 1
        known = id(current)
        if known in sizes:
            if sizes[known] < 0:
                raise TooLarge(_CYCLE, current.start_mark)
            return sizes[known]
        if depth >= MAX_DEPTH:
            raise TooLarge(f"nested deeper than {MAX_DEPTH} levels", current.start_mark)
        sizes[known] = -1  # being measured: an alias to it from inside is a cycle
        children = (
            [n for pair in current.value for n in pair]
            if isinstance(current, yaml.MappingNode)
            else current.value
        )
        total = 1 + sum(size(child, depth + 1) for child in children)
        if total > MAX_NODES:
            raise TooLarge(
                f"aliases expand this document to more than {MAX_NODES:,} values",
                current.start_mark,
            )
        sizes[known] = total
        return total

    try:
        size(node, 0)
    except BadDocument as exc:
        return exc
    return None


@dataclass(eq=False)
class Document:
    """One YAML document of a file: its text and where that text starts in the file."""

    file: str  # path as shown in messages
    text: str
    first_line: int  # line of the file (from 1) where `text` starts
    index: int  # 0-based position among the file's documents
    _nodes: yaml.Node | None = field(default=None, repr=False)

    def node(self) -> yaml.Node | None:
        if self._nodes is None:
            import yaml

            self._nodes = yaml.compose(self.text, Loader=loader_class())
        return self._nodes

    def location(self, path: JsonPath, *, key: bool = False) -> Location:
        """Position of the value at `path`, or of the nearest enclosing node that exists."""
        position = node_position(self.node(), path, key=key, first_line=self.first_line)
        return Location(self.file, *position)


T = TypeVar("T")


class _once(Generic[T]):  # a decorator, named as cached_property is
    """`functools.cached_property` without its lock (Python 3.11 takes one on each first
    read: 0.85 µs against 0.36, for each of 20k resources' `ref`). Made once per object; two
    threads that both make it get equal values."""

    def __init__(self, make: Callable[[Any], T]) -> None:
        self.make = make
        self.name = make.__name__
        self.__doc__ = make.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _once[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> T | _once[T]:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.make(instance)
        return value


@dataclass(frozen=True, eq=False)
class Resource:
    """One Kubernetes object as read, with a way back to the text it came from."""

    data: dict[str, Any]
    document: Document
    item: int | None = None  # index in the `items` of a List, when it came from one
    # Read once from `data` when the object is made: the rules ask for them hundreds of
    # thousands of times a run, and an object is not changed once read.
    api_version: str = field(init=False, repr=False)
    kind: str = field(init=False, repr=False)
    metadata: dict[str, Any] = field(init=False, repr=False)
    name: str = field(init=False, repr=False)
    namespace: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        data = self.data
        version, kind, meta = data.get("apiVersion"), data.get("kind"), data.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
        namespace = meta.get("namespace")
        # The dataclass is frozen: set what it derives as its generated __init__ does.
        setter = object.__setattr__
        setter(self, "api_version", version if isinstance(version, str) else "")
        setter(self, "kind", kind if isinstance(kind, str) else "")
        setter(self, "metadata", meta)
        setter(self, "name", str(meta.get("name") or meta.get("generateName") or ""))
        setter(self, "namespace", namespace if isinstance(namespace, str) else "")

    @property
    def file(self) -> str:
        return self.document.file

    @_once
    def ref(self) -> ResourceRef:
        # Asked for tens of thousands of times a run (results, policies, suppressions); an
        # object is not changed once read. What `ResourceRef.of(self.data)` gives, from the
        # fields read already.
        return ResourceRef(self.api_version, self.kind, self.name, self.namespace)

    def get(self, *path: str | int) -> Any:
        """The value at `path`, or None when any step is missing or of another type."""
        node: Any = self.data
        for part in path:
            # Asked for half a million times a run, nearly always of a plain mapping: that
            # case first, by a test cheaper than isinstance.
            if node.__class__ is dict:
                node = node.get(part)
                continue
            # Mapping keys are always strings (the loader makes them so): an index asked of
            # a mapping finds nothing, as a key asked of a list does.
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node

    def location(self, path: JsonPath = (), *, key: bool = False) -> Location:
        prefix: list[str | int] = [] if self.item is None else ["items", self.item]
        return self.document.location([*prefix, *path], key=key)


def pointer(path: JsonPath) -> str:
    """A JSON Pointer (RFC 6901) for `path`."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass
class Parsed:
    """What reading some manifests gave: resources, and problems with the input itself."""

    resources: list[Resource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0


def objects(text: str) -> list[dict[str, Any]]:
    """The mappings of a multi-document text such as kustomize prints, within the loader's
    bounds (YAMLError or BadDocument when it does not parse); other documents are skipped."""
    found = (load_document(piece) for piece, _ in split_documents(text))
    return [document for document in found if isinstance(document, dict)]


def split_documents(text: str) -> Iterator[tuple[str, int]]:
    """Each document's text and the line (from 1) it starts on, split at `---` and `...`."""
    start, line = 0, 1
    # The newline put in front lets a mark on the first line match too; positions in the
    # text are those in the searched string, less one.
    for match in _DOCUMENT_MARK.finditer("\n" + text):
        begin, end = match.start(), match.end() - 1
        yield text[start:begin], line
        line += text.count("\n", start, end) + 1
        start = end + 1
    if start <= len(text):
        yield text[start:], line


def parse_text(text: str, file: str, parsed: Parsed) -> None:
    """Add the resources of one file's text (YAML or JSON, one or more documents)."""
    parsed.files += 1
    parse_documents(split_text(text, file), parsed)


def split_text(text: str, file: str) -> list[Document | Problem]:
    """One file's documents, not yet parsed. A text with a stray non-breaking space gives
    that problem instead: YAML would misread it."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:  # a search for one character is 20 times faster than the replace
        text = text.replace("\r\n", "\n")
    nbsp = stray_space(text, file)
    if nbsp is not None:
        return [nbsp]
    return [
        Document(file, piece, first_line, index)
        for index, (piece, first_line) in enumerate(split_documents(text))
    ]


def parse_documents(read: Iterable[Document | Problem], parsed: Parsed) -> None:
    """Add the resources of `read`, in order, and the problems met reading it, in order.

    Split from reading so that documents can be parsed in other processes (`lint --jobs`)
    and still give what one process gives.
    """
    for document in read:
        if isinstance(document, Problem):
            parsed.problems.append(document)
            continue
        file, first_line = document.file, document.first_line
        try:
            data = load_document(document.text)
        except yaml_error() as exc:
            parsed.problems.append(yaml_problem(exc, file, document.text, first_line))
            continue
        except BadDocument as exc:
            line, column = at_mark(exc.mark, first_line)
            hint = (
                "Kubernetes objects need neither; check where this file came from"
                if isinstance(exc, TooLarge)
                else "write the value as a string"
            )
            parsed.problems.append(Problem(Location(file, line, column), exc.describe(), hint))
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            parsed.problems.append(
                Problem(
                    document.location([]),
                    f"expected a Kubernetes object (a mapping), found {type(data).__name__}",
                )
            )
            continue
        if data.get("kind") == "List" and isinstance(data.get("items"), list):
            for item, value in enumerate(data["items"]):
                if isinstance(value, dict):
                    parsed.resources.append(Resource(value, document, item))
            continue
        parsed.resources.append(Resource(data, document))
