//! Running subprocesses: every status is checked and a failure names the
//! command line; long ones write to a log and show progress while they run.

use anyhow::{bail, Context, Result};
use std::fs::{self, File};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The command line as a user could paste it (arguments with spaces quoted).
pub fn show(cmd: &Command) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!("(cd {} && ", dir.display()));
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push_str(&format!(" '{arg}'"));
        } else {
            line.push(' ');
            line.push_str(&arg);
        }
    }
    if cmd.get_current_dir().is_some() {
        line.push(')');
    }
    line
}

/// Runs `cmd` with the terminal as its output.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs `cmd` (with no input) and returns its standard output; a failure
/// shows its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    output_from(cmd.stdin(Stdio::null()))
}

/// Like [`output`], for a command whose standard input the caller has set.
pub fn output_from(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({})\n{}",
            show(cmd),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 30)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What to count in a log to show progress: the lines `counts` accepts, out
/// of `total` (what the last run counted), if known, as `unit`.
pub struct Progress<'a> {
    pub counts: fn(&str) -> bool,
    pub total: Option<usize>,
    pub unit: &'a str,
}

/// The cargo that built the driver (`cargo run` says which in `CARGO`), so
/// the tests and pfe-check are built by the cargo `./x` checked.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cmd` without what `./x`, `cargo run` and rustup put in the driver's own
/// environment (its cargo and compiler, target directory, library path,
/// toolchain pin, `RUSTC_PFE_*`): run as a person's shell would run it.
pub fn as_user(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO")
            || name.starts_with("RUSTC")
            || name.starts_with("RUSTDOC")
            || matches!(&*name, "RUSTFLAGS" | "LD_LIBRARY_PATH" | "RUSTUP_TOOLCHAIN" | "RUST_RECURSION_COUNT")
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Starts `cmd` with no input and its stdout and stderr going to `log` (a new
/// file that begins with the command line), for a caller that watches the
/// log while it runs.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    writeln!(file, "$ {}", show(cmd))?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start `{}`", show(cmd)))
}

/// Runs `cmd` with stdout and stderr going to `log`, printing the step's
/// elapsed time (and `progress` counted from the log) while it runs. Returns
/// how many progress lines the log had. On failure prints the command and
/// the end of the log.
pub fn run_logged(
    cmd: &mut Command,
    step: &str,
    log: &Path,
    progress: Option<Progress<'_>>,
) -> Result<usize> {
    let started = Instant::now();
    let mut child = spawn_logged(cmd, log)?;
    let tty = std::io::stdout().is_terminal();
    let mut reader = File::open(log)?;
    let mut counted = 0usize;
    let mut pending = String::new();
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(500));
        if let Some(p) = &progress {
            counted += count_new(&mut reader, &mut pending, p.counts)?;
        }
        let every = if tty { Duration::from_secs(1) } else { Duration::from_secs(60) };
        if last_report.elapsed() >= every {
            last_report = Instant::now();
            let line = status_line(step, started.elapsed(), &progress, counted);
            if tty {
                print!("\r{line}");
                std::io::stdout().flush().ok();
            } else {
                println!("{line}");
            }
        }
    };
    if let Some(p) = &progress {
        counted += count_new(&mut reader, &mut pending, p.counts)?;
    }
    if tty {
        println!("\r{}", status_line(step, started.elapsed(), &progress, counted));
    }
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        bail!(
            "`{}` failed ({status}) after {}; the end of {}:\n{}",
            show(cmd),
            elapsed(started.elapsed()),
            log.display(),
            tail(&text, 40)
        );
    }
    Ok(counted)
}

fn count_new(reader: &mut File, pending: &mut String, counts: fn(&str) -> bool) -> Result<usize> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    reader.seek(SeekFrom::Current(0))?;
    pending.push_str(&String::from_utf8_lossy(&bytes));
    let mut count = 0;
    while let Some(end) = pending.find('\n') {
        if counts(&pending[..end]) {
            count += 1;
        }
        pending.drain(..=end);
    }
    Ok(count)
}

fn status_line(step: &str, time: Duration, progress: &Option<Progress<'_>>, done: usize) -> String {
    let mut line = format!("    {step}: {}", elapsed(time));
    match progress {
        Some(Progress { total: Some(total), unit, .. }) if *total > 0 => {
            let width = 30;
            let filled = (done.min(*total) * width) / total;
            line.push_str(&format!(
                " [{}{}] {done}/{total} {unit}",
                "#".repeat(filled),
                "-".repeat(width - filled)
            ));
        }
        Some(Progress { unit, .. }) => line.push_str(&format!(", {done} {unit}")),
        None => {}
    }
    line
}

/// `1m05s`, `42s`.
pub fn elapsed(time: Duration) -> String {
    let secs = time.as_secs();
    if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// Announces a step and times it.
pub struct Step {
    name: String,
    started: Instant,
}

impl Step {
    pub fn start(name: &str) -> Step {
        println!("==> {name}");
        Step { name: name.to_string(), started: Instant::now() }
    }
    pub fn skip(name: &str, why: &str) {
        println!("==> {name}: {why}, skipped");
    }
    pub fn done(self) {
        println!("    {} done in {}", self.name, elapsed(self.started.elapsed()));
    }
}
