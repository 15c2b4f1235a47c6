// datajoint_sa viz: renders the components of a page from their JSON endpoints.
// Every value is put into the page as text (never as HTML); the one exception is a markdown
// component's HTML, which the server renders with raw HTML escaped.
//
// The page's state lives in its address: filters (`q.<filter>`), each table's page, sort,
// column filters and selected row (`<table>.page`, `.sort`, `.desc`, `.f.<column>`,
// `.sel.<attribute>`), each slideshow's slide. Changing it pushes a history entry, so Back,
// Forward, reload and a shared link show the same view; typing replaces the entry instead.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("dj-config").textContent);
  const pageKey = config.key || {};
  const components = {};
  let params = new URLSearchParams(window.location.search);

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

  // ---- the address holds the state ----------------------------------------------------------
  const urlState = {
    get(name) { return params.get(name); },
    entries(prefix) {
      return [...params.entries()].filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k.slice(prefix.length), v]);
    },
    // changes: {name: value or null}; push: a new history entry (else the current is replaced)
    set(changes, push) {
      for (const [k, v] of Object.entries(changes)) {
        if (v === null || v === undefined) params.delete(k); else params.set(k, v);
      }
      const query = params.toString();
      const address = window.location.pathname + (query ? "?" + query : "");
      if (address === window.location.pathname + window.location.search) return;
      if (push) window.history.pushState(null, "", address);
      else window.history.replaceState(null, "", address);
    },
    clear(prefix, changes, push) {
      const all = { ...changes };
      for (const k of [...params.keys()]) if (k.startsWith(prefix) && !(k in all)) all[k] = null;
      this.set(all, push);
    },
  };

  // a table inside a grid's cell keeps its state in memory (the address names one table once)
  function memoryState() {
    const values = new Map();
    return {
      get(name) { return values.has(name) ? values.get(name) : null; },
      entries(prefix) {
        return [...values.entries()].filter(([k]) => k.startsWith(prefix))
          .map(([k, v]) => [k.slice(prefix.length), v]);
      },
      set(changes) {
        for (const [k, v] of Object.entries(changes)) {
          if (v === null || v === undefined) values.delete(k); else values.set(k, v);
        }
      },
      clear(prefix, changes) {
        for (const k of [...values.keys()]) if (k.startsWith(prefix)) values.delete(k);
        this.set(changes || {});
      },
    };
  }

  // ---- requests, with a page-wide loading indicator -------------------------------------------
  let pending = 0;
  const progress = document.getElementById("dj-progress");
  function busy(delta) {
    pending += delta;
    if (progress) progress.hidden = pending <= 0;
  }

  async function getJSON(url) {
    busy(1);
    try {
      const response = await fetch(url, { headers: { accept: "application/json" } });
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      if (!response.ok) throw new Error((body && body.error) || response.statusText);
      return body;
    } finally { busy(-1); }
  }

  function showError(body, error) {
    body.replaceChildren(el("p", { class: "dj-error", role: "alert", text: error.message }));
  }

  // the request of a component: the page key, the row it is restricted to, the filters
  function apiParams(cfg, extra) {
    const result = new URLSearchParams();
    for (const [k, v] of Object.entries(pageKey)) result.set("k." + k, v);
    for (const [k, v] of Object.entries(extra || {})) result.set("k." + k, v);
    for (const name of cfg.filters || []) {
      const value = urlState.get("q." + name);
      if (value !== null) result.set("q." + name, value);
    }
    return result;
  }

  function waitingFor(component) {
    const source = components[component.restricted_by];
    const name = source ? source.config.title || source.config.name : component.restricted_by;
    return el("p", { class: "dj-hint", text: "Pick a row in " + name + "." });
  }

  function dependents(name) {
    return Object.values(components).filter((c) => c.config.restricted_by === name);
  }

  function selectionOf(name) {
    const key = Object.fromEntries(urlState.entries(name + ".sel."));
    return Object.keys(key).length ? key : null;
  }

  // what restricts a component besides the page key: its grid cell's row, or the row picked in
  // the table it is restricted_by (null: nothing picked yet)
  function restriction(component, scope) {
    if (scope && scope.key) return scope.key;
    if (!component.restricted_by) return {};
    return selectionOf(component.restricted_by);
  }

  function loaded(section) {
    section.classList.remove("dj-loading");
    section.dataset.loaded = String(Date.now());
  }

  // ---- table ------------------------------------------------------------------------------
  function tableComponent(section, cfg, shared, scope) {
    const body = section.querySelector(".dj-body");
    const store = scope && scope.key ? memoryState() : urlState;
    const p = cfg.name + ".";
    const table = el("table", { class: "dj-table" });
    const thead = el("thead");
    const tbody = el("tbody");
    const status = el("span", { class: "dj-status" });
    const prev = el("button", { type: "button", class: "dj-prev", text: "‹ Previous" });
    const next = el("button", { type: "button", class: "dj-next", text: "Next ›" });
    const jump = el("input", { type: "number", class: "dj-jump", min: "1", step: "1",
                               "aria-label": "go to page", title: "go to page" });
    const pager = el("div", { class: "dj-pager" }, prev, status, next,
                     el("label", { class: "dj-jump-label" }, "Page ", jump));
    const message = el("div", { class: "dj-message" });
    table.append(thead, tbody);
    body.replaceChildren(message, el("div", { class: "dj-scroll" }, table), pager);
    let timer = null;
    let last = null;
    const inputs = {};
    const selecting = () => !(scope && scope.key) && dependents(cfg.name).length > 0;

    function pageNumber() { return Math.max(1, parseInt(store.get(p + "page") || "1", 10) || 1); }
    function go(changes, push) { store.set(changes, push); load(); }

    const headRow = el("tr");
    const filterRow = el("tr", { class: "dj-filters" });
    if (cfg.link && selecting()) headRow.append(el("th"));
    if (cfg.link && selecting()) filterRow.append(el("th"));
    for (const column of cfg.columns) {
      const button = el("button", { type: "button", class: "dj-sort", "data-column": column.name,
                                    title: column.comment || column.type, text: column.name });
      button.addEventListener("click", () => {
        const desc = store.get(p + "sort") === column.name && store.get(p + "desc") !== "1";
        go({ [p + "sort"]: column.name, [p + "desc"]: desc ? "1" : null, [p + "page"]: null }, true);
      });
      headRow.append(el("th", { class: column.in_key ? "dj-key-col" : null }, button));
      const cell = el("th");
      if (column.filter) {
        const input = el("input", { type: "search", class: "dj-filter", name: "f." + column.name,
                                    "data-column": column.name, placeholder: column.hint,
                                    "aria-label": "filter " + column.name });
        // the first keystroke of an edit adds a history entry, the next ones replace it
        let editing = false;
        input.addEventListener("input", () => {
          store.set({ [p + "f." + column.name]: input.value || null, [p + "page"]: null }, !editing);
          editing = true;
          clearTimeout(timer);
          timer = setTimeout(load, 300);
        });
        input.addEventListener("keydown", (event) => {
          if (event.key === "Enter") { editing = false; clearTimeout(timer); load(); }
        });
        input.addEventListener("blur", () => { editing = false; });
        inputs[column.name] = input;
        cell.append(input);
      }
      filterRow.append(cell);
    }
    thead.append(headRow, filterRow);
    prev.addEventListener("click", () => {
      if (pageNumber() > 1) go({ [p + "page"]: String(pageNumber() - 1) }, true);
    });
    next.addEventListener("click", () => {
      if (last && last.more) go({ [p + "page"]: String(pageNumber() + 1) }, true);
    });
    const jumpTo = () => {
      const wanted = parseInt(jump.value, 10);
      if (!wanted || wanted < 1) return;
      const limit = last && last.pages ? Math.min(wanted, last.pages) : wanted;
      go({ [p + "page"]: String(limit) }, true);
    };
    jump.addEventListener("change", jumpTo);
    jump.addEventListener("keydown", (event) => { if (event.key === "Enter") jumpTo(); });

    function linkFor(key) {
      const search = new URLSearchParams(key);
      return "/p/" + encodeURIComponent(cfg.link) + "?" + search.toString();
    }

    function sameKey(a, b) {
      return !!a && !!b && Object.keys(a).length === Object.keys(b).length &&
        Object.entries(a).every(([k, v]) => String(b[k]) === String(v));
    }

    function render(data) {
      last = data;
      const picked = selectionOf(cfg.name);
      const rows = data.rows.map((row, i) => {
        const key = data.keys[i];
        const tr = el("tr", { class: "dj-row", tabindex: "0",
                              "data-key": JSON.stringify(key) });
        if (selecting() && sameKey(picked, key)) tr.classList.add("dj-selected");
        if (cfg.link && selecting()) {
          tr.append(el("td", {}, el("a", { href: linkFor(key), class: "dj-open",
                                           text: "open ›" })));
        }
        for (const column of data.columns) {
          tr.append(el("td", { text: cellText(row[column]) }));
        }
        const activate = () => {
          if (selecting()) {
            for (const other of tbody.querySelectorAll(".dj-selected")) other.classList.remove("dj-selected");
            tr.classList.add("dj-selected");
            const changes = {};
            for (const k of urlState.entries(p + "sel.")) changes[p + "sel." + k[0]] = null;
            for (const [k, v] of Object.entries(key)) changes[p + "sel." + k] = v;
            urlState.set(changes, true);
            for (const dependent of dependents(cfg.name)) dependent.load();
          } else if (cfg.link) {
            window.location.href = linkFor(key);
          }
        };
        tr.addEventListener("click", (event) => {
          if (event.target.closest("a")) return;
          activate();
        });
        tr.addEventListener("keydown", (event) => { if (event.key === "Enter") activate(); });
        if (cfg.link || selecting()) tr.classList.add("dj-clickable");
        return tr;
      });
      tbody.replaceChildren(...rows);
      if (!rows.length) {
        tbody.append(el("tr", {}, el("td", { colspan: String(data.columns.length + 1),
                                             class: "dj-hint", text: "No rows." })));
      }
      showStatus(data);
      const sort = store.get(p + "sort");
      for (const button of thead.querySelectorAll(".dj-sort")) {
        const on = button.dataset.column === sort;
        button.classList.toggle("dj-sorted", on);
        button.dataset.direction = on ? (store.get(p + "desc") === "1" ? "desc" : "asc") : "";
      }
      loaded(section);
    }

    function showStatus(data) {
      const first = data.rows.length ? (data.page - 1) * data.size + 1 : 0;
      const lastRow = (data.page - 1) * data.size + data.rows.length;
      const total = data.total === null ? "…" : String(data.total);
      const pages = data.pages === null ? "…" : String(data.pages);
      status.textContent = `Rows ${first}–${lastRow} of ${total} · page ${data.page} of ${pages}`;
      prev.disabled = data.page <= 1;
      next.disabled = !data.more;
      jump.value = String(data.page);
      if (data.pages) jump.max = String(data.pages);
    }

    async function count(search, mine) {
      // the total is a query of its own, so a page of a large table is not kept waiting
      search.set("count", "1");
      try {
        const counted = await getJSON(cfg.api + "?" + search.toString());
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
      const extra = restriction(cfg, scope);
      if (extra === null) { message.replaceChildren(waitingFor(cfg)); tbody.replaceChildren(); loaded(section); return; }
      const search = apiParams(cfg, extra);
      search.set("page", String(pageNumber()));
      search.set("size", cfg.page_size);
      const sort = store.get(p + "sort");
      if (sort) { search.set("sort", sort); search.set("desc", store.get(p + "desc") === "1" ? "1" : "0"); }
      const filters = Object.fromEntries(store.entries(p + "f."));
      for (const [name, input] of Object.entries(inputs)) {
        if (document.activeElement !== input) input.value = filters[name] || "";
      }
      for (const [k, v] of Object.entries(filters)) if (v) search.set("f." + k, v);
      const mine = ++sequence;
      section.classList.add("dj-loading");
      try {
        const data = await getJSON(cfg.api + "?" + search.toString());
        if (mine !== sequence) return;
        message.replaceChildren();
        render(data);
        if (data.total === null) count(search, mine);
      } catch (error) {
        if (mine !== sequence) return;
        message.replaceChildren(el("p", { class: "dj-error", role: "alert", text: error.message }));
      } finally {
        if (mine === sequence) section.classList.remove("dj-loading");
      }
    }
    return { config: cfg, load, reload: load,
             reset() { store.clear(p + "page", {}, false); } };
  }

  // ---- detail -----------------------------------------------------------------------------
  function smallTable(data) {
    const table = el("table", { class: "dj-table dj-small" });
    table.append(el("thead", {}, el("tr", {}, ...data.columns.map((c) => el("th", { text: c })))));
    table.append(el("tbody", {}, ...data.rows.map((row) =>
      el("tr", {}, ...data.columns.map((c) => el("td", { text: cellText(row[c]) }))))));
    return table;
  }

  function detailComponent(section, cfg, shared, scope) {
    const body = section.querySelector(".dj-body");
    async function load() {
      const extra = restriction(cfg, scope);
      if (extra === null) { body.replaceChildren(waitingFor(cfg)); loaded(section); return; }
      try {
        const data = await getJSON(cfg.api + "?" + apiParams(cfg, extra).toString());
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
      } catch (error) { showError(body, error); } finally { loaded(section); }
    }
    return { config: cfg, load };
  }

  // ---- plot -------------------------------------------------------------------------------
  // plotly.js is loaded once, when the first plot needs it; the other components do not wait
  let plotlyLoading = null;
  function plotly() {
    if (typeof Plotly !== "undefined") return Promise.resolve();
    if (!config.plotly) return Promise.reject(new Error("plotly.js is not available: install datajoint-sa[viz]"));
    if (!plotlyLoading) {
      plotlyLoading = new Promise((resolve, reject) => {
        const script = el("script", { src: config.plotly });
        script.addEventListener("load", resolve);
        script.addEventListener("error", () => reject(new Error("plotly.js could not be loaded")));
        document.head.append(script);
      });
    }
    return plotlyLoading;
  }

  function plotComponent(section, cfg, shared, scope) {
    const body = section.querySelector(".dj-body");
    const target = el("div", { class: "dj-plot-area" });
    async function load() {
      const extra = restriction(cfg, scope);
      if (extra === null) { body.replaceChildren(waitingFor(cfg)); loaded(section); return; }
      section.classList.add("dj-loading");
      try {
        const [figure] = await Promise.all([
          getJSON(cfg.api + "?" + apiParams(cfg, extra).toString()), plotly()]);
        body.replaceChildren(target);
        await Plotly.react(target, figure.data, figure.layout,
                           { responsive: true, displaylogo: false });
        section.dataset.rendered = "true";
        section.dataset.traces = String(figure.data.length);
      } catch (error) { showError(body, error); } finally { loaded(section); }
    }
    return { config: cfg, load };
  }

  // ---- diagram ----------------------------------------------------------------------------
  function diagramComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    function load() {
      const img = el("img", { src: cfg.api, alt: "diagram of the pipeline's tables",
                              class: "dj-diagram-image" });
      img.addEventListener("load", () => { section.dataset.rendered = "true"; loaded(section); });
      img.addEventListener("error", () => showError(body, new Error("the diagram could not be drawn")));
      body.replaceChildren(img);
    }
    return { config: cfg, load };
  }

  function textComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    return { config: cfg, load() { body.replaceChildren(...cfg.paragraphs.map((p) => el("p", { text: p }))); loaded(section); } };
  }

  // ---- markdown, iframe -------------------------------------------------------------------------
  function markdownComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    // rendered by the server (markdown-it-py) with raw HTML escaped and unsafe links dropped
    return { config: cfg, load() { body.innerHTML = cfg.html; body.classList.add("dj-markdown"); loaded(section); } };
  }

  function iframeComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    return { config: cfg, load() {
      const frame = el("iframe", { src: cfg.url, height: String(cfg.height), loading: "lazy",
                                   class: "dj-iframe", title: cfg.title || cfg.url,
                                   referrerpolicy: "no-referrer",
                                   sandbox: "allow-scripts allow-same-origin allow-popups allow-forms" });
      body.replaceChildren(frame);
      loaded(section);
    } };
  }

  // ---- metadata card ----------------------------------------------------------------------------
  function metadataComponent(section, cfg, shared, scope) {
    const body = section.querySelector(".dj-body");
    async function load() {
      const extra = restriction(cfg, scope);
      if (extra === null) { body.replaceChildren(waitingFor(cfg)); loaded(section); return; }
      try {
        const data = await getJSON(cfg.api + "?" + apiParams(cfg, extra).toString());
        if (!data.items) { body.replaceChildren(el("p", { class: "dj-hint", text: data.message })); return; }
        const list = el("dl", { class: "dj-attributes dj-card" });
        for (const item of data.items) {
          list.append(el("dt", { class: item.in_key ? "dj-key-col" : null, text: item.name,
                                 title: item.comment || "" }),
                      el("dd", { "data-attribute": item.name },
                         cellText(item.value), item.unit ? el("span", { class: "dj-unit", text: " " + item.unit }) : null));
        }
        body.replaceChildren(list);
        if (data.more) body.append(el("p", { class: "dj-hint", text: "(the first of several matching rows)" }));
      } catch (error) { showError(body, error); } finally { loaded(section); }
    }
    return { config: cfg, load };
  }

  // ---- image and slideshow ------------------------------------------------------------------------
  function slidesComponent(section, cfg, shared, scope) {
    const body = section.querySelector(".dj-body");
    const store = scope && scope.key ? memoryState() : urlState;
    const slideName = cfg.name + ".slide";
    const img = el("img", { class: "dj-image", alt: cfg.title || cfg.name });
    if (cfg.height) img.style.maxHeight = cfg.height + "px";
    const caption = el("div", { class: "dj-caption" });
    const prev = el("button", { type: "button", class: "dj-prev", text: "‹" , "aria-label": "previous image" });
    const next = el("button", { type: "button", class: "dj-next", text: "›", "aria-label": "next image" });
    const counter = el("span", { class: "dj-counter" });
    let slides = [];
    let search = null;
    function index() {
      const value = parseInt(store.get(slideName) || "1", 10) || 1;
      return Math.min(Math.max(1, value), Math.max(1, slides.length));
    }
    function show() {
      if (!slides.length) { body.replaceChildren(el("p", { class: "dj-hint", text: "No images." })); return; }
      const i = index();
      const address = new URLSearchParams(search);
      address.set("index", String(i));
      img.src = cfg.api + "/image?" + address.toString();
      caption.textContent = Object.entries(slides[i - 1]).map(([k, v]) => `${k} ${v}`).join(", ");
      counter.textContent = `${i} / ${slides.length}`;
      prev.disabled = i <= 1;
      next.disabled = i >= slides.length;
      section.dataset.slide = String(i);
      const parts = [img, caption];
      if (cfg.type === "slideshow") parts.push(el("div", { class: "dj-pager" }, prev, counter, next));
      body.replaceChildren(...parts);
    }
    img.addEventListener("load", () => { section.dataset.rendered = "true"; });
    img.addEventListener("error", () => showError(body, new Error("the image could not be shown")));
    prev.addEventListener("click", () => { store.set({ [slideName]: String(index() - 1) }, true); show(); });
    next.addEventListener("click", () => { store.set({ [slideName]: String(index() + 1) }, true); show(); });
    async function load() {
      const extra = restriction(cfg, scope);
      if (extra === null) { body.replaceChildren(waitingFor(cfg)); loaded(section); return; }
      try {
        search = apiParams(cfg, extra);
        const data = await getJSON(cfg.api + "?" + search.toString());
        slides = data.slides;
        show();
      } catch (error) { showError(body, error); } finally { loaded(section); }
    }
    return { config: cfg, load };
  }

  // ---- filters ------------------------------------------------------------------------------------
  function filterComponent(section, cfg) {
    const body = section.querySelector(".dj-body");
    const name = "q." + cfg.name;
    let timer = null;
    function current() {
      const value = urlState.get(name);
      return value === null ? (cfg.default === null ? "" : cfg.default) : value;
    }
    function affected() {
      return Object.values(components).filter((c) => c.config !== cfg && (
        (c.config.filters || []).includes(cfg.name) ||
        (c.config.depends_on || []).includes(cfg.name)));
    }
    function commit(value, push) {
      // an emptied filter that has a default stays in the address as empty
      const changes = { [name]: value === "" && cfg.default === null ? null : value };
      for (const c of affected()) if (c.config.type === "table") changes[c.config.name + ".page"] = null;
      urlState.set(changes, push);
      section.dataset.value = value;
      for (const c of affected()) c.load();
    }
    function labelled(control) {
      return el("label", { class: "dj-filter-control" },
                el("span", { class: "dj-filter-label", text: (cfg.title || cfg.attribute) + (cfg.unit ? ` [${cfg.unit}]` : "") }),
                control);
    }
    function render(data) {
      const value = current();
      section.dataset.value = value;
      if (cfg.control === "dropdown") {
        const select = el("select", { name: cfg.name, "aria-label": cfg.title || cfg.attribute },
                          el("option", { value: "", text: "(all)" }));
        for (const option of data.options) select.append(el("option", { value: option, text: option }));
        select.value = data.options.includes(value) ? value : "";
        select.addEventListener("change", () => commit(select.value, true));
        body.replaceChildren(labelled(select));
        return value === "" || data.options.includes(value);
      }
      if (cfg.control === "radio") {
        const group = el("div", { class: "dj-radio", role: "radiogroup", "aria-label": cfg.title || cfg.attribute });
        for (const option of ["", ...data.options]) {
          const input = el("input", { type: "radio", name: "r-" + cfg.name, value: option });
          input.checked = option === value;
          input.addEventListener("change", () => { if (input.checked) commit(option, true); });
          group.append(el("label", {}, input, " " + (option === "" ? "all" : option)));
        }
        body.replaceChildren(el("div", { class: "dj-filter-control" },
                                el("span", { class: "dj-filter-label", text: cfg.title || cfg.attribute }), group));
        return value === "" || data.options.includes(value);
      }
      if (cfg.control === "slider") {
        const input = el("input", { type: "range", name: cfg.name, min: data.min, max: data.max,
                                    step: data.step, "aria-label": cfg.title || cfg.attribute });
        const shown = el("output", { class: "dj-slider-value" });
        const clear = el("button", { type: "button", class: "dj-clear", text: "×", title: "clear", "aria-label": "clear " + cfg.name });
        const describe = (v) => { shown.textContent = v === "" ? "(any)" : `${data.op} ${v}`; };
        input.value = value === "" ? String(data.min) : value;
        describe(value);
        input.addEventListener("input", () => describe(input.value));
        input.addEventListener("change", () => commit(input.value, true));
        clear.addEventListener("click", () => { describe(""); commit("", true); });
        body.replaceChildren(labelled(el("span", { class: "dj-slider" }, input, shown, clear)));
        return true;
      }
      if (cfg.control === "daterange") {
        const [low, high] = value.includes("..") ? value.split("..") : ["", ""];
        const day = (v) => (v === null || v === undefined ? null : String(v).slice(0, 10));
        const from = el("input", { type: "date", name: cfg.name + "-from", min: day(data.min), max: day(data.max), "aria-label": "from" });
        const to = el("input", { type: "date", name: cfg.name + "-to", min: day(data.min), max: day(data.max), "aria-label": "to" });
        from.value = low; to.value = high;
        const change = () => commit(from.value || to.value ? `${from.value}..${to.value}` : "", true);
        from.addEventListener("change", change);
        to.addEventListener("change", change);
        body.replaceChildren(labelled(el("span", { class: "dj-daterange" }, from, " – ", to)));
        return true;
      }
      const input = el("input", { type: "search", name: cfg.name, placeholder: cfg.hint,
                                  "aria-label": cfg.title || cfg.attribute });
      input.value = value;
      let pushed = false;  // the first commit of an edit adds a history entry
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => { commit(input.value, !pushed); pushed = true; }, 300);
      });
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { clearTimeout(timer); commit(input.value, !pushed); pushed = false; }
      });
      input.addEventListener("blur", () => { pushed = false; });
      body.replaceChildren(labelled(input));
      return true;
    }
    async function load() {
      try {
        const data = await getJSON(cfg.api + "?" + apiParams(cfg, {}).toString());
        if (!render(data)) commit("", false);  // a choice the filters it depends on took away
      } catch (error) { showError(body, error); } finally { loaded(section); }
    }
    return { config: cfg, load };
  }

  // ---- dynamic grid: a cell per row of a query --------------------------------------------------
  function gridComponent(section, cfg, shared) {
    const body = section.querySelector(".dj-body");
    async function load() {
      try {
        const data = await getJSON(cfg.api + "?" + apiParams(cfg, {}).toString());
        const grid = el("div", { class: "dj-cells", style: `grid-template-columns: repeat(${cfg.per_row}, minmax(0, 1fr))` });
        const loads = [];
        for (const key of data.cells) {
          const cell = el("div", { class: "dj-cell", "data-key": JSON.stringify(key) },
                          el("div", { class: "dj-cell-key", text: Object.entries(key).map(([k, v]) => `${k} ${v}`).join(", ") }));
          for (const template of cfg.cells) {
            const sub = el("section", { class: `dj-component dj-sub dj-${template.type}`, "data-name": template.name, "data-type": template.type },
                           template.title ? el("h3", { text: template.title }) : null, el("div", { class: "dj-body" }));
            cell.append(sub);
            const made = makers[template.type](sub, template, shared, { key });
            loads.push(made.load());
          }
          grid.append(cell);
        }
        body.replaceChildren(grid);
        if (!data.cells.length) body.append(el("p", { class: "dj-hint", text: "No rows." }));
        if (data.more) body.append(el("p", { class: "dj-hint", text: `(the first ${data.cells.length} rows)` }));
        await Promise.allSettled(loads);
      } catch (error) { showError(body, error); } finally { loaded(section); }
    }
    return { config: cfg, load };
  }

  const makers = { table: tableComponent, detail: detailComponent, plot: plotComponent,
                   diagram: diagramComponent, text: textComponent,
                   markdown: markdownComponent, iframe: iframeComponent,
                   metadata: metadataComponent, image: slidesComponent,
                   slideshow: slidesComponent, filter: filterComponent, grid: gridComponent };
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
    const loads = Object.values(components).map((entry) => Promise.resolve(
      entry.load ? entry.load() : null).finally(() => entry.section.classList.remove("dj-loading")));
    Promise.allSettled(loads).then(() => {
      window.djReadyAt = performance.now();  // the first page is interactive (measured by tests)
      document.body.dataset.ready = "true";
    });
  }

  // Back and Forward: the address changed, so every component shows it again
  window.addEventListener("popstate", () => {
    params = new URLSearchParams(window.location.search);
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    for (const entry of Object.values(components)) if (entry.load) entry.load();
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
