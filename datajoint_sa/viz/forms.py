"""Forms of Manual tables: insert, update (`update1`) and delete with the cascade shown first.

Every write goes through the table's own methods (insert1, update1, the cascading delete),
so the checks are the library's: a bad value is refused naming its attribute, and nothing
is written. A delete is asked for twice: first it is planned inside a transaction that is
rolled back, and the browser shows what would go (rows per table, with the first keys);
then it runs only if the cascade is still exactly what was shown (else nothing is deleted
and the new plan is shown). Every POST needs the page's form token in a header and must not
come from another site (`auth.check_post`). Under `auth: {type: database}` each of these runs
on the logged-in user's own connection, so the database's privileges decide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..delete import cascade_delete
from ..errors import DataJointError
from . import auth, query
from .bind import BoundComponent, is_blob

if TYPE_CHECKING:
    from .app import VizApp

MAX_CHOICES = 200  # a foreign key with more parent values gets a text field
PREVIEW_ROWS = 5  # keys shown per table in a delete's confirmation
Handler = Callable[[Request], Awaitable[Response]]


class FieldError(query.RequestError):
    """A bad form value; `field` names the attribute the browser marks."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# ---- the form's description for the page -------------------------------------------------------
def component_config(viz: VizApp, bound: BoundComponent) -> dict[str, Any]:
    """What the browser needs to draw a form: its fields, actions and key."""
    table = bound.table
    assert table is not None
    actions = bound.spec.get("actions") or ["insert"]
    config: dict[str, Any] = {
        "enabled": viz.forms, "actions": actions,
        "title": bound.spec.title or (f"New {table.__name__}" if actions == ["insert"]
                                      else table.__name__),
        "primary_key": list(bound.heading.primary_key)}
    if viz.forms:
        choices = parent_choices(viz, bound)
        config["fields"] = [field(bound.heading[n], choices.get(n)) for n in bound.columns]
        config["parents"] = parent_keys(viz, bound)
    return config


def parent_keys(viz: VizApp, component: BoundComponent) -> list[dict[str, Any]]:
    """For each parent referenced by several attributes (e.g. a session's subject and date):
    its keys, each as the form's attribute values, for a drop-down that fills those fields
    together (parents with at most MAX_CHOICES rows)."""
    from .app import class_label  # back-edge: app imports this module

    table = component.table
    assert table is not None
    by_node = {t().node_name: t for t in viz.bound.tables}
    found = []
    for edge in viz.graph().parents(table().node_name):
        parent = by_node.get(edge.parent)
        if parent is None or len(edge.attr_map) < 2:
            continue
        names = [p for _, p in edge.attr_map]
        rows = auth.user_bound(parent()).fetch(*names, as_dict=True, order_by=names,
                                               limit=MAX_CHOICES + 1)
        if len(rows) <= MAX_CHOICES:
            found.append({"table": class_label(parent), "attributes": [c for c, _ in
                                                                       edge.attr_map],
                          "options": [{c: query.key_text(row[p]) for c, p in edge.attr_map}
                                      for row in rows]})
    return found


def parent_choices(viz: VizApp, component: BoundComponent) -> dict[str, list[str]]:
    """Values a foreign-key attribute can take, for a drop-down (parents of a single key
    attribute, with at most MAX_CHOICES rows), read with the user's own connection."""
    table = component.table
    assert table is not None
    by_node = {t().node_name: t for t in viz.bound.tables}
    choices: dict[str, list[str]] = {}
    for edge in viz.graph().parents(table().node_name):
        parent = by_node.get(edge.parent)
        if parent is None or len(edge.attr_map) != 1:
            continue
        (child_attr, parent_attr), = edge.attr_map
        values = auth.user_bound(parent()).fetch(parent_attr, order_by=parent_attr,
                                                 limit=MAX_CHOICES + 1)
        if len(values) <= MAX_CHOICES:
            choices[child_attr] = [query.key_text(v) for v in values]
    return choices


