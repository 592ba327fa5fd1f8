//! The dashboard in a real browser (headless Chromium through chromedriver), against the real
//! binary in sandbox mode: a newcomer logs in, cancels and then completes the WhatsApp consent
//! in the pop-up (business, account, number), connects Telegram with a made-up token,
//! simulates a customer message, sees the automated reply and its delivery ticks, replies by
//! hand and disconnects. With `UPDATE_SCREENSHOTS=1` the screenshots in `docs/screenshots/` are refreshed.

mod browser_harness;

use std::time::Instant;

use browser_harness::{Gateway, browser, click, fill, log_in, screenshot, text, tools, until};
use fantoccini::{Client, Locator};

/// The second seeded number of the sandbox's WhatsApp account.
const SUPPORT_NUMBER_ID: &str = "106540352242923";
const FAKE_BOT_TOKEN: &str = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1";

/// Clicks the card's OAuth button and switches to the pop-up it opens.
async fn open_consent_popup(client: &Client) -> fantoccini::wd::WindowHandle {
    let main = client.window().await.expect("the main window");
    click(client, "#card-whatsapp button.connect").await;
    let started = Instant::now();
    let popup = loop {
        let windows = client.windows().await.expect("window handles");
        if let Some(popup) = windows.into_iter().find(|w| *w != main) {
            break popup;
        }
        assert!(
            started.elapsed() < browser_harness::PATIENCE,
            "no pop-up opened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    client
        .switch_to_window(popup)
        .await
        .expect("switch to the pop-up");
    until(
        client,
        "the emulated consent page",
        "document.querySelector('select[name=waba]')",
    )
    .await;
    main
}

/// Presses a consent button in the pop-up (which then closes) and returns to the dashboard.
async fn answer_consent(client: &Client, main: fantoccini::wd::WindowHandle, action: &str) {
    let button = client
        .find(Locator::Css(&format!("button[value={action}]")))
        .await
        .expect("the consent button");
    // The pop-up may close while the click is still being answered.
    let _ = button.click().await;
    client
        .switch_to_window(main)
        .await
        .expect("back to the dashboard");
}

async fn connect_whatsapp(client: &Client) {
    let main = open_consent_popup(client).await;
    let waba = client
        .find(Locator::Css("select[name=waba]"))
        .await
        .expect("the account list");
    waba.select_by_value("102290129340398")
        .await
        .expect("the seeded account");
    answer_consent(client, main, "approve").await;
    until(
        client,
        "the phone number choice",
        "document.querySelector('#chooser-whatsapp form')",
    )
    .await;
    click(
        client,
        &format!("#chooser-whatsapp input[value='{SUPPORT_NUMBER_ID}']"),
    )
    .await;
    click(client, "#chooser-whatsapp button[type=submit]").await;
    until(
        client,
        "WhatsApp connected",
        "document.querySelector('#card-whatsapp .badge').dataset.state === 'connected'",
    )
    .await;
    let card = text(client, "#card-whatsapp").await;
    assert!(card.contains("Lucky Shrub Support"), "{card}");
    assert!(card.contains("15550783882"), "{card}");
}

async fn connect_telegram(client: &Client) {
    fill(client, "#token-telegram", FAKE_BOT_TOKEN).await;
    click(client, "#card-telegram form button[type=submit]").await;
    until(
        client,
        "Telegram connected",
        "document.querySelector('#card-telegram .badge').dataset.state === 'connected'",
    )
    .await;
    let card = text(client, "#card-telegram").await;
    assert!(card.contains("@sandbox_7000000001_bot"), "{card}");
}

async fn chat(client: &Client, gateway: &Gateway) {
    client
        .goto(&gateway.url("/dashboard/conversations"))
        .await
        .expect("conversations");
    fill(client, "#sim-name", "Dana Browser").await;
    fill(client, "#sim-text", "Is the fiddle-leaf fig in stock?").await;
    click(client, "#simulate-form button[type=submit]").await;
    until(
        client,
        "the inbound message in the thread",
        "[...document.querySelectorAll('.message.inbound')].some(m => m.textContent.includes('fiddle-leaf'))",
    )
    .await;
    until(
        client,
        "the automated reply, delivered",
        "[...document.querySelectorAll('.message.outbound .status')].some(s => ['delivered','read'].includes(s.dataset.status))",
    )
    .await;
    assert!(
        text(client, "#reply-window")
            .await
            .contains("left to answer")
    );
    fill(client, "#reply-text", "Yes, we have three left.").await;
    click(client, "#reply-form button[type=submit]").await;
    until(
        client,
        "the hand-written reply, sent",
        "[...document.querySelectorAll('.message.outbound')].some(m => m.textContent.includes('three left') && ['sent','delivered','read'].includes(m.querySelector('.status').dataset.status))",
    )
    .await;
    assert!(
        text(client, "#conversation-list")
            .await
            .contains("Dana Browser")
    );
    // A Telegram customer too: the conversation shows up with its channel.
    let channel = client
        .find(Locator::Css("#sim-channel"))
        .await
        .expect("the channel list");
    channel
        .select_by_value("telegram")
        .await
        .expect("Telegram is emulated");
    fill(client, "#sim-name", "Tom Telegram").await;
    fill(client, "#sim-contact", "424242").await;
    fill(client, "#sim-text", "Are you open on Sunday?").await;
    click(client, "#simulate-form button[type=submit]").await;
    until(
        client,
        "the Telegram conversation in the inbox",
        "[...document.querySelectorAll('#conversation-list .conversation')].some(c => c.textContent.includes('Tom Telegram') && c.textContent.includes('Telegram'))",
    )
    .await;
    client.execute("document.querySelector('.simulate').open = false; window.scrollTo(0, 0); document.activeElement.blur();", vec![]).await.expect("tidy the page");
    screenshot(client, "conversations").await;
}

async fn disconnect(client: &Client, channel: &str) {
    click(client, &format!("#card-{channel} button.disconnect")).await;
    let question = client.get_alert_text().await.expect("a confirmation");
    assert!(question.starts_with("Disconnect"), "{question}");
    client.accept_alert().await.expect("confirm");
    until(
        client,
        "the channel disconnected",
        &format!(
            "document.querySelector('#card-{channel} .badge').dataset.state === 'not_connected'"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_newcomer_connects_both_channels_chats_and_disconnects_in_the_sandbox() {
    let Some(tools) = tools() else { return };
    let started = Instant::now();
    let gateway = Gateway::start(&[]);
    let browser = browser(&tools).await;
    let client = &browser.client;
    log_in(client, &gateway).await;
    assert!(
        text(client, ".sandbox-banner")
            .await
            .contains("Sandbox mode")
    );

    // Cancelling the consent explains what happened and what to do.
    let main = open_consent_popup(client).await;
    answer_consent(client, main, "cancel").await;
    until(
        client,
        "the cancellation notice",
        "document.querySelector('#notice .notice.error')",
    )
    .await;
    let notice = text(client, "#notice").await;
    assert!(notice.contains("You cancelled the connection"), "{notice}");
    assert!(notice.contains("access_denied"), "{notice}");

    connect_whatsapp(client).await;
    connect_telegram(client).await;
    screenshot(client, "integrations").await;
    chat(client, &gateway).await;

    client
        .goto(&gateway.url("/dashboard/integrations"))
        .await
        .expect("integrations");
    until(
        client,
        "the cards",
        "document.querySelector('#card-telegram .badge')",
    )
    .await;
    disconnect(client, "telegram").await;
    disconnect(client, "whatsapp").await;
    eprintln!("browser scenario took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_channel_disabled_in_config_has_no_card_and_pages_need_a_session() {
    let Some(tools) = tools() else { return };
    let gateway = Gateway::start(&[("SWITCHBOARD_CHANNELS__TELEGRAM__ENABLED", "false")]);
    let browser = browser(&tools).await;
    let client = &browser.client;
    client
        .goto(&gateway.url("/dashboard/conversations"))
        .await
        .expect("the page loads");
    until(
        client,
        "the log-in page",
        "location.pathname === '/dashboard/login'",
    )
    .await;
    fill(client, "#api-key", "sbk_not-a-key").await;
    click(client, "#login-form button[type=submit]").await;
    until(
        client,
        "the refusal",
        "document.querySelector('#login-error').textContent.includes('not valid')",
    )
    .await;
    log_in(client, &gateway).await;
    until(
        client,
        "the WhatsApp card",
        "document.querySelector('#card-whatsapp')",
    )
    .await;
    // Without pop-ups the callback comes back as a redirect with the outcome in the query.
    let redirected = gateway.url("/dashboard/integrations?error=no_phone_number&channel=whatsapp");
    client.goto(&redirected).await.expect("the page loads");
    until(
        client,
        "the outcome notice",
        "document.querySelector('#notice .notice.error')",
    )
    .await;
    let notice = text(client, "#notice").await;
    assert!(
        notice.contains("has no phone number registered"),
        "{notice}"
    );
    // A link with made-up text shows the generic explanation, not the text.
    let forged = gateway.url(
        "/dashboard/integrations?error=Your%20account%20is%20suspended%3A%20call%20us&channel=Support%20desk",
    );
    client.goto(&forged).await.expect("the page loads");
    until(
        client,
        "the generic notice",
        "document.querySelector('#notice').textContent.includes('did not answer as expected')",
    )
    .await;
    let notice = text(client, "#notice").await;
    assert!(!notice.contains("suspended"), "{notice}");
    assert!(!notice.contains("Support desk"), "{notice}");
    until(
        client,
        "the cards again",
        "document.querySelector('#card-whatsapp')",
    )
    .await;
    let cards = client
        .find_all(Locator::Css("#cards article"))
        .await
        .expect("cards");
    assert_eq!(cards.len(), 1, "only WhatsApp is enabled");
    assert!(client.find(Locator::Css("#card-telegram")).await.is_err());
    click(client, "#logout").await;
    until(
        client,
        "the log-in page after logging out",
        "location.pathname === '/dashboard/login'",
    )
    .await;
    client
        .goto(&gateway.url("/dashboard/integrations"))
        .await
        .expect("the page loads");
    until(
        client,
        "the log-in page again",
        "location.pathname === '/dashboard/login'",
    )
    .await;
}
