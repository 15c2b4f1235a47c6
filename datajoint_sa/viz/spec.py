"""The app's YAML spec -> plain dataclasses, checked for shape before anything connects.

This module knows YAML and the vocabulary of the spec (pages, components, their keys) but no
database: unknown keys, bad component types and bad plot kinds are found here, each error
naming the spec file's line. Whether tables and attributes exist is `bind.py`'s question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataJointError


class SpecError(DataJointError):
    """A spec that cannot describe an app; `problems` lists every problem found."""

    def __init__(self, problems: list[str] | str, source: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            text = f"{where}{self.problems[0]}"
        else:
            text = f"{where}{len(self.problems)} problems in the app spec:\n" + "\n".join(
                f"  - {p}" for p in self.problems)
        super().__init__(text)


PLOT_KINDS = ("line", "scatter", "histogram", "image", "heatmap", "plotly")
FILTER_CONTROLS = ("dropdown", "radio", "slider", "daterange", "text")
FILTER_OPS = ("=", "<=", ">=", "<", ">")
AUTH_TYPES = ("basic", "token", "database", "oidc")
FORM_ACTIONS = ("insert", "update", "delete")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
MAX_PAGE_SIZE = 500
MAX_GRID_COLUMNS = 12
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:\d+)?([/?#][^\s\"'<>;]*)?")

_APP_KEYS = {"title", "module", "activate", "schemas", "forms", "auth", "page_size", "pages"}
_PAGE_KEYS = {"name", "title", "key", "components", "hidden", "columns"}
_COMMON_KEYS = {"type", "name", "title", "restricted_by", "cell", "filtered_by"}
_CELL_KEYS = ("row", "column", "width", "height")

# The component registry: each kind's own keys and the ones it needs. A module that adds a
# kind (forms, ...) registers it with `register_component`; bind.py and app.py look the kind
# up by name.
_COMPONENT_KEYS: dict[str, set[str]] = {}
_REQUIRED: dict[str, tuple[str, ...]] = {}


def register_component(kind: str, keys: set[str], required: tuple[str, ...] = ()) -> None:
    """Make `type: kind` a valid component with these keys (besides the common ones)."""
    _COMPONENT_KEYS[kind] = set(keys)
    _REQUIRED[kind] = tuple(required)


for _kind, _keys, _needed in (
        ("table", {"query", "columns", "filters", "sort", "page_size", "link"}, ("query",)),
        ("detail", {"query", "parts", "children"}, ("query",)),
        ("plot", {"query", "kind", "x", "y", "z", "series", "bins", "max_rows", "max_points",
                  "figure", "color", "colorscale"}, ("query", "kind")),
        ("diagram", {"tables"}, ()),
        ("form", {"table", "actions"}, ("table",)),
        ("text", {"content"}, ("content",)),
        ("markdown", {"content"}, ("content",)),
        ("iframe", {"url", "height"}, ("url",)),
        ("image", {"query", "attribute", "sort", "height"}, ("query", "attribute")),
        ("slideshow", {"query", "attribute", "sort", "max_rows", "height"},
         ("query", "attribute")),
        ("metadata", {"query", "columns"}, ("query",)),
        ("filter", {"control", "attribute", "query", "options", "min", "max", "step", "op",
                    "depends_on", "default"}, ("control", "attribute")),
        ("grid", {"query", "per_row", "max_cells", "sort", "components"},
         ("query", "components")),
):
    register_component(_kind, _keys, _needed)

#: kinds that cannot be a dynamic grid's cell template
_NOT_IN_GRID = {"grid", "filter", "form", "diagram"}


def component_types() -> tuple[str, ...]:
    return tuple(_COMPONENT_KEYS)


COMPONENT_TYPES = component_types()  # the built-in kinds (see register_component)


# ---- YAML with line numbers ---------------------------------------------------------------
class _Mapping(dict):
    """A YAML mapping that remembers the line it starts on."""

    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise SpecError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# ---- the spec -------------------------------------------------------------------------------
@dataclass
class ComponentSpec:
    type: str
    name: str
    title: str
    line: int
    options: dict[str, Any] = field(default_factory=dict)
    restricted_by: str | None = None
    cell: dict[str, int] = field(default_factory=dict)  # row, column, width, height
    filtered_by: list[str] | None = None  # None: every filter of the page that applies
    children: list[ComponentSpec] = field(default_factory=list)  # a grid's cell templates

    @property
    def where(self) -> str:
        return f"{f'line {self.line}: ' if self.line else ''}component {self.name!r} ({self.type})"

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass
class PageSpec:
    name: str
    title: str
    line: int
    key: list[str] = field(default_factory=list)
    hidden: bool = False
    components: list[ComponentSpec] = field(default_factory=list)
    columns: int = 1  # the fixed grid's columns

    def component(self, name: str) -> ComponentSpec | None:
        return next((c for c in self.components if c.name == name), None)

    @property
    def filters(self) -> list[ComponentSpec]:
        return [c for c in self.components if c.type == "filter"]


@dataclass
class AuthSpec:
    type: str  # "basic", "token", "database" or "oidc" (the last two: see viz/auth.py)
    env: str = ""  # the token's environment variable
    user_env: str = ""
    password_env: str = ""
    # database and oidc: a signed session cookie
    secret_env: str = ""  # the session cookie's signing key (random per process if unset)
    secure: bool = False  # the cookie only over https
    idle_minutes: int = 30  # a session (and a database login's connection) ends when idle
    # oidc
    issuer: str = ""
    client_id: str = ""
    client_secret_env: str = ""
    scope: str = "openid email profile"
    allow: list[str] = field(default_factory=list)  # emails or subjects; empty: anyone


@dataclass
class AppSpec:
    title: str
    module: str | None
    activate: dict[str, Any]
    schemas: dict[str, str]
    forms: bool
    auth: AuthSpec | None
    page_size: int
    pages: list[PageSpec]
    source: str = ""

    def page(self, name: str) -> PageSpec | None:
        return next((p for p in self.pages if p.name == name), None)


def load_spec(source: str | Path | dict[str, Any]) -> AppSpec:
    """Read and check a spec from a YAML file path, YAML text, or an already-parsed dict."""
    label = ""
    if isinstance(source, dict):
        data: Any = source
    else:
        text = str(source)
        if isinstance(source, Path) or ("\n" not in text and text.endswith((".yaml", ".yml"))):
            path = Path(source)
            label = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as error:
                raise SpecError(f"cannot read the app spec: {error.strerror}", label) from None
        try:
            data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        except SpecError as error:
            raise SpecError(error.problems, label) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error)
            raise SpecError(f"{where}not valid YAML: {problem}", label) from None
    problems: list[str] = []
    spec = _check_app(data, problems)
    if problems or spec is None:
        raise SpecError(problems or ["the spec is empty"], label)
    spec.source = label
    return spec


def _line(mapping: Any) -> str:
    line = getattr(mapping, "line", 0)
    return f"line {line}: " if line else ""


def _unknown_keys(mapping: dict[str, Any], known: set[str], what: str,
                  problems: list[str]) -> None:
    for key in mapping:
        if key not in known:
            problems.append(f"{_line(mapping)}unknown key {key!r} in {what}; known keys: "
                            f"{', '.join(sorted(known))}")


def _string_list(value: Any, what: str, problems: list[str], mapping: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{_line(mapping)}{what} must be a list of attribute names")
        return []
    return list(value)


def _positive_int(value: Any, what: str, problems: list[str], mapping: Any,
                  maximum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"{_line(mapping)}{what} must be a positive integer, not {value!r}")
        return None
    if maximum is not None and value > maximum:
        problems.append(f"{_line(mapping)}{what} must be at most {maximum}, not {value}")
        return None
    return value


def _check_app(data: Any, problems: list[str]) -> AppSpec | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append("the spec must be a mapping with `pages:` (and `module:` or "
                        "`schemas:`)")
        return None
    _unknown_keys(data, _APP_KEYS, "the app spec", problems)
    module = data.get("module")
    if module is not None and (not isinstance(module, str)
                               or not re.fullmatch(r"[A-Za-z_][\w.]*", module)):
        problems.append(f"{_line(data)}module must be a dotted Python module name, "
                        f"not {module!r}")
        module = None
    activate = data.get("activate") or {}
    if not isinstance(activate, dict) or not all(isinstance(k, str) for k in activate):
        problems.append(f"{_line(data)}activate must be a mapping of keyword arguments for the "
                        "module's activate() function")
        activate = {}
    if activate and not module:
        problems.append(f"{_line(data)}activate needs a module")
    schemas = data.get("schemas") or {}
    if isinstance(schemas, list):
        schemas = {str(s): s for s in schemas}
    if not isinstance(schemas, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in schemas.items()):
        problems.append(f"{_line(data)}schemas must map names to database schema names, e.g. "
                        "{lab: neuro_lab}")
        schemas = {}
    if not module and not schemas:
        problems.append(f"{_line(data)}the spec needs `module:` (a pipeline module to import) "
                        "or `schemas:` (schemas to read from the database)")
    forms = data.get("forms", False)
    if not isinstance(forms, bool):
        problems.append(f"{_line(data)}forms must be true or false")
        forms = False
    page_size = _positive_int(data.get("page_size"), "page_size", problems, data,
                              MAX_PAGE_SIZE) or 25
    title = data.get("title", "DataJoint")
    if not isinstance(title, str):
        problems.append(f"{_line(data)}title must be text")
        title = "DataJoint"
    auth = _check_auth(data.get("auth"), problems, data)
    pages_data = data.get("pages")
    pages: list[PageSpec] = []
    if not isinstance(pages_data, list) or not pages_data:
        problems.append(f"{_line(data)}pages must be a non-empty list of pages")
    else:
        for index, page_data in enumerate(pages_data):
            page = _check_page(page_data, index, problems)
            if page is not None:
                pages.append(page)
    names = [p.name for p in pages]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"page name {name!r} is used more than once")
    _check_references(pages, problems)
    return AppSpec(title=title, module=module, activate=dict(activate), schemas=dict(schemas),
                   forms=forms, auth=auth, page_size=page_size, pages=pages)


_AUTH_KEYS = {
    "basic": {"user_env", "password_env"}, "token": {"env"},
    "database": {"secret_env", "secure", "idle_minutes"},
    "oidc": {"secret_env", "secure", "idle_minutes", "issuer", "client_id",
             "client_secret_env", "scope", "allow"},
}
_AUTH_NEEDED = {"basic": ("user_env", "password_env"), "token": ("env",), "database": (),
                "oidc": ("issuer", "client_id", "client_secret_env")}


def _check_auth(data: Any, problems: list[str], parent: Any) -> AuthSpec | None:
    if data is None or data is False:
        return None
    if not isinstance(data, dict):
        problems.append(f"{_line(parent)}auth must be a mapping, e.g. "
                        "{type: token, env: DJ_VIZ_TOKEN}")
        return None
    kind = data.get("type")
    if kind not in AUTH_TYPES:
        problems.append(f"{_line(data)}auth type must be one of {', '.join(AUTH_TYPES)}, "
                        f"not {kind!r}")
        return None
    _unknown_keys(data, {"type"} | _AUTH_KEYS[kind], f"auth {kind}", problems)
    for key in _AUTH_NEEDED[kind]:
        if not data.get(key):
            naming = " naming an environment variable (secrets are never written in the " \
                "spec)" if key.endswith("env") else ""
            problems.append(f"{_line(data)}auth {kind} needs `{key}:`{naming}")
    for key in ("env", "user_env", "password_env", "secret_env", "client_secret_env"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str)
                                  or not re.fullmatch(r"[A-Za-z_]\w*", value)):
            problems.append(f"{_line(data)}auth {kind}: `{key}:` must name an environment "
                            "variable (secrets are never written in the spec)")
    for key in ("issuer", "client_id", "scope"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"{_line(data)}auth {kind}: {key} must be text")
    issuer = data.get("issuer")
    if isinstance(issuer, str) and issuer and not re.match(r"https?://", issuer):
        problems.append(f"{_line(data)}auth oidc: issuer must be an http(s) address")
    if "secure" in data and not isinstance(data["secure"], bool):
        problems.append(f"{_line(data)}auth {kind}: secure must be true or false")
    idle = _positive_int(data.get("idle_minutes"), f"auth {kind}: idle_minutes", problems,
                         data, 7 * 24 * 60)
    allow = _string_list(data.get("allow"), f"auth {kind}: allow", problems, data)
    values: dict[str, Any] = {k: v for k, v in data.items() if k not in ("type", "idle_minutes", "allow")
              and isinstance(v, str | bool) and k in _AUTH_KEYS[kind]}
    return AuthSpec(type=kind, idle_minutes=idle or 30, allow=allow, **values)


def _check_page(data: Any, index: int, problems: list[str]) -> PageSpec | None:
    if not isinstance(data, dict):
        problems.append(f"pages[{index}] must be a mapping with name and components")
        return None
    _unknown_keys(data, _PAGE_KEYS, f"page {data.get('name', index)!r}", problems)
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{_line(data)}page name must be letters, digits, '_' or '-' "
                        f"starting with a letter, not {name!r}")
        name = f"page{index}"
    title = data.get("title", name.replace("_", " ").replace("-", " ").capitalize())
    key = _string_list(data.get("key"), f"page {name!r} key", problems, data)
    hidden = data.get("hidden", bool(key))
    if not isinstance(hidden, bool):
        problems.append(f"{_line(data)}hidden must be true or false")
        hidden = bool(key)
    columns = _positive_int(data.get("columns"), f"page {name!r} columns", problems, data,
                            MAX_GRID_COLUMNS) or 1
    page = PageSpec(name=name, title=str(title), line=getattr(data, "line", 0), key=key,
                    hidden=hidden, columns=columns)
    components = data.get("components")
    if not isinstance(components, list) or not components:
        problems.append(f"{_line(data)}page {name!r} needs a non-empty list of components")
        return page
    for position, item in enumerate(components):
        component = _check_component(item, f"page {name!r}, component {position + 1}",
                                     position, problems)
        if component is not None:
            page.components.append(component)
    names = [c.name for c in page.components]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{_line(data)}component name {dup!r} is used more than once on "
                        f"page {name!r}")
    _check_cells(page, problems)
    return page


def _check_cells(page: PageSpec, problems: list[str]) -> None:
    """Fixed-grid cells fit the page's columns."""
    for component in page.components:
        cell = component.cell
        right = cell.get("column", 1) + cell.get("width", 1) - 1
        if right > page.columns:
            problems.append(f"{component.where}: cell reaches column {right}, but page "
                            f"{page.name!r} has {page.columns} (set the page's `columns:`)")


