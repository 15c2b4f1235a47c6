"""Plot components -> Plotly figures (data and layout as JSON), bounded in size.

A plot fetches at most `max_rows` rows and sends at most `max_points` points; arrays in blob
attributes are plotted as they come (a line per row, a raster of spike times against a
unit's number, a histogram of every value, an image of a 2-D array or of 1-D arrays stacked
row by row). Histograms are binned here, so the browser gets bins, not values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..expression import QueryExpression
from ..heading import Heading
from .query import jsonable
from .views import unit_of

DEFAULT_MAX_ROWS = 1000
DEFAULT_MAX_BLOB_ROWS = 100  # rows whose arrays are fetched for one plot
DEFAULT_MAX_POINTS = 200_000
MAX_IMAGE_SIDE = 400
WEBGL_POINTS = 20_000


def _numbers(values: Any) -> list[Any]:
    """A JSON list of numbers (NaN and infinities as null)."""
    array = np.asarray(values, dtype=float).ravel()
    finite = np.isfinite(array)
    if finite.all():
        return array.tolist()
    return [v if ok else None for v, ok in zip(array.tolist(), finite.tolist())]


def _axis_values(values: list[Any]) -> list[Any]:
    if all(isinstance(v, (int, float, np.integer, np.floating)) or v is None for v in values):
        return _numbers([np.nan if v is None else v for v in values])
    return [jsonable(v) for v in values]


def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return array


def figure(expr: QueryExpression, options: dict[str, Any]) -> dict[str, Any]:
    """The Plotly figure of a plot component over the rows of `expr`."""
    kind = options["kind"]
    heading = expr.heading
    blobs = any(heading[options[k]].is_blob for k in ("x", "y", "z") if options.get(k))
    max_rows = options.get("max_rows") or (DEFAULT_MAX_BLOB_ROWS if blobs else DEFAULT_MAX_ROWS)
    max_points = options.get("max_points") or DEFAULT_MAX_POINTS
    names = [options[k] for k in ("x", "y", "z", "series", "color") if options.get(k)]
    names = list(dict.fromkeys([*names, *heading.primary_key]))
    order = [options["x"]] if options.get("x") and kind in ("line", "scatter") \
        and not heading[options["x"]].is_blob else []
    order += [k for k in heading.primary_key if k not in order]
    if kind in ("image", "heatmap"):  # a 2-D array needs its first row only
        rows = expr.fetch(*names, as_dict=True, order_by=order, limit=1)
        first = _array(rows[0][options["z"]]) if rows else None
        if first is not None and first.ndim < 2:
            rows = expr.fetch(*names, as_dict=True, order_by=order, limit=max_rows + 1)
    else:
        rows = expr.fetch(*names, as_dict=True, order_by=order, limit=max_rows + 1)
    notes = []
    if len(rows) > max_rows:
        rows = rows[:max_rows]
        notes.append(f"first {max_rows} rows")
    layout: dict[str, Any] = {"title": {"text": ""}, "margin": {"t": 30, "r": 20},
                              "showlegend": False}
    if kind in ("line", "scatter"):
        data, truncated = _xy_traces(rows, options, heading, kind, max_points)
        layout["xaxis"] = {"title": {"text": axis_title(heading, options.get("x"))}}
        layout["yaxis"] = {"title": {"text": axis_title(heading, options["y"])}}
        layout["showlegend"] = 1 < len(data) <= 20
        _hover(data, heading, options)
    elif kind == "histogram":
        data, truncated = _histogram(rows, options, max_points)
        layout["xaxis"] = {"title": {"text": axis_title(heading, options.get("x")
                                                        or options.get("y"))}}
        layout["yaxis"] = {"title": {"text": "count"}}
        layout["bargap"] = 0.02
        if len(data) > 1:
            layout.update(barmode="overlay", showlegend=len(data) <= 20)
    else:
        data, truncated = _image(rows, options)
        if data:
            data[0]["colorbar"] = {"title": {"text": unit_of(heading[options["z"]].comment)}}
        layout["yaxis"] = {"autorange": "reversed"}
        if kind == "image":
            layout["yaxis"]["scaleanchor"] = "x"
    if truncated:
        notes.append(truncated)
    if not rows:
        notes.append("no rows")
    if notes:  # the page shows the component's title; the plot says what it left out
        layout["title"]["text"] = f"({'; '.join(notes)})"
    return {"data": data, "layout": layout, "rows": len(rows)}


def axis_title(heading: Heading, name: str | None) -> str:
    """`name [unit]`, the unit from the attribute's comment (`# ... [mV]`)."""
    if not name:
        return "index"
    unit = unit_of(heading[name].comment)
    return f"{name} [{unit}]" if unit else name


