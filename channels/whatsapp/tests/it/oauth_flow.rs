//! The whole Facebook Login connect flow, driven through the adapter against the emulator:
//! success, cancel, the consent page, and every failure code.

use std::collections::HashMap;

use switchboard_core::BusinessId;
use switchboard_core::adapter::OAuthOutcome;
use switchboard_whatsapp::emulator::{DialogMode, Seed, SeedPhone};
use switchboard_whatsapp::{PendingChoice, WhatsAppCredentials};

use crate::harness::{callback_params, consent, env, env_with, no_redirects};
use crate::support::Directory;

fn two_numbers() -> Seed {
    Seed::with_numbers(vec![
        SeedPhone::new("106540352242922", "15550783881", "Lucky Shrub"),
        SeedPhone::new("106540352242923", "15550783882", "Lucky Shrub Support"),
    ])
}

#[tokio::test]
async fn a_business_with_one_number_is_connected_and_subscribed() {
    let env = env().await;
    let conn = env.connected().await;
    assert_eq!(conn.account_id, "106540352242922");
    assert_eq!(conn.parent_account_id.as_deref(), Some("102290129340398"));
    assert_eq!(conn.channel_name.as_deref(), Some("Lucky Shrub"));
    assert_eq!(conn.details["phone_number"], "+15550783881");
    assert_eq!(conn.details["phone_number_id"], "106540352242922");
    assert_eq!(conn.details["waba_id"], "102290129340398");
    assert_eq!(conn.details["verified_name"], "Lucky Shrub");
    assert_eq!(conn.details["quality_rating"], "GREEN");
    let expires = conn.token_expires_at.expect("long-lived tokens expire");
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((59..=60).contains(&days), "{days}");
    let creds: WhatsAppCredentials = conn.credentials.parse().unwrap();
    assert!(creds.access_token.starts_with("EAAG"));
    assert!(!format!("{creds:?}").contains(&creds.access_token));
    assert!(env.emulator.is_subscribed("102290129340398"));
}

#[tokio::test]
async fn cancelling_the_dialog_redirects_with_metas_five_parameters_and_fails_with_access_denied() {
    let env = env().await;
    env.emulator
        .update_faults(|f| f.dialog = DialogMode::AutoDeny);
    let (params, location) = consent(&env).await;
    assert_eq!(
        location.query(),
        Some(
            "error=access_denied&error_code=200&error_description=Permissions+error&error_reason=user_denied&state=state-123"
        )
    );
    assert_eq!(location.fragment(), Some("_=_"));
    let err = env
        .adapter
        .finish_oauth(&params, &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "access_denied");
    assert!(!env.emulator.is_subscribed("102290129340398"));
}

#[tokio::test]
async fn a_person_can_approve_on_the_consent_page_and_pick_one_account() {
    let env = env_with(two_numbers()).await;
    env.emulator
        .update_faults(|f| f.dialog = DialogMode::Interactive);
    let url = env.adapter.authorize_url("s1").unwrap();
    let page = reqwest::get(url.clone()).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("name=\"action\" value=\"approve\"")
            && html.contains("value=\"102290129340398\""),
        "{html}"
    );
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let confirm = url.join("oauth/confirm").unwrap();
    let form = [
        ("redirect_uri", q["redirect_uri"].as_str()),
        ("state", "s1"),
        ("scope", q["scope"].as_str()),
        ("waba", "102290129340398"),
        ("action", "approve"),
    ];
    let response = no_redirects()
        .get(confirm)
        .query(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("https://gw.example.com/api/integrations/whatsapp/callback?code=")
    );
    let outcome = env
        .adapter
        .finish_oauth(&callback_params(&location), &env.attempt())
        .await
        .unwrap();
    assert!(
        matches!(outcome, OAuthOutcome::ChooseAccount { ref options, .. } if options.len() == 2)
    );
}

#[tokio::test]
async fn the_cancel_button_on_the_consent_page_leads_to_access_denied() {
    let env = env().await;
    let url = env.adapter.authorize_url("s2").unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let form = [
        ("redirect_uri", q["redirect_uri"].as_str()),
        ("state", "s2"),
        ("action", "cancel"),
    ];
    let response = no_redirects()
        .get(url.join("oauth/confirm").unwrap())
        .query(&form)
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let err = env
        .adapter
        .finish_oauth(&callback_params(&location), &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "access_denied");
}

