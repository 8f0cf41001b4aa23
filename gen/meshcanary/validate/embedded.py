"""Validate resources in-process against compiled JSON Schemas (jsonschema-rs), offline.

Validators are compiled once per (schema file, strict) and cached, and each (apiVersion, kind)
finds its validator and CRD rules once per run, so validating a resource is a dictionary look-up
and a few microseconds of jsonschema-rs, without touching the filesystem. Only a resource that
fails is looked at closely: its errors are turned into messages and located in the source text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from meshcanary.errors import InputError
from meshcanary.manifest import (
    BadDocument,
    Resource,
    load_document,
    pointer,
    split_documents,
    yaml_error,
)
from meshcanary.positions import at_mark
from meshcanary.problem import Location, Problem
from meshcanary.report import Status
from meshcanary.source import TYPE_WORDS, type_name
from meshcanary.validate import RULE, Options, Verdict, catalog, kind_matches, problem


class EmbeddedValidator:
    """Validates resources against bundled, located and CRD schemas."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.version, self.note = catalog.bundled_version(options.kubernetes_version)
        self.locations = options.schema_locations or (catalog.DEFAULT,)
        for location in self.locations:
            catalog.check_template(location)
        self._validators: dict[tuple[str, str], Any] = {}
        # (apiVersion, kind) → (validator or None, the CRD's schema with its CEL rules or None):
        # the lookup stats schema files, so it is done once per type, not once per resource.
        self._types: dict[tuple[str, str], tuple[Any | None, Any | None]] = {}
        # (apiVersion, kind) → how to compile its validator, or None: found without reading.
        self._found: dict[tuple[str, str], Callable[[], Any] | None] = {}
        # (apiVersion, kind) → the schema of a --crd file, and that file.
        self._crds = _load_crds(options.crds, options.strict)
        self._kubernetes_definitions: catalog.Definitions | None = None

    # Schema lookup ------------------------------------------------------------------------

    def _kubernetes(self, schema: Any) -> Any:
        """A registry of the bundled Kubernetes definitions that `schema` reaches.

        They are one document of 635 definitions (1.3 MB): a registry of them all
        takes 7 ms to build, one of the 114 a Deployment reaches 2 ms, walk included; only
        those reached are decoded (`catalog.Definitions`).
        """
        if self._kubernetes_definitions is None:
            folder = catalog.kubernetes_root() / (
                f"v{self.version}-local{'-strict' if self.options.strict else ''}"
            )
            self._kubernetes_definitions = catalog.Definitions.read(folder / "_definitions.json")
        definitions = self._kubernetes_definitions
        reached = _reached(definitions, schema)
        import jsonschema_rs

        document = definitions.document(reached)
        return jsonschema_rs.Registry([(catalog.KUBERNETES_DEFINITIONS, document)])

    def _compile(
        self,
        key: str,
        schema: Any,
        registry: Any = None,
        base: str | None = None,
        given: Path | None = None,
    ) -> Any:
        """The validator of `schema`, compiled once per `key`. A schema the user `given` (a
        --crd or --schema-location file) that jsonschema-rs refuses is bad input in that file;
        one of ours is a bug, and raises as it is."""
        # Imported when a schema is compiled, not with this module: `lint` makes its validator
        # in one process and may compile in another (the import is 10 ms of its start-up).
        import jsonschema_rs

        cache_key = (key, "strict" if self.options.strict else "")
        if cache_key not in self._validators:
            options: dict[str, Any] = {}
            if registry is not None:
                options["registry"] = registry
            if base is not None:
                options["base_uri"] = base
                options["retriever"] = _file_retriever
            try:
                self._validators[cache_key] = jsonschema_rs.validator_for(schema, **options)
            except (ValueError, jsonschema_rs.ReferencingError) as exc:
                if given is None:
                    raise
                reason = (getattr(exc, "message", "") or str(exc)).partition("\n")[0]
                raise InputError(
                    [Problem(Location(str(given), 1, 1), f"not a usable JSON Schema: {reason}")]
                ) from None
        return self._validators[cache_key]

    def validator_for(self, api_version: str, kind: str) -> Any | None:
        """The compiled validator for a resource type, or None when no schema is known."""
        compile_ = self._lookup(api_version, kind)
        return compile_() if compile_ is not None else None

    def _lookup(self, api_version: str, kind: str) -> Callable[[], Any] | None:
        """How to compile the validator of a type, or None when no schema is known; looked up
        once per type. The lookup stats files but reads and compiles nothing, so `skips` can
        tell a type without a schema before any is compiled."""
        key = (api_version, kind)
        if key not in self._found:
            self._found[key] = self._find(api_version, kind)
        return self._found[key]

    def _find(self, api_version: str, kind: str) -> Callable[[], Any] | None:
        strict = self.options.strict
        crd = self._crds.get((api_version, kind))
        if crd is not None:
            schema, file = crd
            return lambda: self._compile(f"crd:{api_version}/{kind}", schema, given=file)
        bundled = catalog.crd_schema(api_version, kind)
        if bundled is not None:
            return lambda: self._compile(str(bundled), catalog.load_schema(bundled, strict))
        for location in self.locations:
            if location == catalog.DEFAULT:
                found = catalog.kubernetes_schema(self.version, api_version, kind, strict)
                if found is not None:
                    return lambda: self._compile_kubernetes(found)
                continue
            target = catalog.expand(location, api_version, kind, self.version, strict)
            if "://" in target:
                continue  # offline: a URL finds nothing
            path = Path(target)
            if path.is_file():
                return lambda: self._compile(
                    str(path), _given_schema(path), base=path.resolve().as_uri(), given=path
                )
        return None

    def _compile_kubernetes(self, path: Path) -> Any:
        schema = catalog.load_json(path)
        return self._compile(str(path), schema, self._kubernetes(schema))

    def skips(self, resource: Resource) -> bool:
        """Whether `validate` skips `resource` (`--skip`, or `--ignore-missing-schemas` and no
        schema): told without compiling a schema, so the rules, which leave skipped resources
        out, can run while another process validates."""
        options = self.options
        api_version, kind = resource.api_version, resource.kind
        if not kind or not api_version:
            return False
        if options.skip and kind_matches(options.skip, api_version, kind):
            return True
        if options.reject and kind_matches(options.reject, api_version, kind):
            return False
        return options.ignore_missing_schemas and self._lookup(api_version, kind) is None

    def _type(self, api_version: str, kind: str) -> tuple[Any | None, Any | None]:
        """The validator and the CRD rules' schema of a resource type, looked up once."""
        key = (api_version, kind)
        found = self._types.get(key)
        if found is None:
            crd = self._crds.get(key)
            if crd is not None:
                rules = crd[0]
            else:
                bundled = catalog.crd_schema(api_version, kind)
                rules = catalog.load_json(bundled) if bundled is not None else None
            found = self._types[key] = (self.validator_for(api_version, kind), rules)
        return found

    # Validation ---------------------------------------------------------------------------

    def validate(self, resource: Resource) -> Verdict:
        options = self.options
        api_version, kind = resource.api_version, resource.kind
        if not kind:
            return _error(resource, ["kind"], "missing 'kind' key")
        if not api_version:
            return _error(resource, ["apiVersion"], "missing 'apiVersion' key")
        # Most runs skip and reject nothing: no `apiVersion/Kind` string made per resource.
        if options.skip and kind_matches(options.skip, api_version, kind):
            return Verdict(Status.SKIPPED)
        if options.reject and kind_matches(options.reject, api_version, kind):
            return Verdict(
                Status.INVALID,
                (problem(resource, [], f"prohibited resource kind {kind}", "", key=False),),
            )
        validator, rules = self._type(api_version, kind)
        if validator is None:
            if options.ignore_missing_schemas:
                return Verdict(Status.SKIPPED)
            return _error(
                resource,
                ["kind"],
                f"could not find schema for {kind} ({api_version})",
                "pass its CustomResourceDefinition with --crd, a --schema-location, "
                "or --ignore-missing-schemas",
            )
        problems: list[Problem] = []
        if options.strict:
            problems.extend(_duplicate_keys(resource))
        if not validator.is_valid(resource.data):
            problems.extend(
                _explain(resource, error) for error in validator.iter_errors(resource.data)
            )
        # The CRD's validation rules (x-kubernetes-validations), which the API server runs too.
        if rules is not None:
            # Imported for a type with rules only: a Deployment, say, has none.
            from meshcanary.validate import crd_rules

            problems.extend(crd_rules.check(rules, resource.data, resource))
        if problems:
            return Verdict(Status.INVALID, tuple(sorted(problems, key=Problem.sort_key)))
        return Verdict(Status.VALID)


