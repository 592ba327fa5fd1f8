//! WhatsApp end to end: [`WhatsAppWorld`] is the real gateway ([`TestApp`]) with its WhatsApp
//! channel pointed at a running Graph API emulator, the emulator's webhooks pointed back at the
//! gateway, and helpers that act like a browser (the OAuth connect flow, following redirects and
//! keeping the nonce cookie) or like Meta (signed webhook POSTs).

pub use crate::eventually;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::BusinessId;
use switchboard_whatsapp::emulator::{
    DialogMode, Emulator, EmulatorConfig, EmulatorHandle, InboundReceipt, SentMessage,
    SimulatedContent, SimulatedInbound,
};

use crate::{Backend, TestApp};

/// The Meta app the gateway and the emulator share.
pub const APP_ID: &str = "670843887433847";
pub const APP_SECRET: &str = "e2e-app-secret-93c1";
pub const VERIFY_TOKEN: &str = "e2e-verify-token-41";
/// The sandbox seed's number: its id, WABA and digits.
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WABA_ID: &str = "102290129340398";
pub const DISPLAY_NUMBER: &str = "15550783881";

/// The gateway and the emulator, wired to each other.
#[derive(Debug)]
pub struct WhatsAppWorld {
    pub app: TestApp,
    pub emulator: EmulatorHandle,
}

/// What the callback page said, with its HTTP status.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: StatusCode,
    /// The `{"type": "switchboard:oauth", …}` message the page posts to its opener.
    pub message: Value,
    /// The whole page.
    pub html: String,
}

impl Outcome {
    /// The failure code, when the flow failed.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.message["error"].as_str()
    }
}

/// A client that keeps cookies and does not follow redirects, like a fresh browser profile.
///
/// # Panics
/// When the client cannot be built.
#[must_use]
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `sha256=<hex>` over `body` with the shared app secret, as Meta signs.
#[must_use]
pub fn sign(body: &[u8]) -> String {
    switchboard_whatsapp::emulator::signature(APP_SECRET, body)
}

/// The JSON message embedded in a callback outcome page (`var message = {…};`).
///
/// # Panics
/// When the page carries no message.
#[must_use]
pub fn page_message(html: &str) -> Value {
    let start = html
        .find("var message = ")
        .unwrap_or_else(|| panic!("no message in the outcome page: {html}"))
        + "var message = ".len();
    let end = start + html[start..].find(";\n").expect("message statement ends");
    serde_json::from_str(&html[start..end]).expect("the page message is JSON")
}

/// A Meta `messages` webhook body for a text from `from` to the sandbox number.
#[must_use]
pub fn text_webhook(from: &str, message_id: &str, timestamp: i64, text: &str) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Customer"}, "wa_id": from}],
            "messages": [{"from": from, "id": message_id, "timestamp": timestamp.to_string(), "type": "text", "text": {"body": text}}],
        }}]}],
    })
}

impl WhatsAppWorld {
    /// Starts an emulator (consent dialog in auto-approve mode, sandbox seed) and the gateway
    /// configured against it, with `extra` TOML on top (it follows the `[channels.whatsapp]`
    /// section, so start it with a table header); the emulator delivers webhooks to the gateway.
    /// `None` when the backend is unavailable.
    ///
    /// # Panics
    /// When either cannot start.
    pub async fn start(backend: Backend, extra: &str) -> Option<Self> {
        Self::start_with(backend, extra, |_| {}).await
    }

    /// [`Self::start`] with changes to the emulator's start-up configuration (status delay,
    /// retry schedule, …).
    ///
    /// # Panics
    /// When either cannot start.
    pub async fn start_with(
        backend: Backend,
        extra: &str,
        change: impl FnOnce(&mut EmulatorConfig),
    ) -> Option<Self> {
        let mut config = EmulatorConfig::new(APP_ID, APP_SECRET);
        config.faults.dialog = DialogMode::AutoApprove;
        change(&mut config);
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let base = emulator.base_url();
        let section = format!(
            "[channels.whatsapp]\nenabled = true\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\n\
             verify_token = \"{VERIFY_TOKEN}\"\ngraph_base_url = \"{base}\"\ndialog_base_url = \"{base}\"\n{extra}"
        );
        let app = TestApp::spawn(backend, &section).await?;
        emulator.set_webhook_url(Some(app.url("/api/webhooks/whatsapp")));
        Some(Self { app, emulator })
    }

    /// A new business with its API key.
    pub async fn tenant(&self, name: &str) -> (BusinessId, String) {
        self.app.tenant(name).await
    }

    /// The whole connect flow in a fresh browser (see [`Self::connect_in`]).
    pub async fn connect(&self, key: &str) -> Outcome {
        self.connect_in(&browser(), key).await
    }

    /// `GET …/connect` (Bearer) → `302` to the emulator's dialog → `302` back to the callback
    /// → the outcome page, all in `browser` so the nonce cookie goes back with the callback.
    ///
    /// # Panics
    /// When a step does not redirect where it should.
    pub async fn connect_in(&self, browser: &reqwest::Client, key: &str) -> Outcome {
        let callback = self.authorize_in(browser, key).await;
        self.open_callback(browser, &callback).await
    }

