//! Seed data and switches of the emulator: who the consenting Facebook user is, their
//! businesses, WhatsApp Business Accounts (owned and client) and phone numbers, and the fault
//! switches tests and the sandbox dashboard flip.

use serde::{Deserialize, Serialize};

/// The Facebook user who goes through the consent dialog, and what they manage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seed {
    pub user_id: String,
    pub user_name: String,
    #[serde(default)]
    pub businesses: Vec<SeedBusiness>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedBusiness {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub owned_wabas: Vec<SeedWaba>,
    /// WABAs shared with this business by clients (Embedded Signup).
    #[serde(default)]
    pub client_wabas: Vec<SeedWaba>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedWaba {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub phone_numbers: Vec<SeedPhone>,
    /// Whether our app starts subscribed to this WABA's webhooks.
    #[serde(default)]
    pub subscribed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedPhone {
    pub id: String,
    /// Digits as Meta shows them in webhooks: `15550783881`.
    pub display_phone_number: String,
    pub verified_name: String,
    #[serde(default = "green")]
    pub quality_rating: String,
    #[serde(default = "connected")]
    pub status: String,
}

fn green() -> String {
    "GREEN".to_owned()
}

fn connected() -> String {
    "CONNECTED".to_owned()
}

impl SeedPhone {
    #[must_use]
    pub fn new(id: &str, digits: &str, verified_name: &str) -> Self {
        Self {
            id: id.to_owned(),
            display_phone_number: digits.to_owned(),
            verified_name: verified_name.to_owned(),
            quality_rating: green(),
            status: connected(),
        }
    }
}

impl Seed {
    /// One user, one business, one WABA with one number: what the sandbox starts with.
    #[must_use]
    pub fn sandbox() -> Self {
        Self::with_numbers(vec![SeedPhone::new(
            "106540352242922",
            "15550783881",
            "Lucky Shrub",
        )])
    }

    /// One user, one business, one WABA holding `numbers`.
    #[must_use]
    pub fn with_numbers(numbers: Vec<SeedPhone>) -> Self {
        Self {
            user_id: "10222270944537964".to_owned(),
            user_name: "Sandbox Owner".to_owned(),
            businesses: vec![SeedBusiness {
                id: "2329417887457253".to_owned(),
                name: "Lucky Shrub".to_owned(),
                owned_wabas: vec![SeedWaba {
                    id: "102290129340398".to_owned(),
                    name: "Lucky Shrub WhatsApp".to_owned(),
                    phone_numbers: numbers,
                    subscribed: false,
                }],
                client_wabas: Vec::new(),
            }],
        }
    }

    /// Every WABA, owned first, newest (last seeded) first within each business.
    pub(crate) fn wabas(&self) -> impl Iterator<Item = (&SeedBusiness, &SeedWaba)> {
        self.businesses.iter().flat_map(|b| {
            b.owned_wabas
                .iter()
                .chain(&b.client_wabas)
                .map(move |w| (b, w))
        })
    }

    pub(crate) fn waba(&self, id: &str) -> Option<&SeedWaba> {
        self.wabas().map(|(_, w)| w).find(|w| w.id == id)
    }

    /// A phone number and the WABA it belongs to.
    pub(crate) fn phone(&self, id: &str) -> Option<(&SeedWaba, &SeedPhone)> {
        self.wabas()
            .map(|(_, w)| w)
            .find_map(|w| w.phone_numbers.iter().find(|p| p.id == id).map(|p| (w, p)))
    }
}

/// How the consent dialog behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DialogMode {
    /// An HTML page a person clicks through.
    #[default]
    Interactive,
    /// Immediate `302` with a code granting every WABA.
    AutoApprove,
    /// Immediate `302` with Meta's cancel parameters.
    AutoDeny,
}

/// A failed delivery report to emit after sends instead of delivered/read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailStatus {
    pub code: i64,
    pub title: String,
    pub details: String,
}

/// Fault switches and limits. Absent fields keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub dialog: DialogMode,
    /// Every Graph call answers `500` with Graph error code 2.
    pub server_error: bool,
    /// Every send answers error 130429 (throughput).
    pub rate_limited: bool,
    /// Every other Graph call answers error 4 (application request limit), HTTP 429.
    pub app_rate_limited: bool,
    /// Long-lived exchanges issue never-expiring business tokens (`expires_at: 0`).
    pub never_expiring_tokens: bool,
    /// Each webhook POST is delivered twice.
    pub duplicate_delivery: bool,
    /// Status progressions are delivered newest first.
    pub out_of_order: bool,
    /// Webhooks wait in a batch until flushed, then go as one POST with several entries.
    pub batch: bool,
    /// Whether sends are followed by status webhooks.
    pub statuses: bool,
    /// After `sent`, report this failure instead of delivered/read.
    pub fail_status: Option<FailStatus>,
    /// Enforce the 24-hour customer service window (131047).
    pub enforce_window: bool,
    /// Sends per second per number before 130429.
    pub throughput_per_second: u32,
    /// Sends to one recipient within 6 seconds before 131056.
    pub pair_burst: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            dialog: DialogMode::Interactive,
            server_error: false,
            rate_limited: false,
            app_rate_limited: false,
            never_expiring_tokens: false,
            duplicate_delivery: false,
            out_of_order: false,
            batch: false,
            statuses: true,
            fail_status: None,
            enforce_window: true,
            throughput_per_second: 80,
            pair_burst: 45,
        }
    }
}
