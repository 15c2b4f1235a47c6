// datajoint_sa viz: forms (insert, update, delete with the cascade shown first) and the
// session's log-out button. app.js calls the `form` maker registered here. Every value is
// put into the page as text (never as HTML).
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("dj-config").textContent);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  async function call(url, method, body) {
    const options = { method, headers: { accept: "application/json" } };
    if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.headers["x-dj-csrf"] = config.csrf;
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    const data = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, data };
  }

  function keyText(key) {
    return Object.entries(key).map(([k, v]) => `${k} = ${v}`).join(", ");
  }

  function formComponent(section, cfg, shared) {
    const body = section.querySelector(".dj-body");
    const actions = cfg.actions || ["insert"];
    let form = null;
    let result = null;

    function show(kind, text, field) {
      result.className = "dj-form-result" + (kind ? " dj-" + kind : "");
      result.setAttribute("role", kind === "error" ? "alert" : "status");
      result.textContent = text;
      for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
      if (field && form.elements[field]) {
        form.elements[field].setAttribute("aria-invalid", "true");
        form.elements[field].focus();
      }
    }

    function values() {
      const row = {};
      for (const field of cfg.fields) row[field.name] = form.elements[field.name].value;
      return row;
    }

    function key() {
      const found = {};
      for (const name of cfg.primary_key) found[name] = form.elements[name].value;
      return found;
    }

    function reloadTables() {
      for (const other of Object.values(shared.components)) {
        if (other.config.type === "table" && other.load) other.load();
      }
    }

    async function fill(givenKey) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(givenKey)) params.set("k." + k, v);
      const answer = await call(cfg.api + "/row?" + params.toString(), "GET");
      if (!answer.ok) { show("error", answer.data.error || "error", answer.data.field); return; }
      for (const [name, value] of Object.entries(answer.data.row)) {
        if (form.elements[name]) form.elements[name].value = value === null ? "" : value;
      }
      show("ok", "Loaded " + keyText(givenKey));
    }

    async function submit(action) {
      show("", action === "insert" ? "Inserting…" : "Updating…");
      const answer = await call(cfg.api + (action === "insert" ? "" : "/update"), "POST", values());
      if (!answer.ok) { show("error", answer.data.error || "error", answer.data.field); return; }
      if (action === "insert") {
        show("ok", "Inserted " + keyText(answer.data.inserted));
        form.reset();
      } else {
        show("ok", "Updated " + keyText(answer.data.updated));
      }
      reloadTables();
    }

    function confirmation(plan) {
      const panel = el("div", { class: "dj-confirm", role: "alertdialog",
                                "aria-label": "confirm delete" });
      if (!plan.total) {
        panel.append(el("p", { text: "Nothing to delete: no row has this key." }));
        panel.append(el("button", { type: "button", class: "dj-cancel", text: "Close" }));
        panel.querySelector(".dj-cancel").addEventListener("click", () => panel.remove());
        return panel;
      }
      panel.append(el("p", { class: "dj-warning",
        text: `Deleting ${keyText(plan.key)} removes ${plan.total} row${plan.total === 1 ? "" : "s"}:` }));
      const list = el("ul", { class: "dj-cascade" });
      for (const item of plan.plan) {
        const entry = el("li", { "data-table": item.table, "data-count": String(item.count) },
                         el("strong", { text: item.table }),
                         document.createTextNode(`: ${item.count} row${item.count === 1 ? "" : "s"}`));
        if (item.keys.length) {
          const keys = el("ul", { class: "dj-cascade-keys" });
          for (const k of item.keys) keys.append(el("li", { text: keyText(k) }));
          if (item.count > item.keys.length) keys.append(el("li", { text: "…" }));
          entry.append(keys);
        }
        list.append(entry);
      }
      const yes = el("button", { type: "button", class: "dj-confirm-delete",
                                 text: `Delete these ${plan.total} rows` });
      const no = el("button", { type: "button", class: "dj-cancel", text: "Cancel" });
      panel.append(list, yes, no);
      no.addEventListener("click", () => { panel.remove(); show("", "Nothing was deleted."); });
      yes.addEventListener("click", async () => {
        yes.disabled = true;
        const answer = await call(cfg.api + "/delete", "POST", { key: plan.key, confirm: plan.counts });
        panel.remove();
        if (answer.status === 409) {
          show("error", "The rows to delete changed since they were shown: review them again.");
          body.append(confirmation({ ...answer.data, key: plan.key }));
          return;
        }
        if (!answer.ok) { show("error", answer.data.error || "error", answer.data.field); return; }
        show("ok", `Deleted ${answer.data.total} row${answer.data.total === 1 ? "" : "s"}`);
        form.reset();
        reloadTables();
      });
      return panel;
    }

    async function askDelete() {
      for (const old of body.querySelectorAll(".dj-confirm")) old.remove();
      const given = key();
      show("", "Finding what the delete would remove…");
      const answer = await call(cfg.api + "/delete", "POST", { key: given });
      if (!answer.ok) { show("error", answer.data.error || "error", answer.data.field); return; }
      show("", "");
      body.append(confirmation({ ...answer.data, key: given }));
    }

    function draw() {
      form = el("form", { class: "dj-form", novalidate: true });
      for (const field of cfg.fields) {
        let input;
        if (field.input === "select") {
          input = el("select", { name: field.name });
          // an empty first option: nothing is chosen until the user chooses
          input.append(el("option", { value: "", text: "— choose —" }));
          for (const option of field.options) input.append(el("option", { value: option, text: option }));
          input.value = "";
        } else {
          input = el("input", { type: field.input, name: field.name, step: field.step,
                                maxlength: field.maxlength, placeholder: field.placeholder });
        }
        input.id = `f-${cfg.name}-${field.name}`;
        const label = el("label", { for: input.id, text: field.name + (field.required ? " *" : ""),
                                    title: field.comment || field.type });
        form.append(el("div", { class: "dj-field" + (field.in_key ? " dj-key-field" : "") },
                       label, input, el("span", { class: "dj-type", text: field.type })));
      }
      for (const parent of cfg.parents || []) {
        // one drop-down fills the attributes of a parent's key together; nothing chosen first
        const pick = el("select", { class: "dj-parent", "data-table": parent.table,
                                    "aria-label": "choose " + parent.table });
        pick.append(el("option", { value: "", text: "— choose —" }));
        parent.options.forEach((option, i) => pick.append(el("option", { value: String(i), text: keyText(option) })));
        pick.value = "";
        pick.addEventListener("change", () => {
          const chosen = parent.options[Number(pick.value)];
          for (const name of parent.attributes) {
            if (form.elements[name]) form.elements[name].value = chosen && pick.value !== "" ? chosen[name] : "";
          }
        });
        const label = el("label", { text: parent.table });
        form.prepend(el("div", { class: "dj-field dj-parent-field" }, label, pick,
                        el("span", { class: "dj-type", text: parent.attributes.join(", ") })));
      }
      const buttons = el("div", { class: "dj-form-buttons" });
      if (actions.includes("insert")) {
        buttons.append(el("button", { type: "submit", class: "dj-submit", text: "Insert" }));
      }
      if (actions.includes("update") || actions.includes("delete")) {
        const load = el("button", { type: "button", class: "dj-load", text: "Load by key" });
        load.addEventListener("click", () => fill(key()));
        buttons.append(load);
      }
      if (actions.includes("update")) {
        const update = el("button", { type: "button", class: "dj-update", text: "Update" });
        update.addEventListener("click", () => submit("update"));
        buttons.append(update);
      }
      if (actions.includes("delete")) {
        const remove = el("button", { type: "button", class: "dj-delete", text: "Delete…" });
        remove.addEventListener("click", askDelete);
        buttons.append(remove);
      }
      result = el("div", { class: "dj-form-result", "aria-live": "polite" });
      form.append(buttons, result);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (actions.includes("insert")) submit("insert");
      });
      body.replaceChildren(form);
    }

    function load() {
      if (!cfg.enabled) {
        body.replaceChildren(el("p", { class: "dj-hint",
          text: "Forms are disabled: this app is read-only (enable forms in the spec or with --forms)." }));
        return;
      }
      if (!form) draw();
      const selected = shared.restriction(cfg);
      if (cfg.restricted_by && selected) fill(selected);
    }
    return { config: cfg, load };
  }

  function logoutButton() {
    if (!config.user) return;
    const header = document.querySelector(".dj-header");
    if (!header) return;
    const form = el("form", { method: "post", action: "/logout", class: "dj-logout" },
                    el("span", { class: "dj-user", text: config.user }),
                    el("input", { type: "hidden", name: "csrf", value: config.csrf }),
                    el("button", { type: "submit", text: "Log out" }));
    header.append(form);
  }

  window.djVizMakers = Object.assign(window.djVizMakers || {}, { form: formComponent });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", logoutButton);
  else logoutButton();
})();
