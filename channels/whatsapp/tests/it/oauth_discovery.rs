//! Discovery during connect: numbers across cursor pages and client WABAs, never-expiring
//! business tokens, and an exhausted app call budget.

use switchboard_core::adapter::OAuthOutcome;
use switchboard_whatsapp::emulator::{Seed, SeedBusiness, SeedPhone, SeedWaba};

use crate::harness::{consent, env, env_with};

#[tokio::test]
async fn numbers_are_collected_across_cursor_pages_and_client_wabas() {
    let numbers: Vec<SeedPhone> = (0..130)
        .map(|i| {
            SeedPhone::new(
                &format!("2000{i:03}"),
                &format!("1555010{i:04}"),
                &format!("Shop {i}"),
            )
        })
        .collect();
    let mut seed = Seed::with_numbers(numbers);
    seed.businesses.push(SeedBusiness {
        id: "777".into(),
        name: "Agency".into(),
        owned_wabas: Vec::new(),
        client_wabas: vec![SeedWaba {
            id: "888".into(),
            name: "Client".into(),
            phone_numbers: vec![SeedPhone::new("999001", "442071234567", "Client Ltd")],
            subscribed: false,
        }],
    });
    let env = env_with(seed).await;
    let Ok(OAuthOutcome::ChooseAccount { options, .. }) = env.connect().await else {
        panic!()
    };
    assert_eq!(options.len(), 131);
    assert!(options.iter().any(|o| o.id == "2000129"));
    assert!(
        options
            .iter()
            .any(|o| o.id == "999001" && o.label == "+442071234567 (Client Ltd)")
    );
}

#[tokio::test]
async fn a_never_expiring_business_token_has_no_expiry() {
    let env = env().await;
    env.emulator
        .update_faults(|f| f.never_expiring_tokens = true);
    let conn = env.connected().await;
    assert_eq!(conn.token_expires_at, None);
    let status = env.adapter.status(&crate::harness::context(&conn)).await;
    assert_eq!(
        (status.state, status.token_expires_at),
        (switchboard_core::domain::IntegrationState::Connected, None)
    );
}

#[tokio::test]
async fn an_exhausted_app_call_budget_gets_upstream_error() {
    let env = env().await;
    let (params, _) = consent(&env).await;
    env.emulator.update_faults(|f| f.app_rate_limited = true);
    let err = env
        .adapter
        .finish_oauth(&params, &env.attempt())
        .await
        .unwrap_err();
    assert_eq!(err.code, "upstream_error");
    assert!(
        err.message.contains("Application request limit reached"),
        "{}",
        err.message
    );
}
