//! What a running sandbox (`serve --sandbox`) holds: its emulators and its tenant.

use switchboard_core::BusinessId;

/// The running emulators; dropped, they stop.
#[derive(Debug)]
pub struct Emulators {
    pub whatsapp: Option<switchboard_whatsapp::emulator::EmulatorHandle>,
    pub telegram: Option<switchboard_telegram::emulator::EmulatorHandle>,
}

/// What the running sandbox offers the dashboard.
#[derive(Debug)]
pub struct SandboxInfo {
    pub business: BusinessId,
    pub emulators: Emulators,
}
