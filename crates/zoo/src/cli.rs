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

/// An error and its causes on one line, as `{:#}` writes them, less each cause the text
/// already ends with. The workspace's I/O errors name the file and say why (`{path}:
/// {source}`) and also return the `io::Error` as their source, for callers that walk the
/// chain; `{:#}` would print "No such file or directory (os error 2)" twice.
pub fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::imagenet::ImageNetVal;

    #[test]
    fn a_cause_the_message_already_gives_is_not_repeated() {
        let missing = std::env::temp_dir().join("convnets-cli-no-such-folder");
        let err = ImageNetVal::detect(&missing).expect_err("a missing folder");
        let err = anyhow::Error::new(err).context("reading the ImageNet validation set");
        // "No such file or directory (os error 2)", in the platform's words.
        let os = std::fs::read_dir(&missing)
            .expect_err("missing")
            .to_string();
        assert_eq!(format!("{err:#}").matches(&os).count(), 2, "{err:#}");
        assert_eq!(
            message(&err),
            format!(
                "reading the ImageNet validation set: {}: {os}",
                missing.display()
            )
        );
        // Causes that add something are kept.
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(message(&err), "outer: middle: inner");
    }
}
