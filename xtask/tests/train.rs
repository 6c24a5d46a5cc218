//! `cargo xtask train lenet5` end to end on the shipped MNIST, a few steps at a time: it stops
//! at `--max-steps` with a checkpoint, `--resume` continues from it (the library's tests prove
//! the continuation exact), its `tracing` logs reach stderr, a `--resume` with nothing to
//! resume is refused, and Ctrl-C writes a checkpoint and exits with status 130.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, ensure};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "convnets-xtask-train-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `cargo xtask train lenet5 --variant modern --out <out> <args>`, on one thread, with the
/// default log filter.
fn train(out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["train", "lenet5", "--variant", "modern", "--out"])
        .arg(out)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .env_remove("RUST_LOG");
    cmd
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
fn max_steps_stops_resume_continues_and_the_logs_show() -> Result<()> {
    let dir = scratch("steps");
    let (first, stdout, stderr) = run(&mut train(&dir, &["--max-steps", "20"]))?;
    ensure!(first.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stopped at step 20"), "{stdout}");
    assert!(dir.join("checkpoint.safetensors").exists());
    // The trainer's `tracing::info!` reaches stderr through xtask's subscriber.
    assert!(
        stderr.lines().any(|l| l.contains("INFO")
            && l.contains("stopped at max_steps")
            && l.contains("step=20")),
        "{stderr}"
    );

    let (second, stdout, stderr) = run(&mut train(&dir, &["--max-steps", "30", "--resume"]))?;
    ensure!(second.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("INFO") && l.contains("resuming") && l.contains("step=20")),
        "{stderr}"
    );
    assert!(stdout.contains("stopped at step 30"), "{stdout}");
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
        stderr.contains("error: --batch-size must be at least 1"),
        "{stderr}"
    );
    Ok(())
}

#[cfg(unix)]
#[test]
fn ctrl_c_writes_a_checkpoint_and_exits_130() -> Result<()> {
    let dir = scratch("interrupt");
    let mut child = train(&dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting xtask")?;
    let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
    // The Ctrl-C handler is installed before this line is printed.
    let mut seen = String::new();
    while !seen.contains("training LeNet-5") {
        if stderr.read_line(&mut seen)? == 0 {
            break;
        }
    }
    ensure!(seen.contains("training LeNet-5"), "{seen}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    ensure!(kill.success(), "kill -INT");
    stderr.read_to_string(&mut seen)?;
    let status = child.wait()?;
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted at step"), "{seen}");
    assert!(dir.join("checkpoint.safetensors").exists(), "{seen}");
    Ok(())
}
