//! Structured JSON logs (one line per decision, with the record id).
//!
//! The level comes from `RUST_LOG` as one level (`error`, `warn`, `info`, `debug`, `trace`,
//! `off`): per-target directives are not read, so no regular-expression engine is linked into
//! the functions (a smaller package, a faster cold start).

use tracing::level_filters::LevelFilter;

/// The level `RUST_LOG` names, if it names one.
fn level_from_env() -> Option<LevelFilter> {
    level_of(&std::env::var("RUST_LOG").ok()?)
}

/// The one level `text` names (`RUST_LOG`'s value), if it names one.
pub fn level_of(text: &str) -> Option<LevelFilter> {
    text.trim().parse().ok()
}

/// For Lambda: JSON lines on stdout, level from `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_json() {
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_max_level(level_from_env().unwrap_or(LevelFilter::INFO))
        .with_target(false)
        .try_init();
}

/// For the CLI: JSON lines on stderr, only when asked for with `RUST_LOG`, so tables stay clean.
pub fn init_cli() {
    if let Some(level) = level_from_env() {
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_level_from_rust_log() {
        let cases = [
            ("info", Some(LevelFilter::INFO)),
            (" DEBUG ", Some(LevelFilter::DEBUG)),
            ("off", Some(LevelFilter::OFF)),
            ("warn", Some(LevelFilter::WARN)),
            ("reflex=debug", None),
            ("loud", None),
            // As `EnvFilter` read it: an empty value is errors only.
            ("", Some(LevelFilter::ERROR)),
        ];
        for (text, want) in cases {
            assert_eq!(level_of(text), want, "{text:?}");
        }
    }
}
