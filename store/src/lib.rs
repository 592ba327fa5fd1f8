//! Switchboard's database backends (being written).