def _hover(data: list[dict[str, Any]], heading: Heading, options: dict[str, Any]) -> None:
    """Each point's hover names its row (`customdata`) and shows x and y with units."""
    x_title = axis_title(heading, options.get("x"))
    y_title = axis_title(heading, options["y"])
    for trace in data:
        who = "%{customdata}" if "customdata" in trace else "%{fullData.name}"
        trace["hovertemplate"] = (f"{who}<br>{x_title}: %{{x}}<br>{y_title}: %{{y}}"
                                  "<extra></extra>")


def diverging(values: Any) -> bool:
    """Signed data (negative and positive values) gets a diverging colour scale."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return bool(finite.size) and finite.min() < 0 < finite.max()


def _colour(trace: dict[str, Any], values: Any, options: dict[str, Any], title: str) -> None:
    """A colour scale on a heatmap or on markers: diverging around 0 for signed data
    (RdBu, blue below and red above), Viridis otherwise, or the spec's `colorscale:`."""
    target = trace if trace["type"] == "heatmap" else trace.setdefault("marker", {})
    if options.get("colorscale"):
        target["colorscale"] = options["colorscale"]
    elif diverging(values):
        target.update(colorscale="RdBu", reversescale=True, cmid=0)
        if trace["type"] == "heatmap":
            target.pop("cmid")
            target["zmid"] = 0
    else:
        target["colorscale"] = "Viridis"
    if trace["type"] != "heatmap":
        target.update(color=values, showscale=True, colorbar={"title": {"text": title}})


def _row_label(row: dict[str, Any], key: list[str]) -> str:
    return ", ".join(f"{k} {jsonable(row[k])}" for k in key) or "row"


