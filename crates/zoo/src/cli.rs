//! What the workspace's two command lines, `convnets` and `cargo xtask`, share. Behind the
//! `cli` feature, which the `convnets` binary requires, so that a library user who turns it
//! off does not compile `tracing-subscriber` for the binary's sake.

use std::io::IsTerminal as _;

/// Sends `tracing` events to stderr, filtered by `RUST_LOG` when it is set and by `default`
/// otherwise (`"warn,convnets=info"`: the convnets crates' events at `info` and up, every
/// other crate's warnings). A directive's target matches by prefix, so `convnets` covers
/// every `convnets_*` crate; `RUST_LOG=convnets=debug` also shows, for one, which checksum
/// verified each weights file.
///
/// Call it once, first thing in `main`: a second subscriber cannot be installed.
pub fn init_logging(default: &str) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| default.into());
    // Lossy: a mistyped directive is reported on stderr and skipped, not fatal.
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(directives);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
