//! Discovery after a grant: every WhatsApp Business Account the token can see (from
//! `granular_scopes`, then each business's owned and client WABAs) and every phone number in
//! them, following cursor paging to the end.

use serde_json::Value;
use switchboard_core::error::ConnectError;

use crate::adapter::WhatsAppAdapter;
use crate::credentials::Candidate;
use crate::graph::GraphError;
use crate::oauth::{Grant, upstream};

impl WhatsAppAdapter {
    /// Every WABA the token can see: `granular_scopes` first, then businesses' owned and client WABAs.
    async fn discover_wabas(&self, grant: &Grant) -> Result<Vec<String>, ConnectError> {
        let mut wabas = grant.info.waba_ids.clone();
        match self.business_wabas(&grant.token).await {
            Ok(found) => {
                for id in found {
                    if !wabas.contains(&id) {
                        wabas.push(id);
                    }
                }
            }
            Err(err) if wabas.is_empty() => return Err(upstream("list your businesses", &err)),
            Err(err) => {
                tracing::debug!(error = %err.reason(), "business listing failed; using granular scopes");
            }
        }
        if wabas.is_empty() {
            return Err(ConnectError::rejected(
                "no_waba",
                "No WhatsApp Business Account was shared. Connect again and select your WhatsApp Business Account.",
            ));
        }
        Ok(wabas)
    }

    async fn business_wabas(&self, token: &str) -> Result<Vec<String>, GraphError> {
        let businesses = self
            .paged(token, "me/businesses", &[("fields", "id,name")])
            .await?;
        let mut wabas = Vec::new();
        for business in businesses
            .iter()
            .filter_map(|b| b.get("id").and_then(Value::as_str))
        {
            for edge in [
                "owned_whatsapp_business_accounts",
                "client_whatsapp_business_accounts",
            ] {
                let items = self
                    .paged(
                        token,
                        &format!("{business}/{edge}"),
                        &[("fields", "id,name")],
                    )
                    .await?;
                wabas.extend(
                    items
                        .iter()
                        .filter_map(|w| w.get("id").and_then(Value::as_str))
                        .map(str::to_owned),
                );
            }
        }
        Ok(wabas)
    }

    /// Every phone number of every visible WABA.
    pub(crate) async fn discover_numbers(
        &self,
        grant: &Grant,
    ) -> Result<Vec<Candidate>, ConnectError> {
        let mut candidates = Vec::new();
        for waba in self.discover_wabas(grant).await? {
            let fields = "id,display_phone_number,verified_name,quality_rating,status,code_verification_status";
            let numbers = self
                .paged(
                    &grant.token,
                    &format!("{waba}/phone_numbers"),
                    &[("fields", fields)],
                )
                .await
                .map_err(|e| upstream("list the phone numbers", &e))?;
            candidates.extend(numbers.iter().filter_map(|n| candidate(&waba, n)));
        }
        Ok(candidates)
    }

    /// Reads every page of a cursor-paged edge.
    pub(crate) async fn paged(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, GraphError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..100 {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", "100"));
            if let Some(cursor) = after.as_deref() {
                q.push(("after", cursor));
            }
            let page = self.graph.get(path, &q, Some(token)).await?;
            if let Some(data) = page.get("data").and_then(Value::as_array) {
                items.extend(data.iter().cloned());
            }
            let has_next = page.pointer("/paging/next").is_some();
            after = page
                .pointer("/paging/cursors/after")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if !has_next || after.is_none() {
                break;
            }
        }
        Ok(items)
    }
}

fn candidate(waba: &str, node: &Value) -> Option<Candidate> {
    let text = |k: &str| node.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(Candidate {
        phone_number_id: text("id")?,
        waba_id: waba.to_owned(),
        display_phone_number: text("display_phone_number").unwrap_or_default(),
        verified_name: text("verified_name"),
        quality_rating: text("quality_rating"),
        status: text("status"),
        code_verification_status: text("code_verification_status"),
    })
}
