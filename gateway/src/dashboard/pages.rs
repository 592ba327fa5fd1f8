//! The dashboard's HTML: one frame (skip link, sandbox banner, header, navigation, `<main>`)
//! around each page's static skeleton. The scripts fill the skeletons from the JSON API;
//! nothing here embeds tenant data, so the pages are the same for every business.

use crate::state::AppState;

/// What every page needs to render its frame.
pub struct Frame<'a> {
    pub app: &'a AppState,
    pub signed_in: bool,
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const BANNER: &str = "<div class=\"sandbox-banner\" role=\"note\"><strong>Sandbox mode</strong> \
    — WhatsApp and Telegram are emulated on this machine; nothing reaches Meta or Telegram.</div>";

fn nav(current: &str) -> String {
    let link = |path: &str, label: &str| {
        let here = if path == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"/dashboard/{path}\"{here}>{label}</a>")
    };
    format!(
        "<nav aria-label=\"Main\">{}{}</nav>\
         <button type=\"button\" id=\"logout\" class=\"link-button\">Log out</button>",
        link("integrations", "Integrations"),
        link("conversations", "Conversations")
    )
}

fn layout(frame: &Frame<'_>, page: &str, title: &str, scripts: &[&str], content: &str) -> String {
    let sandbox = frame.app.web.sandbox;
    let origin = frame.app.web.public_url.origin().ascii_serialization();
    let scripts: String = ["common.js"]
        .iter()
        .chain(scripts)
        .map(|s| format!("<script src=\"/dashboard/assets/{s}\" defer></script>"))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · Switchboard</title>\
<link rel=\"icon\" href=\"/dashboard/assets/favicon.svg\" type=\"image/svg+xml\">\
<link rel=\"stylesheet\" href=\"/dashboard/assets/app.css\">{scripts}</head>\
<body data-page=\"{page}\" data-sandbox=\"{sandbox}\" data-api-origin=\"{origin}\">\
<a class=\"skip\" href=\"#main\">Skip to content</a>{banner}\
<header class=\"top\"><span class=\"brand\">Switchboard</span>{nav}</header>\
<main id=\"main\" tabindex=\"-1\">{content}</main></body></html>",
        title = escape(title),
        origin = escape(&origin),
        banner = if sandbox { BANNER } else { "" },
        nav = if frame.signed_in {
            nav(page)
        } else {
            String::new()
        },
    )
}

/// `/dashboard/login`.
pub fn login(frame: &Frame<'_>) -> String {
    let hint = if frame.app.web.sandbox {
        "<p class=\"hint\">The sandbox printed an API key when it started (look for \
         <code>API key:</code> in the terminal).</p>"
    } else {
        "<p class=\"hint\">Create one with <code>switchboard tenant create --name …</code>.</p>"
    };
    let content = format!(
        "<section class=\"login card\" aria-labelledby=\"login-h\"><h1 id=\"login-h\">Log in</h1>\
<form id=\"login-form\" novalidate><label for=\"api-key\">API key</label>\
<input id=\"api-key\" name=\"api_key\" type=\"password\" autocomplete=\"current-password\" \
required spellcheck=\"false\" aria-describedby=\"login-error\">\
<button type=\"submit\" class=\"primary\">Log in</button>\
<p id=\"login-error\" class=\"error\" role=\"alert\"></p></form>{hint}</section>"
    );
    layout(frame, "login", "Log in", &["login.js"], &content)
}

/// `/dashboard/integrations`.
pub fn integrations(frame: &Frame<'_>) -> String {
    let content = "<h1>Integrations</h1>\
<p class=\"lead\">Connect the messaging channels your business answers on.</p>\
<div id=\"notice\" role=\"status\" aria-live=\"polite\"></div>\
<div id=\"cards\" class=\"cards\" aria-busy=\"true\"><p>Loading…</p></div>";
    layout(
        frame,
        "integrations",
        "Integrations",
        &["errors.js", "integrations.js"],
        content,
    )
}

/// `/dashboard/conversations`.
pub fn conversations(frame: &Frame<'_>) -> String {
    let simulate = frame
        .app
        .sandbox
        .as_deref()
        .map(simulate_form)
        .unwrap_or_default();
    let content = format!(
        "<h1>Conversations</h1>{simulate}<div class=\"conversations\">\
<section class=\"conversation-list\" aria-labelledby=\"inbox-h\"><h2 id=\"inbox-h\">Inbox</h2>\
<ul id=\"conversation-list\" aria-busy=\"true\"><li class=\"empty\">Loading…</li></ul></section>\
<section class=\"thread\" aria-labelledby=\"thread-h\"><h2 id=\"thread-h\">Select a conversation</h2>\
<p id=\"thread-meta\" class=\"meta\"></p><p id=\"reply-window\" class=\"window\" hidden></p>\
<ol id=\"messages\" class=\"messages\" aria-live=\"polite\" aria-relevant=\"additions\"></ol>\
<form id=\"reply-form\" class=\"reply\" hidden><label for=\"reply-text\">Reply</label>\
<textarea id=\"reply-text\" name=\"text\" rows=\"2\" required></textarea>\
<button type=\"submit\" class=\"primary\">Send</button>\
<p id=\"reply-error\" class=\"error\" role=\"alert\"></p></form></section></div>"
    );
    layout(
        frame,
        "conversations",
        "Conversations",
        &["errors.js", "conversations.js"],
        &content,
    )
}

/// The sandbox's "Simulate incoming message" form, offering the emulated channels.
fn simulate_form(info: &crate::state::SandboxInfo) -> String {
    let mut options = String::new();
    if info.emulators.whatsapp.is_some() {
        options.push_str("<option value=\"whatsapp\">WhatsApp</option>");
    }
    if info.emulators.telegram.is_some() {
        options.push_str("<option value=\"telegram\">Telegram</option>");
    }
    format!(
        "<details class=\"card simulate\" open><summary>Simulate incoming message</summary>\
<form id=\"simulate-form\"><div class=\"fields\">\
<label>Channel <select name=\"channel\" id=\"sim-channel\">{options}</select></label>\
<label>Contact name <input name=\"contact_name\" id=\"sim-name\" value=\"Alex Customer\"></label>\
<label>Contact number or id <input name=\"contact\" id=\"sim-contact\" inputmode=\"numeric\" \
value=\"15551234567\" pattern=\"[0-9]{{1,15}}\"></label>\
<label class=\"wide\">Message <input name=\"text\" id=\"sim-text\" required \
value=\"Hi! Do you have the fiddle-leaf fig in stock?\"></label></div>\
<button type=\"submit\">Simulate incoming message</button>\
<p id=\"simulate-result\" role=\"status\" aria-live=\"polite\"></p></form></details>"
    )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
