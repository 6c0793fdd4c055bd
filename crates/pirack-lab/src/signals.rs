//! Stopping on SIGINT and SIGTERM: the simulator and the labs wind down and remove
//! the namespaces and processes they made.

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT or SIGTERM once [`catch_stop_signals`] ran.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM set [`STOP`]: what runs winds down and removes what it made.
pub fn catch_stop_signals() -> nix::Result<()> {
    let handler = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &handler) }?;
    }
    Ok(())
}