def _check_component(data: Any, what: str, position: int,
                     problems: list[str]) -> ComponentSpec | None:
    if not isinstance(data, dict):
        problems.append(f"{what} must be a mapping with a type")
        return None
    kind = data.get("type")
    if kind not in _COMPONENT_KEYS:
        problems.append(f"{_line(data)}{what}: bad component type {kind!r}; the types are "
                        f"{', '.join(component_types())}")
        return None
    name = data.get("name", f"{kind}{position + 1}")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{_line(data)}{what}: component name must be letters, digits, '_' "
                        f"or '-' starting with a letter, not {name!r}")
        name = f"{kind}{position + 1}"
    _unknown_keys(data, _COMMON_KEYS | _COMPONENT_KEYS[kind], f"{kind} component {name!r}",
                  problems)
    for key in _REQUIRED.get(kind, ()):
        if data.get(key) in (None, ""):
            problems.append(f"{_line(data)}{kind} component {name!r} needs `{key}:`")
    options = {k: v for k, v in data.items() if k not in _COMMON_KEYS}
    component = ComponentSpec(type=kind, name=name, title=str(data.get("title") or ""),
                              line=getattr(data, "line", 0), options=options,
                              restricted_by=data.get("restricted_by"))
    where = f"{_line(data)}{kind} component {name!r}"
    component.cell = _check_cell(data.get("cell"), where, problems)
    if "filtered_by" in data:
        component.filtered_by = _string_list(data["filtered_by"], f"{where}: filtered_by",
                                             problems, None)
    for key in ("query", "table", "sort", "link", "x", "y", "z", "series", "content",
                "figure", "color", "colorscale", "url", "attribute", "control", "op"):
        if key in options and options[key] is not None and not isinstance(options[key], str):
            problems.append(f"{where}: {key} must be text, not {options[key]!r}")
    if component.restricted_by is not None and not isinstance(component.restricted_by, str):
        problems.append(f"{where}: restricted_by must name a component of the same page")
        component.restricted_by = None
    for key in ("columns", "tables", "depends_on"):
        if key in options:
            options[key] = _string_list(options[key], f"{where}: {key}", problems, None)
    if "filters" in options and not isinstance(options["filters"], bool):
        options["filters"] = _string_list(options["filters"], f"{where}: filters", problems,
                                          None)
    if "actions" in options:
        actions = _string_list(options["actions"], f"{where}: actions", problems, None)
        bad = [a for a in actions if a not in FORM_ACTIONS]
        if bad or not actions:
            problems.append(f"{where}: actions must be some of {', '.join(FORM_ACTIONS)}, "
                            f"not {options['actions']!r}")
        options["actions"] = [a for a in actions if a in FORM_ACTIONS] or ["insert"]
    for key in ("parts", "children"):
        if key in options and not isinstance(options[key], bool):
            problems.append(f"{where}: {key} must be true or false")
    for key, maximum in (("page_size", MAX_PAGE_SIZE), ("bins", 1000),
                         ("max_rows", 100_000), ("max_points", 2_000_000), ("height", 4000),
                         ("per_row", MAX_GRID_COLUMNS), ("max_cells", 200)):
        if key in options:
            options[key] = _positive_int(options[key], f"{where}: {key}", problems, None,
                                         maximum)
    if kind == "plot":
        plot_kind = options.get("kind")
        if plot_kind is not None and plot_kind not in PLOT_KINDS:
            problems.append(f"{where}: bad plot kind {plot_kind!r}; the kinds are "
                            f"{', '.join(PLOT_KINDS)}")
        elif plot_kind in ("image", "heatmap") and not options.get("z"):
            problems.append(f"{where}: an {plot_kind} plot needs `z:` (a blob attribute "
                            "holding a 2-D array, or 1-D arrays stacked row by row)")
        elif plot_kind == "histogram" and not (options.get("x") or options.get("y")):
            problems.append(f"{where}: a histogram needs `x:` (a numeric or blob attribute)")
        elif plot_kind in ("line", "scatter") and not options.get("y"):
            problems.append(f"{where}: a {plot_kind} plot needs `y:`")
        elif plot_kind == "plotly" and not options.get("figure"):
            problems.append(f"{where}: a plotly plot needs `figure:` (an attribute holding "
                            "a Plotly figure as JSON)")
    elif kind == "filter":
        _check_filter(component, where, problems)
    elif kind == "iframe":
        url = options.get("url")
        if isinstance(url, str) and not _URL.fullmatch(url):
            problems.append(f"{where}: url must be an http:// or https:// address, not "
                            f"{url!r}")
    elif kind == "grid":
        templates = options.pop("components", None)
        if not isinstance(templates, list) or not templates:
            problems.append(f"{where}: a grid needs `components:`, the list of what each "
                            "cell shows (restricted to the cell's row)")
        else:
            for position, item in enumerate(templates):
                child = _check_component(item, f"{where}, cell component {position + 1}",
                                         position, problems)
                if child is None:
                    continue
                if child.type in _NOT_IN_GRID:
                    problems.append(f"{child.where}: a {child.type} cannot be in a grid's "
                                    "cell")
                elif child.restricted_by or child.cell:
                    problems.append(f"{child.where}: a grid's cell component is restricted "
                                    "by its cell's row (no restricted_by or cell)")
                component.children.append(child)
            child_names = [c.name for c in component.children]
            for dup in sorted({n for n in child_names if child_names.count(n) > 1}):
                problems.append(f"{where}: cell component name {dup!r} is used more than "
                                "once")
    return component


