// The conversations page: the inbox and one thread, refreshed every two seconds; delivery
// ticks, WhatsApp's 24-hour reply window, the reply box, and in sandbox mode the
// "Simulate incoming message" form.
"use strict";
(() => {
  const { api, el, when, timeEl, remaining } = SB;
  const list = document.getElementById("conversation-list");
  const heading = document.getElementById("thread-h");
  const meta = document.getElementById("thread-meta");
  const windowNote = document.getElementById("reply-window");
  const messages = document.getElementById("messages");
  const replyForm = document.getElementById("reply-form");
  const replyText = document.getElementById("reply-text");
  const replyError = document.getElementById("reply-error");
  const CHANNELS = { whatsapp: "WhatsApp", telegram: "Telegram" };
  let selected = new URLSearchParams(location.hash.slice(1)).get("c");
  let conversation = null;
  let listKey = "";
  let threadKey = "";

  const channelName = (c) => CHANNELS[c] || c;
  const contact = (c) => c.contact_name || c.external_chat_id;

  function item(c) {
    return el("li", {}, el("button", { type: "button", class: "conversation", "data-id": c.id, "aria-current": c.id === selected ? "true" : null, onclick: () => select(c.id) },
      el("span", { class: "who" }, contact(c)),
      el("span", { class: "channel ch-" + c.channel_type }, channelName(c.channel_type)),
      el("span", { class: "last" }, c.last_message_at ? timeEl(c.last_message_at) : "no messages"),
      c.unreachable ? el("span", { class: "unreachable" }, "unreachable") : null));
  }

  async function loadList() {
    const { items } = await api("GET", "/api/conversations");
    const key = JSON.stringify([items, selected]);
    if (key === listKey) return;
    listKey = key;
    list.replaceChildren(...(items.length ? items.map(item) : [el("li", { class: "empty" }, "No conversations yet. Messages your customers send appear here.")]));
    list.setAttribute("aria-busy", "false");
    if (!selected && items.length) select(items[0].id);
  }

  const TICKS = {
    queued: ["🕓", "Queued"], uncertain: ["?", "Sent, not confirmed yet"], sent: ["✓", "Sent"],
    delivered: ["✓✓", "Delivered"], read: ["✓✓", "Read"], played: ["✓✓", "Played"], failed: ["!", "Failed"],
  };

  function status(m) {
    if (m.direction !== "outbound") return null;
    const [mark, label] = TICKS[m.status] || ["", m.status];
    const reason = m.status === "failed" ? (m.error_reason || m.error_code || "unknown reason") : null;
    return el("span", { class: "status st-" + m.status, "data-status": m.status },
      el("span", { "aria-hidden": "true", class: "ticks" }, mark), " ", label, reason ? ": " + reason : "");
  }

  function bubble(m) {
    const text = m.text || `[${m.type}]`;
    return el("li", { class: "message " + m.direction, "data-id": m.id },
      el("p", { class: "text" }, text),
      el("p", { class: "meta" }, el("span", { class: "sr-only" }, m.direction === "inbound" ? "Received " : "Sent "),
        timeEl(m.provider_timestamp || m.created_at), status(m)));
  }

  function renderWindow() {
    const c = conversation;
    if (!c || c.channel_type !== "whatsapp" || !c.window_expires_at) { windowNote.hidden = true; return; }
    const left = remaining(c.window_expires_at);
    windowNote.hidden = false;
    windowNote.className = "window " + (left ? "open" : "closed");
    windowNote.textContent = left
      ? `Reply window: ${left} left to answer freely (WhatsApp allows free-form replies for 24 hours after the customer's last message).`
      : "Reply window closed: WhatsApp only accepts template messages until the customer writes again.";
  }

  async function loadThread() {
    if (!selected) return;
    const data = await api("GET", `/api/conversations/${encodeURIComponent(selected)}/messages`);
    conversation = data.conversation;
    renderWindow();
    const key = JSON.stringify(data);
    if (key === threadKey) return;
    threadKey = key;
    heading.textContent = contact(conversation);
    meta.replaceChildren(channelName(conversation.channel_type), " · ", conversation.external_chat_id,
      conversation.unreachable ? " · the customer blocked or left this chat" : "");
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    messages.replaceChildren(...data.items.slice().reverse().map(bubble));
    if (atBottom) messages.scrollTop = messages.scrollHeight;
    replyForm.hidden = false;
  }

  function select(id) {
    selected = id;
    threadKey = "";
    listKey = "";
    history.replaceState(null, "", "#c=" + encodeURIComponent(id));
    refresh();
  }

  async function refresh() {
    try {
      await loadList();
      await loadThread();
    } catch (e) {
      if (e.status !== 401) meta.textContent = "Could not refresh: " + e.message;
    }
  }

  replyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    replyError.textContent = "";
    const text = replyText.value.trim();
    if (!text) { replyError.textContent = "Write a message first."; replyText.focus(); return; }
    try {
      await api("POST", `/api/conversations/${encodeURIComponent(selected)}/messages`, { text });
      replyText.value = "";
      await refresh();
    } catch (e) {
      const d = SB_describe(e.code, e.message);
      replyError.textContent = d.title + " " + d.next;
    }
  });

  const simulate = document.getElementById("simulate-form");
  if (simulate) {
    const result = document.getElementById("simulate-result");
    simulate.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(new FormData(simulate));
      result.textContent = "Sending…";
      try {
        await api("POST", "/dashboard/sandbox/inbound", data);
        result.textContent = `Simulated a ${channelName(data.channel)} message from ${data.contact_name || "a customer"}. It appears below in a moment.`;
        setTimeout(refresh, 300);
      } catch (e) {
        const d = SB_describe(e.code, e.message);
        result.textContent = d.title + " " + d.next + (d.code === "not_connected" ? "" : ` (${e.message})`);
      }
    });
  }

  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 2000);
  setInterval(renderWindow, 1000);
})();