def _xy_traces(rows: list[dict[str, Any]], options: dict[str, Any], heading: Heading,
               kind: str, max_points: int) -> tuple[list[dict[str, Any]], str]:
    """Traces of a line or scatter plot.

    Scalars against scalars: one trace per series. An array against one value per row (a
    spike raster: spike times against the unit): one trace per series. Arrays against
    arrays, or an array against its index: one trace per row."""
    x_name: str = options.get("x") or ""
    y_name: str = options["y"]
    series: str = options.get("series") or ""
    mode = "lines" if kind == "line" else "markers"
    x_blob = bool(x_name) and heading[x_name].is_blob
    y_blob = heading[y_name].is_blob
    per_row = y_blob and (not x_name or x_blob)
    key = [k for k in heading.primary_key
           if len({str(r.get(k)) for r in rows}) > 1] or heading.primary_key[-1:]
    budget = max_points
    truncated = ""
    traces: dict[Any, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        group = row[series] if series else None
        if budget <= 0:
            truncated = f"first {max_points} points"
            break
        if x_blob or y_blob:
            xs = _array(row[x_name]) if x_blob else None
            ys = _array(row[y_name]) if y_blob else None
            length = xs.size if xs is not None else ys.size if ys is not None else 0
            if length == 0:
                continue
            if xs is None:
                xs = np.full(length, np.nan if row[x_name] is None else float(row[x_name])) \
                    if x_name else np.arange(length)
            if ys is None:
                ys = np.full(length, np.nan if row[y_name] is None else float(row[y_name]))
            n = min(xs.size, ys.size)
            if n > budget:
                truncated = f"first {max_points} points"
                n = budget
            budget -= n
            if per_row:
                label: Any = index
                name = _row_label(row, key)
            else:
                label, name = group, y_name if group is None else str(jsonable(group))
            trace = traces.setdefault(label, {"mode": mode, "name": name, "x": [], "y": []})
            trace["x"] += _numbers(xs.ravel()[:n])
            trace["y"] += _numbers(ys.ravel()[:n])
        else:
            budget -= 1
            name = y_name if group is None else str(jsonable(group))
            trace = traces.setdefault(group, {"mode": mode, "name": name, "x": [], "y": [],
                                              "scalar": True, "customdata": []})
            trace["x"].append(row[x_name] if x_name else len(trace["x"]))
            trace["y"].append(row[y_name])
            trace["customdata"].append(_row_label(row, heading.primary_key))
            if options.get("color"):
                trace.setdefault("colour", []).append(row[options["color"]])
    data = list(traces.values())
    points = sum(len(t["x"]) for t in data)
    for trace in data:
        if trace.pop("scalar", False):
            trace["x"], trace["y"] = _axis_values(trace["x"]), _axis_values(trace["y"])
        # WebGL only where SVG would be slow: headless and remote browsers may lack it
        trace["type"] = "scattergl" if points > WEBGL_POINTS else "scatter"
        if kind == "scatter":
            trace["marker"] = {"size": 4 if x_blob or y_blob else 6}
        colour = trace.pop("colour", None)
        if colour is not None:
            _colour(trace, _axis_values(colour), options,
                    axis_title(heading, options["color"]))
    return data, truncated


def _histogram(rows: list[dict[str, Any]], options: dict[str, Any], max_points: int,
               ) -> tuple[list[dict[str, Any]], str]:
    """Counts in bins shared by every series (`series:` gives one overlaid histogram per
    value)."""
    name = options.get("x") or options["y"]
    series = options.get("series") or ""
    groups: dict[Any, list[np.ndarray]] = {}
    for row in rows:
        array = _array(row[name])
        if array is not None:
            groups.setdefault(row[series] if series else None, []).append(array.ravel())
    values_of = {}
    for group, chunks in groups.items():
        values = np.concatenate(chunks)
        values_of[group] = values[np.isfinite(values)]
    every = np.concatenate(list(values_of.values())) if values_of else np.empty(0)
    if every.size == 0:
        return [], ""
    edges = np.histogram_bin_edges(every, bins=options.get("bins") or 30)
    centers = (edges[:-1] + edges[1:]) / 2
    data = []
    for group, values in values_of.items():
        counts, _ = np.histogram(values, bins=edges)
        trace = {"type": "bar", "x": _numbers(centers), "y": counts.tolist(),
                 "width": _numbers(np.diff(edges)),
                 "name": name if group is None else str(jsonable(group)),
                 "hovertemplate": "%{fullData.name}<br>%{x}: %{y}<extra></extra>"}
        if len(values_of) > 1:
            trace["opacity"] = 0.6
        data.append(trace)
    return data, ""


def _image(rows: list[dict[str, Any]], options: dict[str, Any]
           ) -> tuple[list[dict[str, Any]], str]:
    name = options["z"]
    arrays = [a for a in (_array(r[name]) for r in rows) if a is not None and a.size]
    if not arrays:
        return [], ""
    if arrays[0].ndim >= 2:
        image = arrays[0].reshape(arrays[0].shape[0], -1)
        note = "first row" if len(arrays) > 1 else ""
    else:  # 1-D arrays, one per row, stacked into the rows of an image
        width = min(a.size for a in arrays)
        image = np.stack([a.ravel()[:width] for a in arrays])
        note = ""
    step_r = max(1, -(-image.shape[0] // MAX_IMAGE_SIDE))
    step_c = max(1, -(-image.shape[1] // MAX_IMAGE_SIDE))
    if step_r > 1 or step_c > 1:
        image = image[::step_r, ::step_c]
        note = "; ".join(filter(None, [note, f"every {step_r}×{step_c} sample"]))
    z = [_numbers(line) for line in image]
    trace: dict[str, Any] = {"type": "heatmap", "z": z}
    _colour(trace, image, options, "")
    return [trace], note