def _check_cell(data: Any, where: str, problems: list[str]) -> dict[str, int]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(f"{where}: cell must be a mapping of row, column, width, height")
        return {}
    cell: dict[str, int] = {}
    for key, value in data.items():
        if key not in _CELL_KEYS:
            problems.append(f"{where}: unknown key {key!r} in cell; known keys: "
                            f"{', '.join(_CELL_KEYS)}")
            continue
        number = _positive_int(value, f"{where}: cell {key}", problems, None,
                               MAX_GRID_COLUMNS if key in ("column", "width") else 1000)
        if number is not None:
            cell[key] = number
    return cell


def _check_filter(component: ComponentSpec, where: str, problems: list[str]) -> None:
    options = component.options
    control = options.get("control")
    if control not in FILTER_CONTROLS:
        problems.append(f"{where}: bad filter control {control!r}; the controls are "
                        f"{', '.join(FILTER_CONTROLS)}")
        return
    choices = options.get("options")
    if choices is not None and (not isinstance(choices, list) or not all(
            isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in choices)):
        problems.append(f"{where}: options must be a list of values")
    if control in ("dropdown", "radio") and not (options.get("query") or choices):
        problems.append(f"{where}: a {control} filter needs `query:` (whose values of the "
                        "attribute are the choices) or `options:`")
    if control == "slider":
        for key in ("min", "max", "step"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                problems.append(f"{where}: {key} must be a number, not {value!r}")
        if not options.get("query") and (options.get("min") is None
                                         or options.get("max") is None):
            problems.append(f"{where}: a slider needs `min:` and `max:`, or `query:` to take "
                            "them from")
    op = options.get("op")
    if op is not None and op not in FILTER_OPS:
        problems.append(f"{where}: op must be one of {', '.join(FILTER_OPS)}, not {op!r}")
    default = options.get("default")
    if default is not None and not isinstance(default, (str, int, float)):
        problems.append(f"{where}: default must be a value, not {default!r}")


def _check_references(pages: list[PageSpec], problems: list[str]) -> None:
    """Links name existing pages; restricted_by names a table on the same page; filtered_by
    and depends_on name filters of the same page, without cycles."""
    by_name = {p.name: p for p in pages}
    for page in pages:
        filters = {f.name: f for f in page.filters}
        for component in page.components:
            for ref in (component.filtered_by or []) + list(component.get("depends_on") or []):
                if ref not in filters:
                    problems.append(f"{component.where}: {ref!r} is not a filter of page "
                                    f"{page.name!r}; filters: {', '.join(filters) or 'none'}")
        for name in filters:
            seen: list[str] = []
            todo = [name]
            while todo:
                current = todo.pop()
                for dep in filters[current].get("depends_on") or [] if current in filters \
                        else []:
                    if dep == name:
                        problems.append(f"{filters[name].where}: depends_on makes a cycle")
                        todo = []
                        break
                    if dep not in seen:
                        seen.append(dep)
                        todo.append(dep)
        for component in page.components:
            link = component.get("link")
            if isinstance(link, str) and link not in by_name:
                problems.append(f"{component.where}: link to unknown page {link!r}; pages: "
                                f"{', '.join(by_name)}")
            source = component.restricted_by
            if source is None:
                continue
            target = page.component(source)
            if target is None:
                problems.append(f"{component.where}: restricted_by names unknown component "
                                f"{source!r} of page {page.name!r}")
            elif target.type != "table":
                problems.append(f"{component.where}: restricted_by must name a table "
                                f"component; {source!r} is a {target.type}")
            elif target is component:
                problems.append(f"{component.where}: a component cannot be restricted by "
                                "itself")
