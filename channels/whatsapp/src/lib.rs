//! Switchboard's whatsapp channel (being written).