def field(attribute: Any, choices: list[str] | None = None) -> dict[str, Any]:
    """An input field (a drop-down of `choices` when given; the page adds an empty first
    option, so nothing is preselected)."""
    category = attribute.type_info.category
    spec: dict[str, Any] = {"name": attribute.name, "type": attribute.type,
                            "comment": attribute.comment, "in_key": attribute.in_key,
                            "required": not attribute.nullable and attribute.default is None
                            and not attribute.autoincrement,
                            "input": "text"}
    if attribute.type_info.is_integer:
        spec.update(input="number", step="1")
    elif category in ("float32", "float64", "decimal"):
        spec.update(input="number", step="any")
    elif category == "date":
        spec["input"] = "date"
    elif category in ("datetime", "timestamp"):
        spec.update(input="datetime-local", step="1")
    elif category == "time":
        spec.update(input="time", step="1")
    elif category == "enum":
        spec.update(input="select", options=list(attribute.type_info.enum_values))
    elif category == "bool":
        spec.update(input="select", options=["true", "false"])
    elif category in ("char", "varchar") and attribute.type_info.args:
        spec["maxlength"] = attribute.type_info.args[0]
    if choices is not None:
        spec.update(input="select", options=choices)
    if attribute.default is not None:
        spec["placeholder"] = f"default: {attribute.default}"
    return spec


# ---- reading the browser's values --------------------------------------------------------------
def form_row(component: BoundComponent, body: dict[str, Any], *, update: bool = False
             ) -> dict[str, Any]:
    """The row a form's fields give, each value checked against its attribute's type. An
    empty field is no value (the default, NULL or "needed") for an insert, and NULL for an
    update (update1 refuses it for a NOT NULL attribute, naming it)."""
    heading = component.heading
    unknown = [k for k in body if k not in component.columns]
    if unknown:
        raise FieldError(f"unknown field{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}")
    row: dict[str, Any] = {}
    for name in component.columns:
        if name not in body:
            continue
        value = body[name]
        attribute = heading[name]
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if update and not attribute.in_key:
                row[name] = None
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        try:
            row[name] = query.coerce(attribute, str(value))
        except query.RequestError as error:
            raise FieldError(str(error), name) from None
    needed = heading.primary_key if update else [
        a.name for a in heading.attributes if not a.nullable and a.default is None
        and not a.autoincrement and not is_blob(a)]
    missing = [n for n in needed if n not in row]
    if missing:
        raise FieldError(f"a value is needed for {', '.join(missing)}", missing[0])
    return row


def form_key(component: BoundComponent, body: Any) -> dict[str, Any]:
    """The whole primary key of one row, from `{"key": {...}}`."""
    given = body.get("key") if isinstance(body, dict) else None
    if not isinstance(given, dict):
        raise FieldError("the request needs the row's key")
    key: dict[str, Any] = {}
    for name in component.heading.primary_key:
        text = given.get(name)
        if text is None or str(text).strip() == "":
            raise FieldError(f"a value is needed for {name}", name)
        try:
            key[name] = query.coerce(component.heading[name], str(text))
        except query.RequestError as error:
            raise FieldError(str(error), name) from None
    return key


