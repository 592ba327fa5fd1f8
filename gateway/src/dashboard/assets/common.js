// Shared helpers of every dashboard page: the JSON API client (session cookie, CSRF header),
// element building without innerHTML, time formatting, and the log-out button.
"use strict";
window.SB = (() => {
  const page = document.body.dataset.page;

  async function api(method, path, data) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-Switchboard-CSRF"] = "1";
    const init = { method, headers, credentials: "include" };
    if (data !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(data);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    if (response.status === 401 && page !== "login") {
      location.assign("/dashboard/login");
    }
    if (!response.ok) {
      const error = new Error((body && body.error && body.error.message) || response.statusText);
      error.code = (body && body.error && body.error.code) || (response.status === 401 ? "unauthorized" : "http_" + response.status);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  /** el("p", {class: "x"}, "text", child) — attributes set as properties or attributes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function when(iso) {
    if (!iso) return "never";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    const sameDay = date.toDateString() === new Date().toDateString();
    return sameDay ? "today " + clock.format(date) : dateTime.format(date);
  }

  function timeEl(iso, text) {
    return el("time", { datetime: iso || "" }, text || when(iso));
  }

  /** "3 h 12 min" until `iso`, or null once past. */
  function remaining(iso) {
    const ms = new Date(iso).getTime() - Date.now();
    if (!(ms > 0)) return null;
    const minutes = Math.floor(ms / 60000);
    const hours = Math.floor(minutes / 60);
    if (hours > 0) return `${hours} h ${minutes % 60} min`;
    if (minutes > 0) return `${minutes} min`;
    return `${Math.ceil(ms / 1000)} s`;
  }

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try { await api("DELETE", "/api/session"); } finally { location.assign("/dashboard/login"); }
    });
  }

  return { api, el, when, timeEl, remaining, page };
})();
