//! Every fixture webhook body parses into the events it describes: one table row per file
//! names the event, its routing account, its provider id and its key content. A final test
//! checks that the table covers every file in the fixture directory.

use switchboard_core::domain::{DeliveryStatus, InboundEvent, MessageKind};

use crate::support::{fixture_dir, parse_fixture};

/// What the first event of a fixture must be.
enum Want {
    /// kind, account id, message id, text.
    Msg(
        MessageKind,
        &'static str,
        &'static str,
        Option<&'static str>,
    ),
    /// status, account id, message id, error code.
    Status(
        DeliveryStatus,
        &'static str,
        &'static str,
        Option<&'static str>,
    ),
    /// kind, account id, text the summary contains.
    Account(&'static str, Option<&'static str>, &'static str),
}

use MessageKind as K;
use Want::{Account, Msg, Status};

const PN_META: &str = "106540352242922";
const PN_PYWA: &str = "1122334455667";

fn table() -> Vec<(&'static str, usize, Want)> {
    vec![
        (
            "meta-openapi__group-lifecycle-update-create.json",
            1,
            Account("group_lifecycle_update", Some(PN_META), "group_create"),
        ),
        (
            "meta-openapi__group-participants-update-remove.json",
            1,
            Account("group_participants_update", Some(PN_META), "group_create"),
        ),
        (
            "meta-openapi__msg-button-template-quick-reply.json",
            1,
            Msg(
                K::Button,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUU0M0MxQzQzMUJCMTMwNUZFOQA=",
                Some("Unsubscribe"),
            ),
        ),
        (
            "meta-openapi__msg-contacts.json",
            1,
            Msg(
                K::Contacts,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                Some("Lucía Gómez"),
            ),
        ),
        (
            "meta-openapi__msg-image.json",
            1,
            Msg(
                K::Image,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                Some("Taj Mahal"),
            ),
        ),
        (
            "meta-openapi__msg-interactive-button-reply.json",
            1,
            Msg(
                K::Interactive,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=",
                Some("Cancel"),
            ),
        ),
        (
            "meta-openapi__msg-interactive-list-reply.json",
            1,
            Msg(
                K::Interactive,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUJDQ0NDM0FEODY4ODkzOTc5RgA=",
                Some("Priority Mail Express"),
            ),
        ),
        (
            "meta-openapi__msg-location.json",
            1,
            Msg(
                K::Location,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTU2MjZEMDBGRkE3MENEMDE0RQA=",
                Some("Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301"),
            ),
        ),
        (
            "meta-openapi__msg-order.json",
            1,
            Msg(
                K::Order,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTEyQjFGNzI1QTQxMjI5QTMyOQA=",
                Some("Order of 2 item(s)"),
            ),
        ),
        (
            "meta-openapi__msg-reaction.json",
            1,
            Msg(
                K::Reaction,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                Some("👍"),
            ),
        ),
        (
            "meta-openapi__msg-system-user-changed-number.json",
            1,
            Msg(
                K::System,
                PN_META,
                "wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA==",
                Some("User Sheena Nelson changed from 16505551234 to 12195555358"),
            ),
        ),
        (
            "meta-openapi__msg-text-context-product-inquiry.json",
            1,
            Msg(
                K::Text,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=",
                Some("Is this still available?"),
            ),
        ),
        (
            "meta-openapi__msg-text-ctwa-referral.json",
            1,
            Msg(
                K::Text,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA=",
                Some("Hello! Can I get more info on this?"),
            ),
        ),
        (
            "meta-openapi__msg-text.json",
            1,
            Msg(
                K::Text,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                Some("Does it come in another color?"),
            ),
        ),
        (
            "meta-openapi__msg-unsupported-131051.json",
            1,
            Msg(
                K::Unsupported,
                PN_META,
                "wamid.HBgLMTQyMDU1NTA3NDkVAgASGBI5N0MwRjg0RTVBNUI1RDA2OTkA",
                None,
            ),
        ),
        (
            "pywa__account-update-deleted.json",
            1,
            Account("account_update", None, "ACCOUNT_DELETED"),
        ),
        (
            "pywa__account-update-partner-app-installed.json",
            1,
            Account("account_update", None, "PARTNER_APP_INSTALLED"),
        ),
        (
            "pywa__account-update-restriction.json",
            1,
            Account("account_update", None, "ACCOUNT_RESTRICTION"),
        ),
        (
            "pywa__account-update-violation.json",
            1,
            Account("account_update", None, "ACCOUNT_VIOLATION"),
        ),
        (
            "pywa__msg-audio-voice.json",
            1,
            Msg(K::Voice, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-audio.json",
            1,
            Msg(K::Audio, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-button-quick-reply-no-context.json",
            1,
            Msg(K::Button, PN_PYWA, "wamid.xsidjx", Some("title")),
        ),
        (
            "pywa__msg-button-quick-reply.json",
            1,
            Msg(K::Button, PN_PYWA, "wamid.xsidjw", Some("title")),
        ),
        (
            "pywa__msg-document.json",
            1,
            Msg(K::Document, PN_PYWA, "wamid.xyzxyz", Some("caption")),
        ),
        (
            "pywa__msg-edit-image.json",
            1,
            Msg(
                K::Edit,
                PN_META,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
                Some("Updated image caption"),
            ),
        ),
        (
            "pywa__msg-image-with-url.json",
            1,
            Msg(K::Image, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-interactive-list-reply-description.json",
            1,
            Msg(K::Interactive, PN_PYWA, "wamid.zyzxyz", Some("title")),
        ),
        (
            "pywa__msg-interactive-nfm-reply-flow.json",
            1,
            Msg(
                K::Interactive,
                PN_PYWA,
                "wamid.wegrchytvwcggt==",
                Some("Sent"),
            ),
        ),
        (
            "pywa__msg-interactive-with-errors.json",
            2,
            Msg(K::Interactive, PN_PYWA, "wamid.wegrchytvwcggt=", None),
        ),
        (
            "pywa__msg-location-current.json",
            1,
            Msg(
                K::Location,
                PN_PYWA,
                "wamid.xyzxyz",
                Some("12.25089,43.90539"),
            ),
        ),
        (
            "pywa__msg-reaction-removed-empty-emoji.json",
            1,
            Msg(K::Reaction, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-revoke-deleted.json",
            1,
            Msg(
                K::Delete,
                "<BUSINESS_PHONE_NUMBER_ID>",
                "<WHATSAPP_MESSAGE_ID>",
                None,
            ),
        ),
        (
            "pywa__msg-sticker-animated.json",
            1,
            Msg(K::Sticker, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-sticker-static.json",
            1,
            Msg(K::Sticker, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-system-identity-change.json",
            1,
            Msg(
                K::System,
                PN_PYWA,
                "wamid.xyzxyz",
                Some("User identity changed"),
            ),
        ),
        (
            "pywa__msg-system-phone-number-change.json",
            1,
            Msg(
                K::System,
                PN_PYWA,
                "wamid.xyzxyz==",
                Some("User A changed from 972987654321 to 972912345678"),
            ),
        ),
        (
            "pywa__msg-text-forwarded-many-times.json",
            1,
            Msg(
                K::Text,
                PN_PYWA,
                "wamid.xyzxyz",
                Some("text forwarded many times"),
            ),
        ),
        (
            "pywa__msg-text-referral.json",
            1,
            Msg(K::Text, PN_PYWA, "wamid.ID", Some("BODY")),
        ),
        (
            "pywa__msg-text-reply-context.json",
            1,
            Msg(K::Text, PN_PYWA, "wamid.xyzxyz", Some("replied text")),
        ),
        (
            "pywa__msg-unsupported-with-type.json",
            1,
            Msg(K::Unsupported, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__msg-video.json",
            1,
            Msg(K::Video, PN_PYWA, "wamid.xyzxyz", Some("caption")),
        ),
        (
            "pywa__smb-message-echo-text.json",
            1,
            Account("message_echo", Some(PN_PYWA), "text"),
        ),
        (
            "pywa__status-delivered.json",
            1,
            Status(DeliveryStatus::Delivered, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__status-failed-130472.json",
            1,
            Status(
                DeliveryStatus::Failed,
                PN_PYWA,
                "wamid.xyzxyz",
                Some("130472"),
            ),
        ),
        (
            "pywa__status-played-voice.json",
            1,
            Status(DeliveryStatus::Played, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__status-read-group.json",
            1,
            Status(
                DeliveryStatus::Read,
                "<BUSINESS_PHONE_NUMBER_ID>",
                "<WHATSAPP_MESSAGE_ID>",
                None,
            ),
        ),
        (
            "pywa__status-read.json",
            1,
            Status(DeliveryStatus::Read, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__status-sent-biz-opaque-callback-data.json",
            1,
            Status(DeliveryStatus::Sent, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__status-sent-cbp.json",
            1,
            Status(DeliveryStatus::Sent, PN_PYWA, "wamid.xyzxyz", None),
        ),
        (
            "pywa__template-category-marketing.json",
            1,
            Account(
                "template_category",
                None,
                "my_message_template category MARKETING",
            ),
        ),
        (
            "pywa__template-quality-yellow.json",
            1,
            Account(
                "template_quality",
                None,
                "welcome_template quality GREEN → YELLOW",
            ),
        ),
        (
            "pywa__template-status-approved.json",
            1,
            Account(
                "template_status",
                None,
                "order_confirmation (en_US) APPROVED",
            ),
        ),
        (
            "pywa__template-status-rejected.json",
            1,
            Account(
                "template_status",
                None,
                "abandoned_cart (en) REJECTED: INVALID_FORMAT",
            ),
        ),
        (
            "pywa__user-preferences-marketing-resume.json",
            1,
            Account(
                "user_preferences",
                Some(PN_META),
                "marketing_messages resume",
            ),
        ),
        (
            "secreto31126__v25-incoming-text-bsuid-username.json",
            1,
            Msg(
                K::Text,
                "123456123",
                "ABGGFlA5Fpa",
                Some("this is a text message"),
            ),
        ),
        (
            "secreto31126__v25-status-sent-pmp-bsuid.json",
            1,
            Status(DeliveryStatus::Sent, "123456123", "ABGGFlA5Fpa", None),
        ),
    ]
}

#[test]
fn every_fixture_parses_into_the_events_it_describes() {
    for (file, count, want) in table() {
        let events = parse_fixture(file);
        assert_eq!(events.len(), count, "{file}: {events:#?}");
        match (&events[0], want) {
            (InboundEvent::Message(m), Msg(kind, account, id, text)) => {
                assert_eq!(
                    (
                        &m.kind,
                        m.account_id.as_str(),
                        m.provider_message_id.as_str()
                    ),
                    (&kind, account, id),
                    "{file}"
                );
                assert_eq!(m.text.as_deref(), text, "{file}");
                assert!(m.raw.is_object(), "{file} keeps the raw message");
            }
            (InboundEvent::Status(s), Status(status, account, id, code)) => {
                assert_eq!(
                    (
                        s.status,
                        s.account_id.as_str(),
                        s.provider_message_id.as_str()
                    ),
                    (status, account, id),
                    "{file}"
                );
                assert_eq!(s.error_code.as_deref(), code, "{file}");
            }
            (InboundEvent::Account(a), Account(kind, account, summary)) => {
                assert_eq!(
                    (a.kind.as_str(), a.account_id.as_deref()),
                    (kind, account),
                    "{file}"
                );
                let text = a.summary.clone().unwrap_or_default();
                assert!(
                    text.contains(summary),
                    "{file}: summary {text:?} lacks {summary:?}"
                );
            }
            (event, _) => panic!("{file}: unexpected first event {event:#?}"),
        }
    }
}

#[test]
fn the_table_covers_every_fixture_file() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = table().into_iter().map(|(f, _, _)| f.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(listed.len(), 56);
}
