//! Every request shape the adapter builds uses method names, parameter names and value types
//! that exist in the machine-readable Bot API spec (`shared/fixtures/telegram-bot-api-spec`).

use serde_json::Value;
use switchboard_core::domain::{
    MediaKind, MediaSource, OutboundContent, OutboundMessage, ReplyButton,
};
use switchboard_telegram::outbound::plan;
use switchboard_telegram::requests::{self, ApiRequest};

fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/telegram-bot-api-spec/api.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Whether `value` fits one of the spec's type spellings (`Integer`, `Array of String`, a type
/// name whose fields are then checked recursively).
fn fits(spec: &Value, types: &[Value], value: &Value, at: &str) -> Result<(), String> {
    let fits_one = |ty: &str| -> bool {
        match ty {
            "Integer" => value.is_i64(),
            "Float" => value.is_number(),
            "String" => value.is_string(),
            "Boolean" | "True" => value.is_boolean(),
            "InputFile" => false,
            _ if ty.starts_with("Array of ") => value.as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|item| fits(spec, &[Value::from(&ty[9..])], item, at).is_ok())
            }),
            name => object_fits(spec, name, value, at).is_ok(),
        }
    };
    if types.iter().filter_map(Value::as_str).any(fits_one) {
        Ok(())
    } else {
        Err(format!("{at}: {value} is none of {types:?}"))
    }
}

/// An object value against a spec type (or one of its subtypes).
fn object_fits(spec: &Value, name: &str, value: &Value, at: &str) -> Result<(), String> {
    let ty = spec["types"]
        .get(name)
        .ok_or_else(|| format!("{at}: unknown type {name}"))?;
    if let Some(subtypes) = ty.get("subtypes").and_then(Value::as_array) {
        return subtypes
            .iter()
            .find(|s| object_fits(spec, s.as_str().unwrap(), value, at).is_ok())
            .map(|_| ())
            .ok_or_else(|| format!("{at}: {value} fits no subtype of {name}"));
    }
    let object = value
        .as_object()
        .ok_or_else(|| format!("{at}: not an object"))?;
    let fields = ty["fields"].as_array().cloned().unwrap_or_default();
    for (key, inner) in object {
        let field = fields
            .iter()
            .find(|f| f["name"] == key.as_str())
            .ok_or_else(|| format!("{at}: {name} has no field {key}"))?;
        fits(
            spec,
            field["types"].as_array().unwrap(),
            inner,
            &format!("{at}.{key}"),
        )?;
    }
    Ok(())
}

fn conforms(spec: &Value, request: &ApiRequest) -> Result<(), String> {
    let method = spec["methods"]
        .get(request.method)
        .ok_or_else(|| format!("no method {}", request.method))?;
    let fields = method
        .get("fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (name, value) in &request.params {
        let field = fields
            .iter()
            .find(|f| f["name"] == name.as_str())
            .ok_or_else(|| format!("{} has no parameter {name}", request.method))?;
        fits(
            spec,
            field["types"].as_array().unwrap(),
            value,
            &format!("{}.{name}", request.method),
        )?;
    }
    for field in fields.iter().filter(|f| f["required"] == true) {
        let name = field["name"].as_str().unwrap();
        if !request.params.contains_key(name) {
            return Err(format!("{} lacks required {name}", request.method));
        }
    }
    Ok(())
}

fn message(content: OutboundContent) -> OutboundMessage {
    OutboundMessage {
        to: "-1001293752024".into(),
        content,
        reply_to: Some("-1001293752024:134546".into()),
        thread_id: Some("134545".into()),
        reference: None,
    }
}

fn every_outbound_shape() -> Vec<OutboundMessage> {
    let mut shapes = vec![
        message(OutboundContent::Text {
            body: "hello".into(),
            preview_url: true,
        }),
        message(OutboundContent::Text {
            body: "long. ".repeat(1500),
            preview_url: false,
        }),
        message(OutboundContent::Buttons {
            body: "pick".into(),
            buttons: vec![ReplyButton {
                id: "a".into(),
                title: "A".into(),
            }],
        }),
        message(OutboundContent::Reaction {
            message_id: "-1001293752024:1".into(),
            emoji: "👍".into(),
        }),
        message(OutboundContent::ChatAction {
            action: "typing".into(),
        }),
    ];
    let kinds = [
        MediaKind::Image,
        MediaKind::Audio,
        MediaKind::Video,
        MediaKind::Document,
    ];
    for kind in kinds {
        for source in [
            MediaSource::Link("https://x.example/f".into()),
            MediaSource::Id("AgAD".into()),
        ] {
            shapes.push(message(OutboundContent::Media {
                kind,
                source,
                caption: Some("caption".into()),
                filename: None,
            }));
        }
    }
    shapes.push(message(OutboundContent::Media {
        kind: MediaKind::Sticker,
        source: MediaSource::Id("CAAC".into()),
        caption: None,
        filename: None,
    }));
    let mut cross_chat_reply = message(OutboundContent::Text {
        body: "x".into(),
        preview_url: false,
    });
    cross_chat_reply.reply_to = Some("-100999:5".into());
    shapes.push(cross_chat_reply);
    shapes
}

#[test]
fn every_request_the_adapter_builds_exists_in_the_bot_api_spec() {
    let spec = spec();
    let mut all = vec![
        requests::get_me(),
        requests::get_webhook_info(),
        requests::delete_webhook(),
        requests::set_webhook(
            "https://gw.example.com/api/webhooks/telegram",
            "s3cret_-",
            &["message".into()],
            40,
        ),
    ];
    for shape in every_outbound_shape() {
        all.extend(plan(&shape).unwrap_or_else(|e| panic!("{shape:?}: {e}")));
    }
    let methods: std::collections::BTreeSet<_> = all.iter().map(|r| r.method).collect();
    assert_eq!(methods.len(), 12, "{methods:?}");
    for request in &all {
        conforms(&spec, request).unwrap_or_else(|e| panic!("{e}\n{request:?}"));
    }
}

#[test]
fn the_conformance_check_rejects_unknown_methods_parameters_and_types() {
    let spec = spec();
    assert!(conforms(&spec, &ApiRequest::new("sendMesage")).is_err());
    let bad_param = ApiRequest::new("sendMessage")
        .with("chat_id", 1)
        .with("text", "x")
        .with("reply_to", 1);
    assert!(conforms(&spec, &bad_param).is_err());
    let bad_type = ApiRequest::new("sendMessage")
        .with("chat_id", 1)
        .with("text", 5);
    assert!(conforms(&spec, &bad_type).is_err());
    let bad_nested = ApiRequest::new("sendMessage")
        .with("chat_id", 1)
        .with("text", "x")
        .with("reply_parameters", serde_json::json!({"message": 1}));
    assert!(conforms(&spec, &bad_nested).is_err());
    assert!(conforms(&spec, &ApiRequest::new("sendMessage").with("chat_id", 1)).is_err());
}
