// What each error code means for a business owner, and what to do next. Keyed by the codes
// the API and the OAuth callback report (README: Troubleshooting).
"use strict";
window.SB_ERRORS = {
  access_denied: ["You cancelled the connection, or did not grant the permissions Switchboard needs.",
    "Press Connect again and choose Continue on the Facebook page, keeping every permission ticked."],
  invalid_state: ["The connection attempt expired or was started in another browser.",
    "Start again from this page with the Connect button, and finish within 10 minutes."],
  no_waba: ["The Facebook account you used has no WhatsApp Business Account we could reach.",
    "Create one in Meta Business Suite, or reconnect and select the business that owns it."],
  no_phone_number: ["Your WhatsApp Business Account has no phone number registered yet.",
    "Add and verify a number in WhatsApp Manager, then connect again."],
  number_in_use: ["This WhatsApp number is already connected to another business on this Switchboard.",
    "Disconnect it there first, or pick a different number."],
  account_in_use: ["This account is already connected to another business on this Switchboard.",
    "Disconnect it there first, or use a different account."],
  upstream_error: ["Meta or Telegram did not answer as expected.",
    "Wait a minute and try again. If it keeps failing, check the provider's status page."],
  bot_in_use: ["This Telegram bot is already connected to another business on this Switchboard.",
    "Disconnect it there, or create a new bot with @BotFather."],
  invalid_bot_token: ["Telegram did not accept this bot token.",
    "Copy the whole token from @BotFather (it looks like 123456789:AA…) and paste it again. If you revoked it, ask @BotFather for a new one."],
  needs_reauth: ["Switchboard can no longer send messages with the saved access: it expired or was withdrawn.",
    "Press Reconnect and approve again. Messages wait in the queue and go out once you are reconnected."],
  error: ["The channel reported a problem.", "Read the details below; reconnecting usually fixes it."],
  popup_blocked: ["Your browser blocked the connection window.",
    "We continue in this tab instead; allow pop-ups for this site to stay on this page next time."],
  no_pending_choice: ["The number choice has expired.", "Press Connect again to pick a number."],
  csrf_header_missing: ["The request was refused for your security.", "Reload the page and try again."],
  unauthorized: ["Your session has ended.", "Log in again with your API key."],
  channel_disabled: ["This channel is switched off in the gateway's configuration.",
    "Ask your administrator to enable it."],
  not_connected: ["This channel is not connected yet.", "Connect it on the Integrations page first."],
  invalid_body: ["Some of the details you entered are not valid.", "Check the form and try again."],
  internal_error: ["Something went wrong on our side.", "Try again in a moment; if it persists, check the gateway's log."],
};

/** The owner-facing explanation of an error code: {title, next, code}. */
window.SB_describe = function describe(code, fallback) {
  const known = window.SB_ERRORS[code];
  if (known) return { title: known[0], next: known[1], code };
  return { title: fallback || "Something went wrong.", next: "Try again; if it keeps happening, check the gateway's log.", code };
};
