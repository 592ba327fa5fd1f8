//! The send requests the adapter builds, as they reach the emulator, are checked against
//! Meta's OpenAPI spec (`business-messaging-api_v23.0.yaml`, schema `Message`) with a small
//! validator: `$ref`, `allOf` (properties merged, so `additionalProperties: false` in one part
//! sees the others), `oneOf` with or without a discriminator, `anyOf`, `type`, `enum`,
//! `required`, `properties`, `items`, `maxLength`.

use std::sync::OnceLock;

use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/meta-openapi/business-messaging-api_v23.0.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        to_json(&YamlLoader::load_from_str(&text).unwrap()[0])
    })
}

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(r) => r
            .parse::<f64>()
            .map_or_else(|_| Value::String(r.clone()), Value::from),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => {
            Value::Object(map.iter().map(|(k, v)| (key_text(k), to_json(v))).collect())
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

fn key_text(key: &Yaml) -> String {
    match key {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(
            spec()
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("unresolved {r}")),
        ),
        None => schema,
    }
}

/// Flattens `allOf` into one schema with merged properties and required lists.
fn merged(schema: &Value) -> Value {
    let schema = resolve(schema);
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let (mut props, mut required, mut closed) = (Map::new(), Vec::new(), false);
    for part in parts.iter().map(merged) {
        props.extend(
            part.get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        );
        required.extend(
            part.get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        closed |= part.get("additionalProperties") == Some(&Value::Bool(false));
    }
    serde_json::json!({"type": "object", "properties": props, "required": required, "additionalProperties": !closed})
}

fn type_ok(kind: &str, v: &Value) -> bool {
    match kind {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn validate(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = merged(schema);
    if let Some(choices) = s.get("oneOf").and_then(Value::as_array) {
        one_of(&s, choices, v, path, errors);
    }
    let any_of = s.get("anyOf").and_then(Value::as_array);
    if any_of.is_some_and(|choices| !choices.iter().any(|c| check(c, v).is_empty())) {
        errors.push(format!("{path}: matches none of anyOf"));
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
        errors.push(format!("{path}: expected {types:?}, got {v}"));
        return;
    }
    let allowed = s.get("enum").and_then(Value::as_array);
    if allowed.is_some_and(|allowed| !allowed.contains(v)) {
        errors.push(format!("{path}: {v} not in {allowed:?}"));
    }
    let limit = s.get("maxLength").and_then(Value::as_u64);
    if let Some((max, text)) = limit.zip(v.as_str())
        && text.chars().count() as u64 > max
    {
        errors.push(format!("{path}: longer than {max}"));
    }
    if let (Some(items), Some(list)) = (s.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            validate(items, item, &format!("{path}[{i}]"), errors);
        }
    }
    if let Some(obj) = v.as_object() {
        object(&s, obj, path, errors);
    }
}

fn object(s: &Value, obj: &Map<String, Value>, path: &str, errors: &mut Vec<String>) {
    let props = s.get("properties").and_then(Value::as_object);
    for req in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !obj.contains_key(req) {
            errors.push(format!("{path}: missing required `{req}`"));
        }
    }
    for (key, value) in obj {
        match props.and_then(|p| p.get(key)) {
            Some(prop) => validate(prop, value, &format!("{path}.{key}"), errors),
            None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                errors.push(format!("{path}: unexpected `{key}`"));
            }
            None => {}
        }
    }
}

fn one_of(s: &Value, choices: &[Value], v: &Value, path: &str, errors: &mut Vec<String>) {
    let mapping = s
        .pointer("/discriminator/mapping")
        .and_then(Value::as_object);
    let property = s
        .pointer("/discriminator/propertyName")
        .and_then(Value::as_str);
    if let (Some(mapping), Some(property)) = (mapping, property) {
        let tag = v.get(property).and_then(Value::as_str).unwrap_or_default();
        match mapping.get(tag) {
            Some(target) => validate(&serde_json::json!({"$ref": target}), v, path, errors),
            None => errors.push(format!("{path}: discriminator `{tag}` not in the spec")),
        }
        return;
    }
    let matching = choices.iter().filter(|c| check(c, v).is_empty()).count();
    if matching != 1 {
        errors.push(format!(
            "{path}: matches {matching} of oneOf, expected exactly 1"
        ));
    }
}

fn check(schema: &Value, v: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    validate(schema, v, "$", &mut errors);
    errors
}

fn message_schema() -> Value {
    serde_json::json!({"$ref": "#/components/schemas/Message"})
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    let bad = [
        serde_json::json!({"messaging_product": "whatsapp", "to": "+1", "type": "text", "text": {"body": "x"}}),
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1", "type": "text", "text": {"body": "x", "extra": 1}}),
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1", "type": "image", "image": {"id": "1", "link": "https://x"}}),
        serde_json::json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1", "type": "selfie", "selfie": {}}),
    ];
    for body in bad {
        assert!(
            !check(&message_schema(), &body).is_empty(),
            "accepted {body}"
        );
    }
}

#[tokio::test]
async fn every_request_the_adapter_sends_matches_metas_openapi_message_schema() {
    let (_env, bodies) = crate::send::send_every_kind().await;
    assert_eq!(bodies.len(), 10);
    for body in &bodies {
        let errors = check(&message_schema(), body);
        assert!(errors.is_empty(), "{body}\n{errors:#?}");
    }
}

#[test]
fn the_mark_as_read_body_uses_the_fields_of_metas_read_receipt_example() {
    let example = spec()
        .pointer("/paths/~1{Version}~1{Phone-Number-ID}~1messages/post/requestBody/content/application~1json/examples/Send typing indicator and read receipt/value")
        .expect("the spec has the read receipt example");
    let msg = switchboard_core::domain::OutboundMessage {
        to: "1".into(),
        content: switchboard_core::domain::OutboundContent::MarkRead {
            message_id: "wamid.X".into(),
        },
        reply_to: None,
        thread_id: None,
        reference: None,
    };
    let body = switchboard_whatsapp::send::request_bodies(&msg)
        .unwrap()
        .remove(0);
    for (key, value) in body.as_object().unwrap() {
        assert!(
            example.get(key).is_some(),
            "`{key}` is not in Meta's example"
        );
        if key != "message_id" {
            assert_eq!(&example[key], value);
        }
    }
}
