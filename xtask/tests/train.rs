//! `cargo xtask train lenet5` end to end on the shipped MNIST, a few steps at a time: it stops
//! at `--max-steps` with a checkpoint, and the command it prints continues the run (the
//! library's tests prove the continuation exact); its `tracing` logs reach stderr; a
//! `--resume` with nothing to resume is refused; and Ctrl-C writes a checkpoint, exits with
//! status 130 and prints a command that resumes.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "convnets-xtask-train-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `cargo xtask <args>`, on one thread, with the default log filter.
fn xtask<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args)
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("RUST_LOG");
    cmd
}

/// `cargo xtask train lenet5 --variant modern --out <out> <args>`.
fn train(out: &Path, args: &[&str]) -> Command {
    let mut cmd = xtask(["train", "lenet5", "--variant", "modern", "--out"]);
    cmd.arg(out).args(args);
    cmd
}

/// The command `text` says to run next, between backticks (`cargo xtask train lenet5 …`), as
/// xtask's arguments. The scratch paths need no quoting, so words split at spaces.
fn printed_command(text: &str) -> Result<Vec<String>> {
    let command = text
        .split('`')
        .nth(1)
        .with_context(|| format!("no command in backticks: {text}"))?;
    let words: Vec<String> = command.split(' ').map(String::from).collect();
    ensure!(
        words.starts_with(&["cargo".into(), "xtask".into()]),
        "{command}"
    );
    Ok(words[2..].to_vec())
}

fn run(cmd: &mut Command) -> Result<(Output, String, String)> {
    let out = cmd.output().context("running xtask")?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    Ok((out, stdout, stderr))
}

#[test]
fn max_steps_stops_and_the_printed_command_resumes() -> Result<()> {
    let dir = scratch("steps");
    // Options that each change the run's configuration: a resume without any one of them
    // would be refused as a different run. One epoch of 20 steps.
    let options = [
        "--limit",
        "640",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--lr",
        "0.02",
        "--seed",
        "7",
        "--optimizer",
        "adamw",
    ];
    let (first, stdout, stderr) = run(train(&dir, &["--max-steps", "5"]).args(options))?;
    ensure!(first.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("stopped at step 5 (--max-steps)"),
        "{stdout}"
    );
    assert!(dir.join("checkpoint.safetensors").exists());
    // xtask's and the trainer's `tracing::info!` reach stderr through xtask's subscriber.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("INFO") && l.contains("training LeNet-5")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.contains("INFO")
            && l.contains("stopped at max_steps")
            && l.contains("step=5")),
        "{stderr}"
    );

    let resume = printed_command(&stdout)?;
    let mut expected = vec!["train", "lenet5", "--variant", "modern"];
    expected.extend(options);
    expected.extend(["--resume", "--out", dir.to_str().context("path")?]);
    assert_eq!(resume, expected, "{stdout}");
    // Run exactly as printed, it continues the run from step 5 to the end of its epoch.
    let (second, stdout, stderr) = run(&mut xtask(&resume))?;
    ensure!(second.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("INFO") && l.contains("resuming") && l.contains("step=5")),
        "{stderr}"
    );
    assert!(stdout.contains("done: test error"), "{stdout}");
    Ok(())
}

#[test]
fn resume_without_a_checkpoint_is_refused() -> Result<()> {
    let dir = scratch("nothing");
    let (out, _, stderr) = run(&mut train(&dir, &["--resume"]))?;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--resume: no checkpoint to continue from at")
            && stderr.contains("checkpoint.safetensors"),
        "{stderr}"
    );
    assert!(!dir.join("config.json").exists(), "nothing may be written");
    Ok(())
}

#[test]
fn zero_batch_size_is_an_error_not_a_panic() -> Result<()> {
    let (out, _, stderr) = run(&mut train(&scratch("zero"), &["--batch-size", "0"]))?;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: --batch-size takes a whole number of at least 1, not `0`"),
        "{stderr}"
    );
    Ok(())
}

/// How long an interrupted run may take to stop: a missed signal leaves it training for
/// minutes, and the test fails at this deadline instead of waiting for that.
const DEADLINE: Duration = Duration::from_secs(120);

/// Starts `cmd`, sends it SIGINT once a line of its stderr contains `ready`, and returns its
/// exit status and stderr; the child is killed and the test fails if either takes longer
/// than [`DEADLINE`].
#[cfg(unix)]
fn interrupt(cmd: &mut Command, ready: &str) -> Result<(ExitStatus, String)> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting xtask")?;
    let stderr = BufReader::new(child.stderr.take().context("stderr")?);
    // Lines arrive over a channel, so that waiting for one can time out.
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut seen = String::new();
    let mut signalled = false;
    loop {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen += &line;
                seen.push('\n');
                if !signalled && line.contains(ready) {
                    let kill = Command::new("kill")
                        .args(["-INT", &child.id().to_string()])
                        .status()?;
                    ensure!(kill.success(), "kill -INT");
                    signalled = true;
                }
            }
            // stderr closed: the child is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("still running after {DEADLINE:?} (signalled: {signalled}):\n{seen}");
            }
        }
    }
    ensure!(signalled, "never printed `{ready}`:\n{seen}");
    Ok((child.wait()?, seen))
}

#[cfg(unix)]
#[test]
fn ctrl_c_writes_a_checkpoint_exits_130_and_the_printed_command_resumes() -> Result<()> {
    let dir = scratch("interrupt");
    // 20 epochs of half of MNIST (`--limit`, which the resume must repeat): only the Ctrl-C
    // can end it within the deadline. The handler counts the run as started from the line
    // waited for.
    let (status, stderr) = interrupt(&mut train(&dir, &["--limit", "30000"]), "training LeNet-5")?;
    assert_eq!(status.code(), Some(130), "{stderr}");
    let message = stderr
        .lines()
        .find(|l| l.starts_with("interrupted at step"))
        .with_context(|| format!("no resume message:\n{stderr}"))?;
    assert!(dir.join("checkpoint.safetensors").exists(), "{stderr}");
    let resume = printed_command(message)?;
    let path = dir.to_str().context("path")?;
    assert_eq!(
        resume,
        [
            "train",
            "lenet5",
            "--variant",
            "modern",
            "--limit",
            "30000",
            "--resume",
            "--out",
            path
        ],
        "{message}"
    );
    // Exactly as printed it resumes (a different configuration would be refused before
    // this line), and a Ctrl-C stops it again with a checkpoint.
    let (status, stderr) = interrupt(&mut xtask(&resume), "resuming")?;
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted at step"), "{stderr}");
    Ok(())
}
