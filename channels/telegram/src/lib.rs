//! Switchboard's telegram channel (being written).