    /// The first two hops: returns the callback URL the dialog redirects to.
    ///
    /// # Panics
    /// When a step does not redirect where it should.
    pub async fn authorize_in(&self, browser: &reqwest::Client, key: &str) -> String {
        let start = browser
            .get(self.app.url("/api/integrations/whatsapp/connect"))
            .bearer_auth(key)
            .send()
            .await
            .expect("connect");
        assert_eq!(start.status(), StatusCode::FOUND, "connect redirects");
        let cookie = start
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            cookie.starts_with("sb_oauth_whatsapp=") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        let dialog = location(&start);
        assert!(
            dialog.starts_with(&format!("{}/", self.emulator.base_url())),
            "{dialog}"
        );
        let consent = browser.get(&dialog).send().await.expect("dialog");
        assert_eq!(
            consent.status(),
            StatusCode::FOUND,
            "the dialog answers at once"
        );
        let callback = location(&consent);
        assert!(
            callback.starts_with(&self.app.url("/api/integrations/whatsapp/callback?")),
            "{callback}"
        );
        callback
    }

    /// Opens a callback URL in `browser` and reads the outcome page.
    ///
    /// # Panics
    /// When the page is not the outcome page.
    pub async fn open_callback(&self, browser: &reqwest::Client, callback: &str) -> Outcome {
        let page = browser.get(callback).send().await.expect("callback");
        let status = page.status();
        let content_type = page
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let html = page.text().await.expect("page body");
        let message = page_message(&html);
        assert_eq!(message["type"], "switchboard:oauth");
        assert_eq!(message["channel"], "whatsapp");
        Outcome {
            status,
            message,
            html,
        }
    }

    /// Connects and asserts that it worked.
    ///
    /// # Panics
    /// When the outcome is not a success.
    pub async fn connect_ok(&self, key: &str) {
        let outcome = self.connect(key).await;
        assert_eq!(outcome.status, StatusCode::OK, "{:?}", outcome.message);
        assert_eq!(outcome.message["ok"], true, "{:?}", outcome.message);
    }

    /// An authenticated GET: the status and the JSON body (`Null` when not JSON).
    pub async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An authenticated POST with a JSON body.
    pub async fn post(&self, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /api/integrations/whatsapp/status`.
    ///
    /// # Panics
    /// When it does not answer `200`.
    pub async fn status(&self, key: &str) -> Value {
        let (status, body) = self.get(key, "/api/integrations/whatsapp/status").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `DELETE /api/integrations/whatsapp/disconnect`.
    ///
    /// # Panics
    /// When it does not answer `200`.
    pub async fn disconnect(&self, key: &str) -> Value {
        let response = self
            .app
            .client
            .delete(self.app.url("/api/integrations/whatsapp/disconnect"))
            .bearer_auth(key)
            .send()
            .await
            .expect("disconnect");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("status object")
    }

    /// POSTs `body` to the gateway's WhatsApp webhook with `signature` (none: no header).
    pub async fn post_webhook(&self, body: Vec<u8>, signature: Option<&str>) -> StatusCode {
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/webhooks/whatsapp"))
            .header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.body(body).send().await.expect("webhook").status()
    }

    /// A customer `from` writes `text` to the sandbox number; the emulator delivers the signed
    /// webhook to the gateway.
    ///
    /// # Panics
    /// When the emulator refuses the simulation.
    pub async fn customer_writes(&self, from: &str, text: &str) -> InboundReceipt {
        self.simulate(from, SimulatedContent::Text { body: text.into() })
            .await
    }

    /// A customer message of any content.
    ///
    /// # Panics
    /// When the emulator refuses the simulation.
    pub async fn simulate(&self, from: &str, content: SimulatedContent) -> InboundReceipt {
        self.emulator
            .simulate_inbound(SimulatedInbound {
                phone_number_id: None,
                from: Some(from.to_owned()),
                name: Some(format!("Customer {from}")),
                user_id: None,
                content,
            })
            .await
            .expect("simulated inbound")
    }

    /// What the emulator accepted for the customer `wa_id` (sent as `+{wa_id}`), oldest first.
    #[must_use]
    pub fn sent_to(&self, wa_id: &str) -> Vec<SentMessage> {
        let to = format!("+{wa_id}");
        self.emulator
            .sent_messages()
            .into_iter()
            .filter(|m| m.to == to)
            .collect()
    }

    /// The conversation with `chat` as the API shows it (`None` while there is none).
    pub async fn conversation(&self, key: &str, chat: &str) -> Option<Value> {
        let (_, list) = self.get(key, "/api/conversations").await;
        list["items"]
            .as_array()?
            .iter()
            .find(|c| c["external_chat_id"] == chat)
            .cloned()
    }

    /// The messages with `chat`, newest first (empty while there is no conversation).
    pub async fn thread(&self, key: &str, chat: &str) -> Vec<Value> {
        let Some(conversation) = self.conversation(key, chat).await else {
            return Vec::new();
        };
        let id = conversation["id"].as_str().expect("conversation id");
        let (_, messages) = self
            .get(key, &format!("/api/conversations/{id}/messages"))
            .await;
        messages["items"].as_array().cloned().unwrap_or_default()
    }

    /// The outbound messages with `chat`, newest first.
    pub async fn replies(&self, key: &str, chat: &str) -> Vec<Value> {
        self.thread(key, chat)
            .await
            .into_iter()
            .filter(|m| m["direction"] == "outbound")
            .collect()
    }
}

/// The `Location` of a redirect.
///
/// # Panics
/// When there is none.
#[must_use]
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}
