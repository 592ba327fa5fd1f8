//! Graph nodes and edges: `/me/businesses`, owned and client WABAs, `/{waba}/phone_numbers`
//! (cursor paging), `/{waba}/subscribed_apps` (GET/POST/DELETE), `/{phone-number-id}` fields,
//! `/{phone-number-id}/register`. Every route checks the bearer token and the assets it was
//! granted, answering Meta's errors (190, 100/33, 10) otherwise.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::errors::{GraphFault, check_token, presented_token, require_scope};
use super::state::{Shared, State, TokenRecord};

type Params = Query<HashMap<String, String>>;

/// `GET|POST /{version}/{node}`.
pub(crate) async fn node(
    AxState(inner): AxState<Shared>,
    method: Method,
    headers: HeaderMap,
    Path((_v, node)): Path<(String, String)>,
    Query(q): Params,
) -> Response {
    let st = inner.lock();
    let record = match check_token(
        &st,
        presented_token(&headers, q.get("access_token").map(String::as_str)).as_deref(),
    ) {
        Ok(r) => r,
        Err(fault) => return fault.into_response(),
    };
    if node == "me" {
        return Json(select(
            &json!({"id": st.seed.user_id, "name": st.seed.user_name}),
            q.get("fields"),
        ))
        .into_response();
    }
    if let Some((waba, phone)) = st
        .seed
        .phone(&node)
        .filter(|(w, _)| record.grant.wabas.contains(&w.id))
    {
        if method == Method::POST {
            return Json(json!({"success": true})).into_response();
        }
        let full = json!({
            "id": phone.id, "display_phone_number": phone.display_phone_number, "verified_name": phone.verified_name,
            "quality_rating": phone.quality_rating, "status": phone.status, "code_verification_status": "VERIFIED",
            "name_status": "APPROVED", "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"},
            "messaging_limit_tier": "TIER_1K", "account_mode": "LIVE", "whatsapp_business_account_id": waba.id,
        });
        return Json(select(&full, q.get("fields"))).into_response();
    }
    if let Some(waba) = st
        .seed
        .waba(&node)
        .filter(|w| record.grant.wabas.contains(&w.id))
    {
        let full = json!({"id": waba.id, "name": waba.name, "currency": "USD", "timezone_id": "1", "account_review_status": "APPROVED", "message_template_namespace": "emulator_namespace"});
        return Json(select(&full, q.get("fields"))).into_response();
    }
    GraphFault::no_object(method.as_str().to_lowercase().as_str(), &node).into_response()
}

