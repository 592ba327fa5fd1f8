//! The emulator's mutable world: issued codes and tokens, subscriptions, the customer service
//! windows, rate counters, every accepted message and every webhook delivery attempt.
//!
//! One `std::sync::Mutex` guards it; no lock is held across an `.await`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

use super::seed::{Faults, Seed};

/// Short-lived user tokens live two hours, long-lived ones about 60 days.
pub(crate) const SHORT_TOKEN_SECS: i64 = 7200;
pub(crate) const LONG_TOKEN_SECS: i64 = 5_183_944;
pub(crate) const CODE_SECS: i64 = 600;
pub(crate) const WINDOW_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub scopes: Vec<String>,
    pub wabas: Vec<String>,
    pub businesses: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CodeRecord {
    pub redirect_uri: String,
    pub grant: Grant,
    pub expires_at: i64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub grant: Grant,
    pub issued_at: i64,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
}

/// A message the emulator accepted on `/{phone-number-id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    pub id: String,
    pub phone_number_id: String,
    pub to: String,
    /// The request body exactly as parsed.
    pub body: serde_json::Value,
    pub timestamp: i64,
}

/// One webhook POST and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: u64,
    /// The exact bytes sent (UTF-8, non-ASCII escaped as Meta does).
    pub body: String,
    pub signature: String,
    /// HTTP status of each attempt; `0` when the target could not be reached.
    pub attempts: Vec<u16>,
    pub delivered: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    pub seed: Seed,
    pub faults: Faults,
    pub webhook_url: Option<String>,
    pub codes: HashMap<String, CodeRecord>,
    pub tokens: HashMap<String, TokenRecord>,
    pub subscribed: BTreeSet<String>,
    /// (phone number id, customer wa_id) → unix time of the last inbound message.
    pub windows: HashMap<(String, String), i64>,
    pub pair_sends: HashMap<(String, String), VecDeque<Instant>>,
    pub number_sends: HashMap<String, VecDeque<Instant>>,
    pub sent: Vec<SentMessage>,
    pub deliveries: Vec<DeliveryRecord>,
    /// Webhook values waiting for a batch flush: (WABA id, change).
    pub batch: Vec<(String, serde_json::Value)>,
    pub clock_offset: i64,
    pub counter: u64,
}

/// Shared by the server and the handle.
#[derive(Debug)]
pub(crate) struct Inner {
    pub app_id: String,
    pub app_secret: String,
    pub app_name: String,
    /// `http://127.0.0.1:{port}`, used in paging links.
    pub base_url: String,
    pub retry_schedule: Vec<Duration>,
    pub status_delay: Duration,
    pub http: reqwest::Client,
    pub state: Mutex<State>,
    pub delivered: Notify,
}

pub(crate) type Shared = Arc<Inner>;

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn app_token(&self) -> String {
        format!("{}|{}", self.app_id, self.app_secret)
    }
}

impl State {
    pub fn new(seed: Seed, webhook_url: Option<String>) -> Self {
        let subscribed = seed
            .wabas()
            .filter(|(_, w)| w.subscribed)
            .map(|(_, w)| w.id.clone())
            .collect();
        Self {
            seed,
            faults: Faults::default(),
            webhook_url,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            subscribed,
            windows: HashMap::new(),
            pair_sends: HashMap::new(),
            number_sends: HashMap::new(),
            sent: Vec::new(),
            deliveries: Vec::new(),
            batch: Vec::new(),
            clock_offset: 0,
            counter: 0,
        }
    }

    /// The emulator's clock: real time plus any advance requested by a test.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.clock_offset
    }

    /// A fresh id-like suffix.
    pub fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Every WABA and business of the seed, for an "approve everything" grant.
    pub fn full_grant(&self, scopes: Vec<String>) -> Grant {
        Grant {
            scopes,
            // Newest (last seeded) first, as `granular_scopes` lists them.
            wabas: self
                .seed
                .wabas()
                .map(|(_, w)| w.id.clone())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
            businesses: self.seed.businesses.iter().map(|b| b.id.clone()).collect(),
        }
    }
}
