//! Signals: the first SIGTERM or SIGINT asks for a graceful stop; a second one exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

/// Exit code after a second signal, as for a process killed by SIGINT.
const FORCED_EXIT: i32 = 130;

/// Cancels the returned token on the first signal; exits the process on the second.
pub fn on_signals() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        warn!("signal received: finishing in-flight work (send another to exit now)");
        cancel.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        error!("second signal: exiting without waiting");
        std::process::exit(FORCED_EXIT);
    });
    Ok(token)
}
