// The integrations page: one card per enabled channel from GET /api/integrations. What a card
// offers comes from the status object: connect_kind "oauth" opens the provider's consent page
// in a pop-up (or this tab when pop-ups are blocked), "token" shows a token form.
"use strict";
(() => {
  const { api, el, when } = SB;
  const cards = document.getElementById("cards");
  const notice = document.getElementById("notice");
  const apiOrigin = document.body.dataset.apiOrigin;
  const STATES = { connected: "Connected", not_connected: "Not connected", needs_reauth: "Needs reconnecting", error: "Problem" };
  let choosing = null;

  function say(kind, title, next, code) {
    notice.replaceChildren(el("div", { class: "notice " + kind, role: kind === "error" ? "alert" : null },
      el("p", { class: "title" }, title),
      next ? el("p", {}, next) : null,
      code ? el("p", { class: "code" }, "Error code: ", el("code", {}, code)) : null));
  }

  function sayError(code, fallback, channel) {
    const d = SB_describe(code, fallback);
    say("error", (channel ? channel + ": " : "") + d.title, d.next, d.code);
  }

  function detailRows(s) {
    const rows = [];
    const add = (label, value) => { if (value) rows.push(el("dt", {}, label), el("dd", {}, value)); };
    const a = s.account || {};
    add("Phone number", s.phone_number || a.phone_number);
    add("Verified name", s.verified_name || a.verified_name);
    add("Bot", (s.bot_username || a.bot_username) ? "@" + (s.bot_username || a.bot_username) : null);
    if (!s.phone_number && !s.bot_username) add("Account", a.display_name);
    if (s.connected || s.state !== "not_connected") {
      add("Access expires", s.token_expires_at ? when(s.token_expires_at) : "never");
      add("Last webhook", when(s.last_webhook_at));
    }
    return rows.length ? el("dl", { class: "details" }, rows) : null;
  }

  function problem(s) {
    const parts = [];
    if (s.state === "needs_reauth" || s.state === "error") {
      const d = SB_describe(s.state);
      parts.push(el("p", {}, d.title), el("p", {}, d.next));
    }
    if (s.state_reason) parts.push(el("p", { class: "reason" }, s.state_reason));
    if (s.last_error) parts.push(el("p", { class: "reason" }, "Last error: " + s.last_error));
    return parts.length ? el("div", { class: "problem" }, parts) : null;
  }

  function actions(s) {
    const box = el("div", { class: "actions" });
    const active = s.state !== "not_connected";
    if (s.connect_kind === "oauth") {
      box.append(el("button", { type: "button", class: active ? "connect" : "connect primary", onclick: () => connectOAuth(s) },
        (active ? "Reconnect " : "Connect ") + s.display_name));
      if (s.pending_choice) box.append(el("button", { type: "button", class: "choose primary", onclick: () => choose(s) }, "Choose phone number"));
    } else if (!s.connected) {
      box.append(tokenForm(s));
    }
    if (active) box.append(el("button", { type: "button", class: "disconnect danger", onclick: () => disconnect(s) }, "Disconnect"));
    return box;
  }

  function tokenForm(s) {
    const id = "token-" + s.channel;
    const error = el("p", { class: "error", id: id + "-error", role: "alert" });
    const input = el("input", { id, name: "bot_token", type: "password", autocomplete: "off", spellcheck: "false", required: true, placeholder: "123456789:AA…", "aria-describedby": id + "-error" });
    const form = el("form", { class: "token-form" },
      el("label", { for: id }, "Bot token from @BotFather"), input,
      el("button", { type: "submit", class: "primary" }, "Connect " + s.display_name), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      if (!input.value.trim()) { error.textContent = "Paste the bot token first."; input.focus(); return; }
      try {
        const status = await api("POST", `/api/integrations/${s.channel}/connect`, { bot_token: input.value.trim() });
        say("success", `${s.display_name} is connected` + (status.bot_username ? ` as @${status.bot_username}.` : "."));
        await load();
      } catch (e) {
        const d = SB_describe(e.code, e.message);
        error.replaceChildren(d.title + " " + d.next);
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    });
    return form;
  }

  function card(s) {
    const state = STATES[s.state] || s.state;
    return el("article", { class: "card integration state-" + s.state, id: "card-" + s.channel, "data-channel": s.channel, "aria-labelledby": "h-" + s.channel },
      el("header", {}, el("h2", { id: "h-" + s.channel }, s.display_name),
        el("span", { class: "badge state-" + s.state, "data-state": s.state }, state)),
      detailRows(s), problem(s), actions(s),
      el("div", { class: "chooser", id: "chooser-" + s.channel }));
  }

  // Cards whose status did not change stay as they are, so a half-typed token survives.
  function render(list) {
    const current = [...cards.querySelectorAll("article.integration")];
    const sameSet = current.length === list.length && list.every((s, i) => current[i].dataset.channel === s.channel);
    if (!sameSet) {
      cards.replaceChildren(...(list.length ? list.map(keyed) : [el("p", {}, "No channel is enabled in this gateway's configuration.")]));
    } else {
      list.forEach((s, i) => { if (current[i].dataset.key !== JSON.stringify(s)) current[i].replaceWith(keyed(s)); });
    }
    cards.setAttribute("aria-busy", "false");
  }

  function keyed(s) {
    const node = card(s);
    node.dataset.key = JSON.stringify(s);
    return node;
  }

  async function withPending(s) {
    if (s.state !== "not_connected" || !(s.capabilities && s.capabilities.account_choice)) return s;
    try { return await api("GET", `/api/integrations/${s.channel}/status`); } catch (_) { return s; }
  }

  async function load() {
    try {
      const list = await Promise.all((await api("GET", "/api/integrations")).map(withPending));
      render(list);
      if (choosing) { const s = list.find((x) => x.channel === choosing); choosing = null; if (s) choose(s); }
    } catch (e) {
      sayError(e.code, e.message);
    }
  }

  async function connectOAuth(s) {
    // Open the window inside the click, before any await, or the browser blocks it.
    const popup = window.open("", "switchboard-oauth", "popup,width=620,height=760");
    try {
      const { authorize_url } = await api("GET", `/api/integrations/${s.channel}/connect`);
      if (!popup || popup.closed) { location.assign(authorize_url); return; }
      popup.location.href = authorize_url;
      say("info", `Finish connecting ${s.display_name} in the window that opened.`);
      watch(popup);
    } catch (e) {
      if (popup) popup.close();
      sayError(e.code, e.message, s.display_name);
    }
  }

  function watch(popup) {
    const timer = setInterval(() => { if (popup.closed) { clearInterval(timer); load(); } }, 800);
  }

  // The outcome arrives in the page's query string, which anyone can write into a link: only
  // known error codes and channel-shaped names are shown, never the text itself.
  function outcome(channel, ok, error, next) {
    if (!/^[a-z][a-z0-9_]{0,31}$/.test(channel || "")) channel = null;
    if (!Object.prototype.hasOwnProperty.call(SB_ERRORS, error || "")) error = null;
    const name = channel ? channel.charAt(0).toUpperCase() + channel.slice(1) : "The channel";
    if (ok && next === "choose_account") {
      say("info", `${name}: choose which phone number to connect.`);
      choosing = channel;
    } else if (ok) {
      say("success", `${name} is connected.`);
    } else {
      sayError(error || "upstream_error", null, name);
    }
    return load();
  }

  window.addEventListener("message", (event) => {
    if (event.origin !== apiOrigin) return;
    const data = event.data;
    if (!data || data.type !== "switchboard:oauth") return;
    outcome(data.channel, data.ok === true, data.error, data.next);
  });

  async function choose(s) {
    const box = document.getElementById("chooser-" + s.channel);
    try {
      const { options } = await api("GET", `/api/integrations/${s.channel}/phone_numbers`);
      const legend = el("legend", {}, "Which number should " + s.display_name + " use?");
      const radios = options.map((o, i) => el("label", { class: "option" },
        el("input", { type: "radio", name: "choice-" + s.channel, value: o.id, checked: i === 0 }),
        el("span", {}, o.label), o.details ? el("small", {}, " " + o.details) : null));
      const form = el("form", { class: "choose-form" }, el("fieldset", {}, legend, radios),
        el("button", { type: "submit", class: "primary" }, "Use this number"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const picked = form.querySelector("input:checked");
        try {
          await api("POST", `/api/integrations/${s.channel}/phone_numbers`, { id: picked.value });
          say("success", `${s.display_name} is connected.`);
          await load();
        } catch (e) { sayError(e.code, e.message, s.display_name); }
      });
      box.replaceChildren(form);
      form.querySelector("input").focus();
    } catch (e) {
      sayError(e.code, e.message, s.display_name);
    }
  }

  async function disconnect(s) {
    if (!window.confirm(`Disconnect ${s.display_name}? Customers' messages will no longer reach you here until you connect again.`)) return;
    try {
      await api("DELETE", `/api/integrations/${s.channel}/disconnect`);
      say("success", `${s.display_name} is disconnected.`);
      await load();
    } catch (e) { sayError(e.code, e.message, s.display_name); }
  }

  const params = new URLSearchParams(location.search);
  if (params.has("success") || params.has("error")) {
    history.replaceState(null, "", location.pathname);
    outcome(params.get("channel"), params.get("success") === "true", params.get("error"), params.get("next"));
  } else {
    load();
  }
  const busy = () => document.querySelector(".chooser form") ||
    [...document.querySelectorAll(".token-form input")].some((i) => i.value);
  setInterval(() => { if (!document.hidden && !busy()) load(); }, 15000);
})();
