"""Binding a checked spec to a pipeline: tables found, queries built, attributes checked.

The pipeline comes from a Python module (imported, then activated *without writing*: the
schema's classes are compiled under `declare_only()` and every table must already exist) or
from schemas read from the database (`dj.VirtualModule`). Each component's `query` is a small
expression over the module's table classes, read with Python's `ast` and evaluated from a
whitelist: table names, `Master.Part`, the operators `* & - + @ ^`, the methods `proj`,
`aggr` and `join`, and literal arguments. Nothing else of Python is reachable from a spec.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from ..connection import Connection
from ..errors import DataJointError
from ..expression import QueryExpression
from ..heading import Attribute, Heading
from ..table import Table
from ..tiers import Manual
from .spec import AppSpec, ComponentSpec, PageSpec, SpecError

_OPERATORS: dict[type[ast.operator], str] = {
    ast.Mult: "__mul__", ast.BitAnd: "__and__", ast.Sub: "__sub__", ast.Add: "__add__",
    ast.MatMult: "__matmul__", ast.BitXor: "__xor__",
}
_METHODS = {"proj", "aggr", "join"}
_HELPERS = ("Top", "Not", "AndList", "U")
NUMERIC_CATEGORIES = {"bool", "float32", "float64", "decimal", "int8", "uint8", "int16",
                      "uint16", "int24", "uint24", "int32", "uint32", "int64", "uint64"}


@dataclass
class BoundComponent:
    """A component with its query built and its attributes checked."""

    spec: ComponentSpec
    page: PageSpec
    query: QueryExpression | None = None
    table: type[Table] | None = None  # the table class, when the query is a bare table
    columns: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    tables: list[type[Table]] = field(default_factory=list)  # of a diagram
    attribute: Attribute | None = None  # a filter's attribute (typed: values are coerced)
    page_filters: list[str] = field(default_factory=list)  # the filters restricting it

    @property
    def heading(self) -> Heading:
        assert self.query is not None
        return self.query.heading


@dataclass
class BoundApp:
    spec: AppSpec
    connection: Connection
    namespace: dict[str, Any]
    tables: list[type[Table]]
    components: dict[tuple[str, str], BoundComponent]

    def component(self, page: str, name: str) -> BoundComponent | None:
        return self.components.get((page, name))


# ---- attributes -------------------------------------------------------------------------------
def is_blob(attribute: Attribute) -> bool:
    """Values that are not shown in cells nor compared in SQL: blobs, attachments, json."""
    return bool(attribute.type) and (attribute.codec is not None
                                     or attribute.type_info.category in ("json", "bytes"))


def is_numeric(attribute: Attribute) -> bool:
    return not attribute.type or attribute.type_info.category in NUMERIC_CATEGORIES


def _check_names(names: list[str], heading: Heading, what: str, label: str) -> list[str]:
    unknown = [n for n in names if n not in heading]
    if not unknown:
        return []
    return [f"{what}: unknown attribute{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)} of {label}; known: "
            f"{', '.join(heading.names)}"]


# ---- the pipeline -----------------------------------------------------------------------------
def load_pipeline(spec: AppSpec, connection: Connection) -> dict[str, Any]:
    """The names a spec's queries can use: the module's namespace or the virtual modules."""
    namespace: dict[str, Any] = {}
    if spec.module:
        namespace.update(_import_module(spec, connection))
    existing: list[str] | None = None
    for alias, schema_name in spec.schemas.items():
        from ..reflect import VirtualModule
        from ..schema import list_schemas

        if existing is None:
            existing = list_schemas(connection)
        if schema_name not in existing:
            raise SpecError(f"schema {schema_name!r} does not exist in the database "
                            f"({connection!r})", spec.source)
        try:
            module = VirtualModule(alias, schema_name, connection=connection)
        except DataJointError as error:
            raise SpecError(f"cannot read schema {schema_name!r}: {error}", spec.source) from None
        namespace[alias] = module
        if len(spec.schemas) == 1 and not spec.module:  # one schema: its tables by bare name
            namespace.update({k: v for k, v in vars(module).items() if _is_table_class(v)})
    return namespace


def _is_table_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Table) and bool(value.tier)


def _import_module(spec: AppSpec, connection: Connection) -> dict[str, Any]:
    from ..schema import declare_only

    assert spec.module is not None
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` does
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(spec.module)
    except Exception as error:  # any import failure is the spec author's to fix
        raise SpecError(f"cannot import module {spec.module!r}: "
                        f"{type(error).__name__}: {error}", spec.source) from None
    activate = getattr(module, "activate", None)
    if spec.activate or callable(activate):
        if not callable(activate):
            raise SpecError(f"module {spec.module!r} has no activate() function for "
                            "`activate:`", spec.source)
        kwargs = dict(spec.activate)
        try:
            parameters = inspect.signature(activate).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        if "connection" in parameters:
            kwargs["connection"] = connection
        try:
            with declare_only():  # read-only: compile the classes, create nothing
                activate(**kwargs)
        except TypeError as error:
            raise SpecError(f"{spec.module}.activate() refused the arguments "
                            f"{spec.activate!r}: {error}", spec.source) from None
        except DataJointError as error:
            raise SpecError(f"cannot activate {spec.module!r}: {error}", spec.source) from None
    return {k: v for k, v in vars(module).items() if not k.startswith("_")}


def collect_tables(namespace: dict[str, Any]) -> list[type[Table]]:
    """Every declared table class reachable from the namespace (modules one level deep),
    parts included, each once."""
    found: dict[int, type[Table]] = {}

    def add(value: Any) -> None:
        if _is_table_class(value) and value._sa_table is not None and id(value) not in found:
            found[id(value)] = value
            for part in getattr(value, "_parts", []):
                add(part)

    for value in namespace.values():
        if isinstance(value, types.ModuleType):
            for inner in vars(value).values():
                add(inner)
        else:
            add(value)
    return list(found.values())


def check_tables_exist(tables: list[type[Table]], connection: Connection, source: str) -> None:
    """Every table the app may show exists: a viewer never creates one."""
    from ..connection import hide_password

    by_schema: dict[str, list[type[Table]]] = {}
    for table in tables:
        if table._schema is not None:
            by_schema.setdefault(table._schema.database, []).append(table)
    backend = connection.backend_impl
    problems: list[str] = []
    with connection.session(write=False) as sa_conn:
        schemas = set(backend.list_schemas(sa_conn))
        for schema, members in by_schema.items():
            if schema not in schemas:
                problems.append(f"schema {schema!r} does not exist")
                continue
            present = set(backend.list_tables(sa_conn, schema))
            missing = [f"{t.__name__} ({schema}.{t.table_name})" for t in members
                       if t.table_name not in present]
            if missing:
                problems.append(f"schema {schema!r} has no table{'s' if len(missing) > 1 else ''}"
                                f" {', '.join(missing)}")
    if problems:
        raise SpecError(f"{'; '.join(problems)} in {hide_password(connection.url)}: run the "
                        "pipeline first, or check `activate:` and the database URL", source)


# ---- query expressions ------------------------------------------------------------------------
class _QueryReader:
    """Evaluates the whitelisted expression language of `query:` (see the module doc)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        import datajoint_sa as dj

        self.namespace = namespace
        self.helpers = {name: getattr(dj, name) for name in _HELPERS if hasattr(dj, name)}

    def evaluate(self, text: str) -> Any:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as error:
            raise SpecError(f"cannot read the query {text!r}: {error.msg}") from None
        return self._eval(tree.body)

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            if node.id in self.helpers:
                return self.helpers[node.id]
            value = self.namespace.get(node.id)
            if _is_table_class(value) or isinstance(value, types.ModuleType):
                return value
            tables = sorted(k for k, v in self.namespace.items() if _is_table_class(v))
            raise SpecError(f"unknown table {node.id!r}; the module's tables: "
                            f"{', '.join(tables) or '(none)'}")
        if isinstance(node, ast.Attribute):
            owner = self._eval(node.value)
            # looked up without running any descriptor or property of the owner
            value = None if node.attr.startswith("_") else \
                inspect.getattr_static(owner, node.attr, None)
            if isinstance(owner, types.ModuleType):
                if _is_table_class(value) or isinstance(value, types.ModuleType):
                    return value
                if node.attr in self.helpers and owner.__name__ == "datajoint_sa":
                    return self.helpers[node.attr]
                raise SpecError(f"unknown table {ast.unparse(node)!r}")
            if _is_table_class(owner) and node.attr in _METHODS:
                return (owner, node.attr)
            if isinstance(owner, QueryExpression) and node.attr in _METHODS:
                return (owner, node.attr)
            if _is_table_class(owner) and _is_table_class(value):
                return value  # Master.Part
            raise SpecError(f"unknown table or method {ast.unparse(node)!r}")
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self._eval(node.left), self._eval(node.right)
            left = left() if _is_table_class(left) else left
            if not isinstance(left, QueryExpression):
                raise SpecError(f"{ast.unparse(node.left)!r} is not a query")
            return getattr(left, _OPERATORS[type(node.op)])(right)
        if isinstance(node, ast.Call):
            function = self._eval(node.func)
            args = [self._eval(a) for a in node.args]
            kwargs = {k.arg: self._eval(k.value) for k in node.keywords if k.arg is not None}
            if any(k.arg is None for k in node.keywords):
                raise SpecError("`**` arguments are not allowed in a query")
            if isinstance(function, tuple):
                owner, method = function
                owner = owner() if _is_table_class(owner) else owner
                return getattr(owner, method)(*args, **kwargs)
            if function in self.helpers.values():
                return function(*args, **kwargs)
            raise SpecError(f"{ast.unparse(node.func)!r} cannot be called in a query")
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, int, float, bool, type(None), type(...))):
                return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(
                node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
            return -node.operand.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self._eval(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise SpecError("`**` is not allowed in a query")
            return {self._eval(k): self._eval(v)  # type: ignore[arg-type]
                    for k, v in zip(node.keys, node.values)}
        raise SpecError(f"{ast.unparse(node)!r} is not allowed in a query: use table names, "
                        "Master.Part, the operators * & - + @, .proj(), .aggr(), .join() and "
                        "literal values")

    def query(self, text: str) -> tuple[QueryExpression, type[Table] | None]:
        value = self.evaluate(text)
        if _is_table_class(value):
            return value(), value
        if isinstance(value, QueryExpression):
            return value, None
        raise SpecError(f"the query {text!r} is not a query expression")


# ---- binding ----------------------------------------------------------------------------------
def bind(spec: AppSpec, connection: Connection) -> BoundApp:
    """Resolve every component of `spec` against the pipeline; raise one SpecError listing
    every problem (unknown tables, unknown attributes, misused types)."""
    namespace = load_pipeline(spec, connection)
    tables = collect_tables(namespace)
    if not tables:
        raise SpecError("the pipeline has no declared tables", spec.source)
    check_tables_exist(tables, connection, spec.source)
    reader = _QueryReader(namespace)
    problems: list[str] = []
    components: dict[tuple[str, str], BoundComponent] = {}
    for page in spec.pages:
        for component, name in _page_components(page):
            bound = BoundComponent(component, page)
            components[(page.name, name)] = bound
            try:
                problems += _bind_component(bound, reader, spec)
            except SpecError as error:
                problems += [f"{component.where}: {p}" for p in error.problems]
            except DataJointError as error:  # the algebra refused the query
                problems.append(f"{component.where}: {error}")
    for page in spec.pages:
        problems += _check_page_key(page, components, spec)
        problems += _bind_page_filters(page, components)
    if problems:
        raise SpecError(problems, spec.source)
    return BoundApp(spec, connection, namespace, tables, components)


def _page_components(page: PageSpec) -> list[tuple[ComponentSpec, str]]:
    """Every component of a page with its address; a grid's cell templates are
    `grid.template` (a dot no component name has)."""
    found = []
    for component in page.components:
        found.append((component, component.name))
        found += [(child, f"{component.name}.{child.name}") for child in component.children]
    return found


def _bind_page_filters(page: PageSpec, components: dict[tuple[str, str], BoundComponent]
                       ) -> list[str]:
    """Which filters restrict which components: those named by `filtered_by:`, else every
    filter of the page whose attribute the component's query has. A filter without a query
    takes its attribute's type from the first component that has the attribute."""
    filters = {f.name: components[(page.name, f.name)] for f in page.filters
               if (page.name, f.name) in components}
    problems: list[str] = []
    data = [b for (p, _), b in components.items()
            if p == page.name and b.query is not None and b.spec.type not in ("filter", "form")]
    for bound in filters.values():
        attribute_name = bound.spec.get("attribute")
        if bound.attribute is None:
            bound.attribute = next((b.heading[attribute_name] for b in data
                                    if attribute_name in b.heading), None)
        if bound.attribute is None:
            problems.append(f"{bound.spec.where}: no component of page {page.name!r} has "
                            f"attribute {attribute_name!r}")
        elif is_blob(bound.attribute):
            problems.append(f"{bound.spec.where}: cannot filter by {attribute_name!r}: a "
                            f"{bound.attribute.type} is not compared in SQL")
        else:
            problems += _check_filter_type(bound)
    for bound in data:
        explicit = bound.spec.filtered_by
        for name in explicit if explicit is not None else filters:
            target = filters.get(name)
            if target is None:
                continue
            attribute_name = target.spec.get("attribute")
            if attribute_name in bound.heading:
                bound.page_filters.append(name)
            elif explicit is not None:
                problems.append(f"{bound.spec.where}: filtered_by {name!r}, but its query "
                                f"has no attribute {attribute_name!r}")
    for bound in filters.values():  # a filter's choices follow the filters it depends on
        if bound.query is not None:
            for name in bound.spec.get("depends_on") or []:
                attribute_name = filters[name].spec.get("attribute") if name in filters else None
                if attribute_name in bound.heading:
                    bound.page_filters.append(name)
                else:
                    problems.append(f"{bound.spec.where}: depends_on {name!r}, but its query "
                                    f"has no attribute {attribute_name!r}")
    return problems


def _check_filter_type(bound: BoundComponent) -> list[str]:
    attribute = bound.attribute
    assert attribute is not None
    control = bound.spec.get("control")
    category = attribute.type_info.category if attribute.type else ""
    if control == "slider" and not is_numeric(attribute):
        return [f"{bound.spec.where}: a slider needs a numeric attribute; "
                f"{attribute.name!r} is a {attribute.type}"]
    if control == "daterange" and category not in ("date", "datetime", "timestamp"):
        return [f"{bound.spec.where}: a daterange needs a date or datetime attribute; "
                f"{attribute.name!r} is a {attribute.type}"]
    return []


def _bind_component(bound: BoundComponent, reader: _QueryReader, spec: AppSpec) -> list[str]:
    component = bound.spec
    where = component.where
    kind = component.type
    if kind in ("text", "markdown", "iframe"):
        return []
    if kind == "filter" and not component.get("query"):
        return []
    if kind == "diagram":
        problems: list[str] = []
        for name in component.get("tables") or []:
            try:
                _, table = reader.query(name)
            except SpecError as error:
                problems += [f"{where}: {p}" for p in error.problems]
                continue
            if table is None:
                problems.append(f"{where}: tables must name tables, not queries: {name!r}")
            else:
                bound.tables.append(table)
        return problems
    if kind == "form":
        return _bind_form(bound, reader)
    bound.query, bound.table = reader.query(component.get("query"))
    heading = bound.heading
    label = component.get("query")
    if kind == "table":
        return _bind_table(bound, label)
    if kind in ("detail", "grid"):
        return []
    if kind == "metadata":
        bound.columns = component.get("columns") or [n for n in heading.names
                                                     if not is_blob(heading[n])]
        return _check_names(bound.columns, heading, f"{where}: columns", label)
    if kind == "filter":
        name = component.get("attribute")
        problems = _check_names([name], heading, f"{where}: attribute", label)
        if not problems:
            bound.attribute = heading[name]
        return problems
    if kind in ("image", "slideshow"):
        name = component.get("attribute")
        problems = _check_names([name], heading, f"{where}: attribute", label)
        if not problems and not is_blob(heading[name]):
            problems.append(f"{where}: attribute {name!r} must hold images (a blob, an "
                            f"attachment or bytes); it is a {heading[name].type}")
        return problems
    return _bind_plot(bound, heading, label)


def _bind_table(bound: BoundComponent, label: str) -> list[str]:
    component, heading = bound.spec, bound.heading
    where = component.where
    columns = component.get("columns") or [n for n in heading.names
                                           if not is_blob(heading[n])]
    problems = _check_names(columns, heading, f"{where}: columns", label)
    if problems:
        return problems
    bound.columns = list(columns)
    filters = component.get("filters", True)
    if filters is True:
        filters = [n for n in bound.columns if not is_blob(heading[n])]
    elif filters is False:
        filters = []
    problems += _check_names(filters, heading, f"{where}: filters", label)
    problems += [f"{where}: cannot filter by {n!r}: a {heading[n].type} is not compared in SQL"
                 for n in filters if n in heading and is_blob(heading[n])]
    bound.filters = [n for n in filters if n in heading]
    sort = component.get("sort")
    if sort:
        for item in sort.split(","):
            words = item.split()
            if not words or len(words) > 2 or (len(words) == 2
                                               and words[1].lower() not in ("asc", "desc")):
                problems.append(f"{where}: cannot read sort {sort!r}: write 'attr' or "
                                "'attr desc', separated by commas")
            elif words[0] != "KEY":
                problems += _check_names([words[0]], heading, f"{where}: sort", label)
    return problems


def _bind_plot(bound: BoundComponent, heading: Heading, label: str) -> list[str]:
    component = bound.spec
    where = component.where
    kind = component.get("kind")
    names = {k: component.get(k) for k in ("x", "y", "z", "series", "figure", "color")
             if component.get(k)}
    problems = _check_names(list(names.values()), heading, f"{where}: plot", label)
    if problems:
        return problems
    for role, name in names.items():
        attribute = heading[name]
        if role == "figure":
            continue  # JSON, a blob holding a dict, or text: checked when read
        if role == "series":
            if is_blob(attribute):
                problems.append(f"{where}: series {name!r} must be a plain attribute, not a "
                                f"{attribute.type}")
        elif role == "z":
            if not attribute.is_blob:
                problems.append(f"{where}: z {name!r} must be a blob attribute holding "
                                f"arrays; it is a {attribute.type}")
        elif not attribute.is_blob and not is_numeric(attribute) and not (
                kind in ("line", "scatter") and role == "x"
                and attribute.type_info.category in ("date", "datetime", "timestamp")):
            problems.append(f"{where}: {role} {name!r} must be numeric or a blob of numbers; "
                            f"it is a {attribute.type}")
        elif is_blob(attribute) and not attribute.is_blob:
            problems.append(f"{where}: {role} {name!r} ({attribute.type}) cannot be plotted")
    return problems


def _bind_form(bound: BoundComponent, reader: _QueryReader) -> list[str]:
    component = bound.spec
    where = component.where
    value = reader.evaluate(component.get("table"))
    if not _is_table_class(value):
        return [f"{where}: table {component.get('table')!r} must name a table, not a query"]
    if not issubclass(value, Manual):
        return [f"{where}: insert forms are for Manual tables; {value.__name__} is "
                f"{value.tier}"]
    bound.table, bound.query = value, value()
    heading = bound.heading
    problems = [f"{where}: {value.__name__} cannot be filled in a form: attribute {a.name!r} "
                f"({a.type}) needs a value a form cannot give"
                for a in heading.attributes
                if is_blob(a) and not a.nullable and a.default is None]
    bound.columns = [a.name for a in heading.attributes if not is_blob(a)]
    return problems


def _check_page_key(page: PageSpec, components: dict[tuple[str, str], BoundComponent],
                    spec: AppSpec) -> list[str]:
    """A page key names attributes some component of the page has."""
    if not page.key:
        return []
    known: set[str] = set()
    for component in page.components:
        bound = components.get((page.name, component.name))
        if bound is not None and bound.query is not None and component.type != "form":
            known.update(bound.heading.names)
    unknown = [k for k in page.key if k not in known]
    if unknown:
        return [f"{f'line {page.line}: ' if page.line else ''}page {page.name!r} key: unknown attribute"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: no "
                "component of the page has it"]
    problems = []
    for page_other in spec.pages:
        for component in page_other.components:
            if component.get("link") == page.name:
                bound = components.get((page_other.name, component.name))
                if bound is not None and bound.query is not None:
                    missing = [k for k in page.key if k not in bound.heading]
                    if missing:
                        problems.append(
                            f"{component.where}: link to page {page.name!r} needs "
                            f"{', '.join(map(repr, missing))}, which its rows do not have")
    return problems