#[tokio::test]
async fn a_user_without_any_whatsapp_account_gets_no_waba() {
    let mut seed = Seed::sandbox();
    seed.businesses[0].owned_wabas.clear();
    let err = env_with(seed).await.connect().await.unwrap_err();
    assert_eq!(err.code, "no_waba");
}

#[tokio::test]
async fn a_whatsapp_account_without_numbers_gets_no_phone_number() {
    let err = env_with(Seed::with_numbers(Vec::new()))
        .await
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.code, "no_phone_number");
}

#[tokio::test]
async fn a_number_held_by_another_business_gets_number_in_use_and_is_not_subscribed() {
    let mut env = env().await;
    env.directory = Directory::with_owner("106540352242922", BusinessId::new());
    let err = env.connect().await.unwrap_err();
    assert_eq!(err.code, "number_in_use");
    assert!(err.message.contains("+15550783881"));
    assert!(!env.emulator.is_subscribed("102290129340398"));
}

#[tokio::test]
async fn reconnecting_a_number_the_same_business_holds_succeeds() {
    let mut env = env().await;
    env.directory = Directory::with_owner("106540352242922", env.business);
    assert_eq!(env.connected().await.account_id, "106540352242922");
}

#[tokio::test]
async fn a_graph_outage_gets_upstream_error_without_leaking_secrets() {
    let env = env().await;
    let (params, _) = consent(&env).await;
    env.emulator.update_faults(|f| f.server_error = true);
    let err = env
        .adapter
        .finish_oauth(&params, &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "upstream_error");
    assert!(err.message.contains("unexpected error"), "{}", err.message);
    assert!(!err.message.contains(crate::support::APP_SECRET) && !err.message.contains("EAAG"));
}

#[tokio::test]
async fn a_reused_authorization_code_gets_upstream_error() {
    let env = env().await;
    let (params, _) = consent(&env).await;
    env.adapter
        .finish_oauth(&params, &env.attempt())
        .await
        .unwrap();
    let err = env
        .adapter
        .finish_oauth(&params, &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "upstream_error");
    assert!(
        err.message
            .contains("This authorization code has been used."),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn several_numbers_lead_to_a_choice_and_the_chosen_number_is_connected() {
    let env = env_with(two_numbers()).await;
    let Ok(OAuthOutcome::ChooseAccount { pending, options }) = env.connect().await else {
        panic!("expected a choice")
    };
    let labels: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "+1 555-078-3881 (Lucky Shrub)",
            "+1 555-078-3882 (Lucky Shrub Support)"
        ]
    );
    assert_eq!(options[1].id, "106540352242923");
    assert_eq!(options[1].details["phone_number"], "+15550783882");
    let parsed: PendingChoice = pending.parse().unwrap();
    assert_eq!(parsed.candidates.len(), 2);
    assert!(!format!("{parsed:?}").contains(&parsed.access_token));
    assert!(
        !env.emulator.is_subscribed("102290129340398"),
        "nothing subscribed before the choice"
    );
    let conn = env
        .adapter
        .choose_account(&pending, "106540352242923", &env.attempt())
        .await
        .unwrap();
    assert_eq!(
        (conn.account_id.as_str(), conn.channel_name.as_deref()),
        ("106540352242923", Some("Lucky Shrub Support"))
    );
    assert!(env.emulator.is_subscribed("102290129340398"));
    let err = env
        .adapter
        .choose_account(&pending, "999", &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "unknown_account");
}

#[tokio::test]
async fn choosing_a_number_held_by_another_business_gets_number_in_use() {
    let mut env = env_with(two_numbers()).await;
    env.directory = Directory::with_owner("106540352242923", BusinessId::new());
    let Ok(OAuthOutcome::ChooseAccount { pending, .. }) = env.connect().await else {
        panic!()
    };
    let err = env
        .adapter
        .choose_account(&pending, "106540352242923", &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "number_in_use");
}
