// The console's one script (no build step): the live timeline, panel refreshes, confirms.
// Text from the server is set with textContent, never as HTML; panels come back as HTML the
// server rendered (escaped) from its own templates.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  row.appendChild(td);
  return td;
}

function statusClass(phase) {
  return "status-" + String(phase || "unknown").toLowerCase().replace(/[^a-z0-9]/g, "");
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function appendReport(tbody, report) {
  if (tbody.querySelector('tr[data-row="' + Number(report.id) + '"]')) return;  // seen
  const row = document.createElement("tr");
  row.dataset.row = String(report.id);
  row.className = report.applied ? "fresh" : "stale fresh";
  cell(row, when(report.occurred_at));
  cell(row, report.entity);
  const badge = document.createElement("span");
  badge.className = "badge " + statusClass(report.phase);
  badge.textContent = report.phase;
  cell(row, "").appendChild(badge);
  cell(row, report.reason);
  cell(row, report.source);
  tbody.appendChild(row);
}

function setLive(state, title) {
  const badge = document.querySelector("[data-live-state]");
  if (!badge) return;
  badge.classList.toggle("on", state === "on");
  badge.classList.toggle("off", state === "off");
  badge.title = title || "";
}

function refreshPanels(url) {
  const target = document.querySelector("[data-panels-target]");
  if (!url || !target) return;
  fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((r) => {
      // signed out meanwhile (the key was revoked or expired): show the sign-in form
      if (r.redirected || r.status === 401) { window.location.reload(); return null; }
      return r.ok ? r.text() : Promise.reject(new Error("panels: HTTP " + r.status));
    })
    .then((html) => { if (html !== null) target.innerHTML = html; })
    .catch((error) => setLive("off", String(error)));
}

function follow(table) {
  const url = new URL(table.dataset.live, window.location.href);
  url.searchParams.set("after", table.dataset.after || "0");
  const tbody = table.querySelector("tbody");
  const empty = document.querySelector("[data-empty]");
  let pending = null;
  const source = new EventSource(url.toString());
  source.onopen = () => setLive("on");
  // EventSource reconnects by itself after a dropped stream; a refused one (signed out) stays
  // closed, and the next panel refresh or a reload shows the sign-in form
  source.onerror = () => setLive("off", source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  source.addEventListener("status", (message) => {
    const report = JSON.parse(message.data);
    appendReport(tbody, report);
    if (empty) empty.remove();
    clearTimeout(pending);
    pending = setTimeout(() => refreshPanels(table.dataset.panels), 150);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table[data-live]").forEach(follow);
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
});