/// `GET|POST|DELETE /{version}/{node}/{edge}` (except `messages`, see `messages.rs`).
pub(crate) async fn edge(
    AxState(inner): AxState<Shared>,
    method: Method,
    headers: HeaderMap,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(q): Params,
) -> Response {
    let mut st = inner.lock();
    let token = presented_token(&headers, q.get("access_token").map(String::as_str));
    let record = match check_token(&st, token.as_deref()) {
        Ok(r) => r,
        Err(fault) => return fault.into_response(),
    };
    let result = match (&method, edge.as_str()) {
        (_, "subscribed_apps" | "register") => {
            action(&inner, &mut st, &record, &method, &node, &edge)
        }
        (&Method::GET, _) => listing(&st, &record, &node, &edge).map(|items| {
            let base = format!("{}/{version}/{node}/{edge}", inner.base_url);
            Json(page(&base, &items, &q)).into_response()
        }),
        _ => Err(GraphFault::no_object(
            &method.as_str().to_lowercase(),
            &node,
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The items of a listing edge.
fn listing(
    st: &State,
    record: &TokenRecord,
    node: &str,
    edge: &str,
) -> Result<Vec<Value>, GraphFault> {
    let seed = &st.seed;
    let missing = || GraphFault::no_object("get", node);
    match edge {
        "businesses" if node == "me" => {
            require_scope(record, "business_management")?;
            Ok(seed
                .businesses
                .iter()
                .filter(|b| record.grant.businesses.contains(&b.id))
                .map(|b| json!({"id": b.id, "name": b.name, "permitted_roles": ["ADMIN"]}))
                .collect())
        }
        "owned_whatsapp_business_accounts" | "client_whatsapp_business_accounts" => {
            let business = seed
                .businesses
                .iter()
                .find(|b| b.id == node && record.grant.businesses.contains(&b.id))
                .ok_or_else(missing)?;
            let wabas = if edge.starts_with("owned") {
                &business.owned_wabas
            } else {
                &business.client_wabas
            };
            Ok(wabas
                .iter()
                .rev()
                .filter(|w| record.grant.wabas.contains(&w.id))
                .map(|w| json!({"id": w.id, "name": w.name, "currency": "USD", "timezone_id": "1"}))
                .collect())
        }
        "phone_numbers" => {
            let waba = granted_waba(seed, record, node).ok_or_else(missing)?;
            Ok(waba.phone_numbers.iter().map(phone_node).collect())
        }
        _ => Err(missing()),
    }
}

fn phone_node(p: &super::seed::SeedPhone) -> Value {
    json!({
        "id": p.id, "display_phone_number": p.display_phone_number, "verified_name": p.verified_name,
        "quality_rating": p.quality_rating, "status": p.status, "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"},
    })
}

/// `subscribed_apps` (GET/POST/DELETE) and `register` (POST).
fn action(
    inner: &Shared,
    st: &mut State,
    record: &TokenRecord,
    method: &Method,
    node: &str,
    edge: &str,
) -> Result<Response, GraphFault> {
    let success = || Json(json!({"success": true})).into_response();
    let no_object = || GraphFault::no_object(&method.as_str().to_lowercase(), node);
    if edge == "register" {
        let granted = st
            .seed
            .phone(node)
            .is_some_and(|(w, _)| record.grant.wabas.contains(&w.id));
        return if granted && method == Method::POST {
            Ok(success())
        } else {
            Err(no_object())
        };
    }
    granted_waba(&st.seed, record, node).ok_or_else(no_object)?;
    Ok(match *method {
        Method::POST => {
            st.subscribed.insert(node.to_owned());
            success()
        }
        Method::DELETE => {
            st.subscribed.remove(node);
            success()
        }
        _ if st.subscribed.contains(node) => {
            let app = json!({"id": inner.app_id, "link": format!("https://www.facebook.com/games/?app_id={}", inner.app_id), "name": inner.app_name});
            Json(json!({"data": [{"whatsapp_business_api_data": app}]})).into_response()
        }
        _ => Json(json!({"data": []})).into_response(),
    })
}

fn granted_waba<'a>(
    seed: &'a super::seed::Seed,
    record: &TokenRecord,
    id: &str,
) -> Option<&'a super::seed::SeedWaba> {
    seed.waba(id)
        .filter(|w| record.grant.wabas.iter().any(|g| g == &w.id))
}

/// Keeps `id` and the requested `fields` (all when none are requested).
fn select(full: &Value, fields: Option<&String>) -> Value {
    let (Some(fields), Some(obj)) = (fields, full.as_object()) else {
        return full.clone();
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    Value::Object(
        obj.iter()
            .filter(|(k, _)| *k == "id" || wanted.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Cursor paging: `limit` (default 25, at most 100) and `after`; `next` only when more remain.
fn page(base: &str, items: &[Value], q: &HashMap<String, String>) -> Value {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let start = q
        .get("after")
        .and_then(|c| decode_cursor(c))
        .unwrap_or(0)
        .min(items.len());
    let end = (start + limit).min(items.len());
    let mut body = json!({"data": &items[start..end]});
    if items.is_empty() {
        return body;
    }
    body["paging"] =
        json!({"cursors": {"before": encode_cursor(start), "after": encode_cursor(end)}});
    if end < items.len() {
        let mut next = url::Url::parse(base).expect("emulator base URL is valid");
        next.query_pairs_mut()
            .append_pair("limit", &limit.to_string())
            .append_pair("after", &encode_cursor(end));
        body["paging"]["next"] = json!(next.as_str());
    }
    body
}

fn encode_cursor(index: usize) -> String {
    format!("QVFIU{}", hex::encode(format!("idx:{index}")))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = hex::decode(cursor.strip_prefix("QVFIU")?).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("idx:")?
        .parse()
        .ok()
}
