//! A webhook receiver on loopback standing in for the gateway: it records headers and exact
//! bytes of every POST and answers queued statuses (then `200`).

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use switchboard_core::domain::InboundEvent;

use crate::harness::Env;

/// One POST as received: headers and exact bytes.
type Received = (HeaderMap, Vec<u8>);

/// A webhook receiver answering the queued statuses (then 200), recording what it got.
#[derive(Clone, Default)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    pub async fn start(env: &Env, answers: Vec<u16>) -> Self {
        let receiver = Self {
            got: Arc::default(),
            answers: Arc::new(Mutex::new(answers)),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/api/webhooks/whatsapp",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.got.lock().unwrap().push((headers, body.to_vec()));
                    let mut answers = state.answers.lock().unwrap();
                    let code = if answers.is_empty() {
                        200
                    } else {
                        answers.remove(0)
                    };
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/api/webhooks/whatsapp",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        env.emulator.set_webhook_url(Some(url));
        receiver
    }

    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Authenticates and parses everything received, in order.
    pub fn events(&self, env: &Env) -> Vec<InboundEvent> {
        let got = self.got.lock().unwrap().clone();
        got.iter()
            .flat_map(|(headers, body)| {
                env.adapter
                    .authenticate_webhook(headers, body)
                    .expect("signed with the app secret");
                env.adapter.parse_webhook(body).unwrap()
            })
            .collect()
    }
}