_DEFINITION = "#/$defs/"


def _reached(definitions: Mapping[str, Any], schema: Any) -> dict[str, Any] | None:
    """The definitions `schema` refers to, and those they refer to, by name.

    None when a reference is anything but the plain name of one of them (an escaped name,
    a path inside one): the whole document then resolves it, as it always did.
    """
    reached: dict[str, Any] = {}
    pending = _references(schema, [])
    while pending:
        _, mark, name = pending.pop().partition(_DEFINITION)
        if not mark or name not in definitions or "~" in name or "%" in name:
            return None
        if name not in reached:
            reached[name] = definitions[name]
            _references(reached[name], pending)
    return reached


def _references(node: Any, found: list[str]) -> list[str]:
    """Every `$ref` under `node`, added to `found`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict | list):
                _references(value, found)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _references(item, found)
    return found


def _file_retriever(uri: str) -> Any:
    if uri.startswith("file://"):
        return _given_schema(Path(uri.removeprefix("file://")))
    raise ValueError(f"cannot fetch {uri} offline")


def _given_schema(path: Path) -> Any:
    """A schema file a --schema-location names (or one it refers to): bad input when it cannot
    be read as JSON, said at the place JSON's reader stopped."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        where = Location(str(path), exc.lineno, exc.colno)
        raise InputError([Problem(where, f"not JSON: {exc.msg}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(Location(str(path), 1, 1), f"cannot read: {exc}")]) from None


def _load_crds(paths: tuple[Path, ...], strict: bool) -> dict[tuple[str, str], tuple[Any, Path]]:
    """JSON Schemas from CustomResourceDefinition files, with their file, by (apiVersion,
    kind)."""
    found: dict[tuple[str, str], tuple[Any, Path]] = {}
    for path in paths:
        if path.exists() and not path.is_file():  # a FIFO would block the read forever
            raise InputError(f"--crd {path}: not a regular file")
        try:
            # The manifest loader: libyaml, and bounds on aliases and depth.
            text = path.read_text(encoding="utf-8").removeprefix("\ufeff")
            documents = [load_document(piece) for piece, _ in split_documents(text)]
        except (OSError, yaml_error(), UnicodeDecodeError, BadDocument) as exc:
            raise InputError(f"--crd {path}: cannot read: {exc}") from None
        for crd in documents:
            for version in catalog.crd_versions(crd):
                schema = catalog.make_strict(version.schema) if strict else version.schema
                found[(version.api_version, version.kind)] = (schema, path)
    return found


def _error(resource: Resource, path: list[str | int], message: str, hint: str = "") -> Verdict:
    return Verdict(Status.ERROR, (problem(resource, path, message, hint, key=True),))


def _field(path: list[str | int]) -> str:
    return (
        ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        or "the object"
    )


def _explain(resource: Resource, error: Any) -> Problem:
    """A message for one jsonschema-rs error, at the field it is about."""
    path: list[str | int] = list(error.instance_path)
    kind = error.kind
    name = type(kind).__name__
    instance = error.instance
    if instance is None:  # jsonschema-rs shows NaN and infinities, which JSON lacks, as null
        actual = resource.get(*path)
        if isinstance(actual, float):
            return problem(
                resource, path, f"{_field(path)} is {actual}, which JSON cannot hold", "", key=False
            )
    if name == "AdditionalProperties":
        unexpected = list(getattr(kind, "unexpected", []) or [])
        field = str(unexpected[0]) if unexpected else ""
        known = [k for k in _known_properties(resource, path) if k not in unexpected]
        import difflib

        close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
        hint = f'did you mean "{close[0]}"?' if close else ""
        return problem(
            resource, [*path, field], f'unknown field "{field}" in {_field(path)}', hint, key=True
        )
    details = kind.as_dict() if hasattr(kind, "as_dict") else {}
    if name == "Required":
        missing = details.get("property", "")
        return problem(
            resource, path, f'{_field(path)} is missing required field "{missing}"', "", key=True
        )
    if name == "Type":
        types = [t for t in details.get("types", []) if t != "null"] or details.get("types", [])
        wanted = " or ".join(TYPE_WORDS.get(str(t), str(t)) for t in types)
        shown = json.dumps(instance, ensure_ascii=False)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return problem(
            resource,
            path,
            f"{_field(path)} must be {wanted}, found {type_name(instance)} {shown}",
            "",
            key=False,
        )
    return problem(resource, path, f"{_field(path)}: {error.message}", "", key=False)


def _known_properties(resource: Resource, path: list[str | int]) -> list[str]:
    # The object's siblings are the best guess at the known fields for a suggestion.
    node = resource.get(*path)
    common = ["apiVersion", "kind", "metadata", "spec", "status", "data", "name", "labels"]
    return sorted(set(common) | (set(node) if isinstance(node, dict) else set()))


def _duplicate_keys(resource: Resource) -> list[Problem]:
    """Keys given twice in one mapping: kubeconform's -strict refuses them."""
    import yaml  # the node tree is PyYAML's, composed already

    problems: list[Problem] = []
    root = resource.document.node()

    def walk(node: Any, path: list[str | int]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    line, column = at_mark(key_node.start_mark, resource.document.first_line)
                    first, _ = at_mark(seen[key].start_mark, resource.document.first_line)
                    problems.append(
                        Problem(
                            Location(resource.file, line, column),
                            f'duplicate key "{key}" in {_field(path)}',
                            f"the first is at line {first}",
                            rule=RULE,
                            resource=resource.ref,
                            path=pointer([*path, key]),
                        )
                    )
                else:
                    seen[key] = key_node
                walk(value_node, [*path, key])
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, [*path, index])

    walk(root, [])
    return problems
