// datajoint_sa viz: renders the components of a page from their JSON endpoints.
// Every value is put into the page as text (never as HTML).
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("dj-config").textContent);
  const pageKey = config.key || {};
  const components = {};
  const selection = {};

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function cellText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(6)));
    return String(value);
  }

  function keyParams(extra) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(pageKey)) params.set("k." + k, v);
    for (const [k, v] of Object.entries(extra || {})) params.set("k." + k, v);
    return params;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { accept: "application/json" } });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new Error((body && body.error) || response.statusText);
    return body;
  }

  function showError(body, error) {
    body.replaceChildren(el("p", { class: "dj-error", role: "alert", text: error.message }));
  }

  function waitingFor(component) {
    const source = components[component.restricted_by];
    const name = source ? source.config.title || source.config.name : component.restricted_by;
    return el("p", { class: "dj-hint", text: "Pick a row in " + name + "." });
  }

  function dependents(name) {
    return Object.values(components).filter((c) => c.config.restricted_by === name);
  }

  function select(name, key) {
    selection[name] = key;
    for (const dependent of dependents(name)) dependent.load();
  }

  function restriction(component) {
    if (!component.restricted_by) return {};
    return selection[component.restricted_by] || null;
  }

  // ---- table ------------------------------------------------------------------------------
  function tableComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    const state = { page: 1, sort: null, desc: false, filters: {} };
    const table = el("table", { class: "dj-table" });
    const thead = el("thead");
    const tbody = el("tbody");
    const status = el("span", { class: "dj-status" });
    const prev = el("button", { type: "button", class: "dj-prev", text: "‹ Previous" });
    const next = el("button", { type: "button", class: "dj-next", text: "Next ›" });
    const pager = el("div", { class: "dj-pager" }, prev, status, next);
    const message = el("div", { class: "dj-message" });
    table.append(thead, tbody);
    body.replaceChildren(message, el("div", { class: "dj-scroll" }, table), pager);
    let selectedRow = null;
    let timer = null;
    let last = null;

    const headRow = el("tr");
    const filterRow = el("tr", { class: "dj-filters" });
    if (cfg.link && dependents(cfg.name).length) headRow.append(el("th"));
    if (cfg.link && dependents(cfg.name).length) filterRow.append(el("th"));
    for (const column of cfg.columns) {
      const button = el("button", { type: "button", class: "dj-sort", "data-column": column.name,
                                    title: column.comment || column.type, text: column.name });
      button.addEventListener("click", () => {
        if (state.sort === column.name) state.desc = !state.desc;
        else { state.sort = column.name; state.desc = false; }
        state.page = 1;
        load();
      });
      headRow.append(el("th", { class: column.in_key ? "dj-key-col" : null }, button));
      const cell = el("th");
      if (column.filter) {
        const input = el("input", { type: "search", class: "dj-filter", name: "f." + column.name,
                                    "data-column": column.name, placeholder: column.hint,
                                    "aria-label": "filter " + column.name });
        input.addEventListener("input", () => {
          state.filters[column.name] = input.value;
          state.page = 1;
          clearTimeout(timer);
          timer = setTimeout(load, 300);
        });
        input.addEventListener("keydown", (event) => {
          if (event.key === "Enter") { clearTimeout(timer); load(); }
        });
        cell.append(input);
      }
      filterRow.append(cell);
    }
    thead.append(headRow, filterRow);
    prev.addEventListener("click", () => { if (state.page > 1) { state.page -= 1; load(); } });
    next.addEventListener("click", () => {
      if (last && last.more) { state.page += 1; load(); }
    });

    function linkFor(key) {
      const params = new URLSearchParams(key);
      return "/p/" + encodeURIComponent(cfg.link) + "?" + params.toString();
    }

    function render(data) {
      last = data;
      const selecting = dependents(cfg.name).length > 0;
      const rows = data.rows.map((row, i) => {
        const key = data.keys[i];
        const tr = el("tr", { class: "dj-row", tabindex: "0",
                              "data-key": JSON.stringify(key) });
        if (cfg.link && selecting) {
          tr.append(el("td", {}, el("a", { href: linkFor(key), class: "dj-open",
                                           text: "open ›" })));
        }
        for (const column of data.columns) {
          tr.append(el("td", { text: cellText(row[column]) }));
        }
        const activate = () => {
          if (selecting) {
            if (selectedRow) selectedRow.classList.remove("dj-selected");
            tr.classList.add("dj-selected");
            selectedRow = tr;
            select(cfg.name, key);
          } else if (cfg.link) {
            window.location.href = linkFor(key);
          }
        };
        tr.addEventListener("click", (event) => {
          if (event.target.closest("a")) return;
          activate();
        });
        tr.addEventListener("keydown", (event) => { if (event.key === "Enter") activate(); });
        if (cfg.link || selecting) tr.classList.add("dj-clickable");
        return tr;
      });
      tbody.replaceChildren(...rows);
      if (!rows.length) {
        tbody.append(el("tr", {}, el("td", { colspan: String(data.columns.length + 1),
                                             class: "dj-hint", text: "No rows." })));
      }
      showStatus(data);
      for (const button of thead.querySelectorAll(".dj-sort")) {
        const on = button.dataset.column === state.sort;
        button.classList.toggle("dj-sorted", on);
        button.dataset.direction = on ? (state.desc ? "desc" : "asc") : "";
      }
      section.dataset.loaded = String(Date.now());
    }

    function showStatus(data) {
      const first = data.rows.length ? (data.page - 1) * data.size + 1 : 0;
      const lastRow = (data.page - 1) * data.size + data.rows.length;
      const total = data.total === null ? "…" : String(data.total);
      const pages = data.pages === null ? "…" : String(data.pages);
      status.textContent = `Rows ${first}–${lastRow} of ${total} · page ${data.page} of ${pages}`;
      prev.disabled = data.page <= 1;
      next.disabled = !data.more;
    }

    async function count(params, mine) {
      // the total is a query of its own, so a page of a large table is not kept waiting
      params.set("count", "1");
      try {
        const counted = await getJSON(cfg.api + "?" + params.toString());
        if (mine !== sequence || !last) return;
        last.total = counted.total;
        last.pages = Math.max(1, Math.ceil(counted.total / last.size));
        showStatus(last);
      } catch (error) {
        if (mine === sequence) message.replaceChildren(el("p", { class: "dj-error", role: "alert", text: error.message }));
      }
    }

    let sequence = 0;
    async function load() {
      const extra = restriction(cfg);
      if (extra === null) { message.replaceChildren(waitingFor(cfg)); tbody.replaceChildren(); return; }
      const params = keyParams(extra);
      params.set("page", state.page);
      params.set("size", cfg.page_size);
      if (state.sort) { params.set("sort", state.sort); params.set("desc", state.desc ? "1" : "0"); }
      for (const [k, v] of Object.entries(state.filters)) if (v) params.set("f." + k, v);
      const mine = ++sequence;
      section.classList.add("dj-loading");
      try {
        const data = await getJSON(cfg.api + "?" + params.toString());
        if (mine !== sequence) return;
        message.replaceChildren();
        render(data);
        if (data.total === null) count(params, mine);
      } catch (error) {
        if (mine !== sequence) return;
        message.replaceChildren(el("p", { class: "dj-error", role: "alert", text: error.message }));
      } finally {
        if (mine === sequence) section.classList.remove("dj-loading");
      }
    }
    return { config: cfg, load, reload: load };
  }

  // ---- detail -----------------------------------------------------------------------------
  function smallTable(data) {
    const table = el("table", { class: "dj-table dj-small" });
    table.append(el("thead", {}, el("tr", {}, ...data.columns.map((c) => el("th", { text: c })))));
    table.append(el("tbody", {}, ...data.rows.map((row) =>
      el("tr", {}, ...data.columns.map((c) => el("td", { text: cellText(row[c]) }))))));
    return table;
  }

  function detailComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    async function load() {
      const extra = restriction(cfg);
      if (extra === null) { body.replaceChildren(waitingFor(cfg)); return; }
      try {
        const data = await getJSON(cfg.api + "?" + keyParams(extra).toString());
        if (!data.entity) {
          body.replaceChildren(el("p", { class: "dj-hint", text: data.message }));
          return;
        }
        const list = el("dl", { class: "dj-attributes" });
        for (const item of data.entity) {
          list.append(el("dt", { class: item.in_key ? "dj-key-col" : null, text: item.name,
                                 title: item.comment || item.type }),
                      el("dd", { "data-attribute": item.name, text: cellText(item.value) }));
        }
        const parts = [list];
        for (const [title, group] of [["Parts", data.parts], ["Children", data.children]]) {
          if (!group.length) continue;
          parts.push(el("h3", { text: title }));
          for (const related of group) {
            const shown = related.rows.length;
            parts.push(el("h4", { class: "dj-related", "data-table": related.table,
                                  text: `${related.table} (${related.total} row${related.total === 1 ? "" : "s"}${shown < related.total ? `, first ${shown} shown` : ""})` }));
            if (shown) parts.push(el("div", { class: "dj-scroll" }, smallTable(related)));
          }
        }
        body.replaceChildren(...parts);
        section.dataset.loaded = String(Date.now());
      } catch (error) { showError(body, error); }
    }
    return { config: cfg, load };
  }

  // ---- plot -------------------------------------------------------------------------------
  function plotComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    const target = el("div", { class: "dj-plot-area" });
    async function load() {
      const extra = restriction(cfg);
      if (extra === null) { body.replaceChildren(waitingFor(cfg)); return; }
      try {
        const figure = await getJSON(cfg.api + "?" + keyParams(extra).toString());
        if (typeof Plotly === "undefined") throw new Error("plotly.js is not available: install datajoint-sa[viz]");
        body.replaceChildren(target);
        await Plotly.react(target, figure.data, figure.layout,
                           { responsive: true, displaylogo: false });
        section.dataset.rendered = "true";
        section.dataset.traces = String(figure.data.length);
      } catch (error) { showError(body, error); }
    }
    return { config: cfg, load };
  }

  // ---- diagram ----------------------------------------------------------------------------
  function diagramComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    function load() {
      const img = el("img", { src: cfg.api, alt: "diagram of the pipeline's tables",
                              class: "dj-diagram-image" });
      img.addEventListener("load", () => { section.dataset.rendered = "true"; });
      img.addEventListener("error", () => showError(body, new Error("the diagram could not be drawn")));
      body.replaceChildren(img);
    }
    return { config: cfg, load };
  }

  function textComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    return { config: cfg, load() { body.replaceChildren(...cfg.paragraphs.map((p) => el("p", { text: p }))); } };
  }

  const makers = { table: tableComponent, detail: detailComponent, plot: plotComponent,
                   diagram: diagramComponent, text: textComponent };
  Object.assign(makers, window.djVizMakers || {});  // forms.js: the form component
  const shared = { components, restriction };

  function start() {
    for (const cfg of config.components) {
      const section = document.getElementById("c-" + cfg.name);
      if (!section) continue;
      components[cfg.name] = { config: cfg, section };
    }
    for (const cfg of config.components) {
      const entry = components[cfg.name];
      if (!entry) continue;
      Object.assign(entry, makers[cfg.type](entry.section, cfg, shared));
    }
    for (const entry of Object.values(components)) {
      entry.section.classList.remove("dj-loading");
      if (entry.load) entry.load();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