# ---- the handlers ------------------------------------------------------------------------------
class Forms:
    """The form routes of one app (see the module doc)."""

    def __init__(self, viz: VizApp) -> None:
        self.viz = viz

    def _form(self, request: Request, action: str) -> BoundComponent:
        component = self.viz._component(request)
        if component.spec.type != "form" or not self.viz.forms:
            raise Refused("forms are disabled: this app is read-only")
        if action not in (component.spec.get("actions") or ["insert"]):
            raise Refused(f"this form does not {action}")
        return component

    async def _body(self, request: Request, component: BoundComponent) -> dict[str, Any]:
        refused = auth.check_post(request, auth.csrf_token(request, self.viz.csrf),
                                  request.headers.get("x-dj-csrf", ""))
        if refused:
            raise Refused(refused)
        try:
            body = await request.json()
        except ValueError:
            raise query.RequestError("the form data is not JSON") from None
        if not isinstance(body, dict):
            raise query.RequestError("the form data must be an object")
        return body

    def _table(self, component: BoundComponent) -> Any:
        assert component.table is not None
        return auth.user_bound(component.table())

    async def insert(self, request: Request) -> Response:
        component = self._form(request, "insert")
        row = form_row(component, await self._body(request, component))

        def write() -> dict[str, str]:
            target = self._table(component)
            target.insert1(row)
            return {k: query.key_text(v) for k, v in row.items() if k in target.primary_key}

        inserted = await self.viz._run(self._written(write))
        return JSONResponse({"inserted": inserted})

    async def row(self, request: Request) -> Response:
        """The current values of one row, to fill the form for an update or a delete."""
        component = self.viz._component(request)
        if component.spec.type != "form" or not self.viz.forms:
            raise Refused("forms are disabled: this app is read-only")
        key = form_key(component, {"key": {k[2:]: v for k, v in request.query_params.items()
                                           if k.startswith("k.")}})

        def read() -> dict[str, Any]:
            rows = (self._table(component) & key).fetch(*component.columns, as_dict=True,
                                                        limit=2)
            if len(rows) != 1:
                raise FieldError(f"no row of {component.table.__name__} has this key"  # type: ignore[union-attr]
                                 , component.heading.primary_key[0])
            return {k: None if v is None else query.key_text(v) for k, v in rows[0].items()}

        return JSONResponse({"row": await self.viz._run(read)})

    async def update(self, request: Request) -> Response:
        component = self._form(request, "update")
        row = form_row(component, await self._body(request, component), update=True)

        def write() -> dict[str, str]:
            self._table(component).update1(row)
            return {k: query.key_text(row[k]) for k in component.heading.primary_key}

        return JSONResponse({"updated": await self.viz._run(self._written(write))})

    async def delete(self, request: Request) -> Response:
        """Without `confirm`: the plan. With `confirm` (the plan's counts as shown): the
        delete, when the plan is still the same."""
        component = self._form(request, "delete")
        body = await self._body(request, component)
        key = form_key(component, body)
        confirmed = body.get("confirm")
        if confirmed is not None and not (isinstance(confirmed, dict) and all(
                isinstance(v, int) for v in confirmed.values())):
            raise query.RequestError("confirm must map tables to row counts")

        def plan_or_delete() -> dict[str, Any]:
            target = self._table(component) & key
            seen: dict[str, int] = {}

            def decide(counts: dict[str, int]) -> bool:
                seen.update({n: c for n, c in counts.items() if c})
                return confirmed is not None and seen == confirmed

            target.connection.retrying(
                lambda: cascade_delete(target, safemode=False, force_masters=False,
                                       decide=decide))
            if confirmed is not None and seen == confirmed:
                self.viz.counts.clear()
                return {"deleted": seen, "total": sum(seen.values())}
            return {"plan": self._plan(seen, key), "counts": seen,
                    "total": sum(seen.values()), "changed": confirmed is not None}

        result = await self.viz._run(plan_or_delete)
        return JSONResponse(result, status_code=409 if result.get("changed") else 200)

    def _plan(self, counts: dict[str, int], key: dict[str, Any]) -> list[dict[str, Any]]:
        """Per table: its name, the rows that would go and the first few of their keys
        (where the table's heading holds the deleted row's key)."""
        from .app import class_label  # back-edge: app imports this module

        by_node = {t().node_name: t for t in self.viz.bound.tables}
        plan = []
        for node, count in reversed(counts.items()):  # deleted children first
            table = by_node.get(node)
            item: dict[str, Any] = {"node": node, "count": count,
                                    "table": class_label(table) if table else node, "keys": []}
            if table is not None and all(k in table().heading for k in key):
                rows = (auth.user_bound(table()) & key).fetch(
                    "KEY", limit=PREVIEW_ROWS, as_dict=True)
                item["keys"] = [{k: query.key_text(v) for k, v in r.items()} for r in rows]
            plan.append(item)
        return plan

    def _written(self, write: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            result = write()
            self.viz.counts.clear()
            return result

        return run

    def routes(self, errors: Callable[[Handler], Handler]) -> list[Route]:
        base = "/api/{page}/{component}"
        return [Route(base, errors(self.insert), methods=["POST"]),
                Route(base + "/row", errors(self.row), methods=["GET"]),
                Route(base + "/update", errors(self.update), methods=["POST"]),
                Route(base + "/delete", errors(self.delete), methods=["POST"])]


class Refused(DataJointError):
    """A form request that is not allowed here (403)."""


def guarded(handler: Handler) -> Handler:
    """Form errors as JSON the page can show next to the field: 403 for refusals, 400 with
    `field` for a bad value, 400 for what the library refuses (its message names the table
    and attribute)."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as error:
            return JSONResponse({"error": str(error)}, status_code=403)
        except FieldError as error:
            return JSONResponse({"error": str(error), "field": error.field}, status_code=400)

    return wrapped
