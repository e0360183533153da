//! Structured JSON logs (one line per decision, with the record id).

use tracing_subscriber::EnvFilter;

/// For Lambda: JSON lines on stdout, level from `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .try_init();
}

/// For the CLI: JSON lines on stderr, only when asked for with `RUST_LOG`, so tables stay clean.
pub fn init_cli() {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .try_init();
    }
}
