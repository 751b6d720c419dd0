"use strict";
// Polls /admin/overview once a second (one request in flight at a time) and renders it. Every value
// goes in with textContent, never as HTML: tenant names are chosen by clients.
(function () {
  const TOKEN_KEY = "badkv.admin-token";
  const INTERVAL_MS = 1000;
  const byId = (id) => document.getElementById(id);
  let previous = null; // the last answer's counters, to turn them into rates

  function authHeaders() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: "Bearer " + token } : {};
  }

  function setStatus(text, isError) {
    const status = byId("status");
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function shown(value, unit) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "boolean") return value ? "yes" : "no";
    return unit ? value + " " + unit : String(value);
  }

  function fillTable(id, rows, cells, decorate) {
    const body = byId(id).tBodies[0];
    const fresh = document.createElement("tbody");
    for (const row of rows) {
      const tr = fresh.insertRow();
      for (const [value, className] of cells(row)) {
        const td = tr.insertCell();
        td.textContent = value;
        if (className) td.className = className;
      }
      if (decorate) decorate(tr, row);
    }
    body.replaceWith(fresh);
  }

  function rate(now, before, field) {
    if (!before || before.node !== now.node) return null; // another node's counters: start again
    const seconds = now.uptime_seconds - before.uptime_seconds;
    const delta = now[field] - before[field];
    if (seconds <= 0 || delta < 0) return null;
    return (delta / seconds).toFixed(1);
  }

  function render(data) {
    let source = "view of " + data.node + " (" + data.view + ")";
    if (data.served_by !== data.node) source += ", relayed by " + data.served_by;
    if (data.relay_error) source += ": " + data.relay_error;
    byId("source").textContent = source;
    byId("leader").textContent = shown(data.leader);
    byId("term").textContent = shown(data.term);
    byId("writes").textContent = shown(rate(data, previous, "writes_total"));
    let reads = shown(rate(data, previous, "reads_total"));
    if (data.here && previous && previous.here) {
      reads += " · here " + shown(rate(data.here, previous.here, "reads_total"));
    }
    byId("reads").textContent = reads;
    byId("elections").textContent = data.elections_started + " / " + data.elections_won;
    byId("leader-changes").textContent = shown(data.leader_changes);
    fillTable("members", data.members, (m) => [
      [m.name], [m.role, "role"], [shown(m.term)], [shown(m.applied_index)], [shown(m.lag)],
      [shown(m.in_sync)], [shown(m.last_contact_ms, "ms")], [m.address],
    ], (tr, m) => {
      tr.dataset.name = m.name;
      tr.dataset.role = m.role;
      tr.classList.toggle("leader", m.role === "leader");
      tr.classList.toggle("down", m.reachable === false);
      tr.classList.toggle("here", m.name === data.served_by);
    });
    fillTable("tenants-by-keys", data.tenants_by_keys, (t) => [[t.tenant], [t.keys], [t.bytes]]);
    fillTable("tenants-by-requests", data.tenants_by_requests, (t) => [[t.tenant], [t.requests], [t.refusals]]);
    previous = data;
  }

  async function refresh() {
    try {
      const response = await fetch("overview", { headers: authHeaders(), cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        setStatus("the admin token is needed (-auth on): enter it above", true);
        byId("token").focus();
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      document.body.dataset.updated = String(Date.now());
      setStatus("updated " + new Date().toLocaleTimeString(), false);
    } catch (error) {
      setStatus("no answer from the node: " + error.message, true);
    } finally {
      setTimeout(refresh, INTERVAL_MS);
    }
  }

  byId("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("token");
    if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    input.value = "";
  });
  byId("forget").addEventListener("click", () => sessionStorage.removeItem(TOKEN_KEY));
  refresh();
})();
