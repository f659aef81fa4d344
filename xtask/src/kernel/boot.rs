//! Booting one kernel under qemu (TCG): the init and initramfs of the
//! ftrace boots, the qemu line, the watch over the console.

use super::arch::{ArchData, Boot, Variant, LIVEPATCH_MODULE};
use super::audit::Audit;
use super::console::{check_ftrace, has_oops, Expected};
use super::{Args, Paths, SAMPLE_LINE};
use crate::build::record_time;
use crate::cmd::{self, Step};
use crate::paths::Ctx;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The project's init for the ftrace boots, static, with the kernel tree's
/// nolibc (no C library: nothing to configure, no FP registers).
pub fn build_init(ctx: &Ctx, paths: &Paths, arch: &ArchData) -> Result<()> {
    let Some((cc, flags)) = arch.init_cc else { return Ok(()) };
    let source = ctx.root.join("kernel/init.c");
    let out = paths.init(arch);
    let step = Step::start(&format!("build the init ({cc}, nolibc)"));
    cmd::output(
        Command::new(cc)
            .args(["-Os", "-static", "-nostdlib", "-Wall", "-Werror"])
            .args(["-fno-asynchronous-unwind-tables", "-fno-stack-protector"])
            .args(flags)
            .arg("-I")
            .arg(paths.src().join("tools/include/nolibc"))
            .arg("-o")
            .arg(&out)
            .arg(&source)
            .arg("-lgcc"),
    )?;
    step.done();
    Ok(())
}

/// qemu for one kernel: TCG, serial console on stdout, no reboot.
fn qemu(paths: &Paths, arch: &ArchData, variant: &Variant, initrd: Option<&Path>) -> Command {
    let mut qemu = Command::new(arch.qemu);
    qemu.args(arch.machine);
    if let Some(cpu) = variant.cpu {
        qemu.args(["-cpu", cpu]);
    }
    qemu.args(["-accel", "tcg", "-m", "256M", "-nographic", "-no-reboot"]);
    let cmdline = format!("console={} panic=-1 {}", arch.console, arch.cmdline);
    qemu.arg("-append").arg(cmdline.trim_end());
    qemu.arg("-kernel").arg(paths.out(arch, variant).join(arch.image));
    if let Some(initrd) = initrd {
        qemu.arg("-initrd").arg(initrd);
    }
    qemu
}

/// Runs `qemu` with its console in `log` until `done` holds for the
/// console's text or qemu exits; `done` stops it after `grace` more. A boot
/// that takes longer than `timeout` stops with the console's tail. Returns
/// the time to `done` and the console.
fn watch(mut qemu: Command, log: &Path, timeout: Duration, grace: Duration, done: impl Fn(&str) -> bool) -> Result<(Duration, String)> {
    let started = Instant::now();
    let mut child = cmd::spawn_logged(&mut qemu, log)?;
    let read = || fs::read(log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let mut finished: Option<Duration> = None;
    let outcome = loop {
        std::thread::sleep(Duration::from_millis(100));
        if finished.is_none() && done(&read()) {
            finished = Some(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            // What qemu printed between the last look and its exit counts.
            if finished.is_none() && done(&read()) {
                finished = Some(started.elapsed());
            }
            break match finished {
                Some(time) => Ok(time),
                None => Err(format!("qemu exited ({status}) before the boot was done")),
            };
        }
        if let Some(time) = finished {
            if started.elapsed() > time + grace {
                break Ok(time);
            }
        }
        if started.elapsed() > timeout {
            break Err(format!("the boot did not finish in {}s (--boot-timeout)", timeout.as_secs()));
        }
    };
    // qemu is ours: stop it by its own handle, whatever happened.
    child.kill().ok();
    child.wait().ok();
    let text = read();
    match outcome {
        Ok(time) => Ok((time, text)),
        Err(why) => bail!("`{}`: {why}; the end of {}:\n{}", cmd::show(&qemu), log.display(), cmd::tail(&text, 30)),
    }
}

/// Boots the image until the Rust sample (built in) prints, then stops
/// qemu. Returns the time from starting qemu to the line.
pub fn boot_sample(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant, args: &Args) -> Result<Duration> {
    let step = Step::start(&format!("boot under {} (TCG) until the Rust sample prints", arch.qemu));
    let log = ctx.logs().join(format!("kernel-boot-{}-{}.log", arch.name, variant.name));
    println!("    console: {}", log.display());
    let timeout = Duration::from_secs(args.boot_timeout);
    let (time, text) = watch(qemu(paths, arch, variant, None), &log, timeout, Duration::ZERO, |t| t.contains(SAMPLE_LINE))?;
    for line in text.lines().filter(|l| l.contains("rust_minimal:")) {
        println!("    console: {}", line.trim_end());
    }
    println!("    the sample printed {:.1}s after qemu started; qemu stopped", time.as_secs_f64());
    record_time(ctx, &format!("kernel-boot-{}", arch.name), Instant::now() - time)?;
    step.done();
    Ok(time)
}

/// The initramfs of an ftrace boot: the init, `/dev/console`, the sample
/// module, and where the variant has it the live patch of Rust functions
/// (the init runs its steps only when the file is there); written with the
/// kernel's own `usr/gen_init_cpio`.
fn initramfs(paths: &Paths, arch: &ArchData, variant: &Variant) -> Result<PathBuf> {
    let out = paths.out(arch, variant);
    let gen = out.join("usr/gen_init_cpio");
    let module = out.join("samples/rust/rust_minimal.ko");
    let livepatch = matches!(variant.boot, Boot::Ftrace { livepatch: true, .. }).then(|| out.join(LIVEPATCH_MODULE));
    for needed in [&gen, &module, &paths.init(arch)].into_iter().chain(livepatch.as_ref()) {
        if !needed.is_file() {
            bail!("no {}: the build should have made it", needed.display());
        }
    }
    let list = out.join("pfe-initramfs.list");
    let mut spec = format!(
        "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\ndir /sys 0755 0 0\n\
         file /init {} 0755 0 0\nfile /rust_minimal.ko {} 0644 0 0\n",
        paths.init(arch).display(),
        module.display()
    );
    if let Some(livepatch) = &livepatch {
        let name = Path::new(LIVEPATCH_MODULE).file_name().expect("a file name").to_string_lossy();
        spec += &format!("file /{name} {} 0644 0 0\n", livepatch.display());
    }
    fs::write(&list, spec)?;
    let cpio = out.join("pfe-initramfs.cpio");
    let output = Command::new(&gen).arg(&list).stdin(Stdio::null()).output().with_context(|| format!("cannot run {}", gen.display()))?;
    if !output.status.success() {
        bail!("`{} {}` failed: {}", gen.display(), list.display(), String::from_utf8_lossy(&output.stderr));
    }
    fs::write(&cpio, output.stdout)?;
    Ok(cpio)
}

/// Boots with the project's init until it says it is done (it powers the
/// machine off then), and checks the console against the audit.
pub fn boot_ftrace(ctx: &Ctx, paths: &Paths, arch: &ArchData, variant: &Variant, args: &Args, audit: &Audit) -> Result<(Duration, Vec<String>)> {
    let Boot::Ftrace { padded, livepatch } = variant.boot else { unreachable!("an ftrace variant") };
    let step = Step::start(&format!("boot under {} (TCG) with the ftrace init", arch.qemu));
    let cpio = initramfs(paths, arch, variant)?;
    let log = ctx.logs().join(format!("kernel-boot-{}-{}.log", arch.name, variant.name));
    println!("    console: {}", log.display());
    let timeout = Duration::from_secs(args.boot_timeout);
    let qemu = qemu(paths, arch, variant, Some(&cpio));
    let shown = cmd::show(&qemu);
    let (time, text) = watch(qemu, &log, timeout, Duration::from_secs(10), |t| t.contains("PFE-INIT done") || has_oops(t))?;
    let expected = Expected {
        padded,
        livepatch,
        built_in: &audit.built_in,
        module: &audit.module,
        all: &audit.all,
        init_text: &audit.init_text,
        weak: &audit.weak,
        module_text: &audit.module_text,
    };
    let evidence = check_ftrace(&text, &expected)
        .with_context(|| format!("the console of `{shown}` ({}) does not show what it should", log.display()))?;
    for line in &evidence {
        println!("    {line}");
    }
    record_time(ctx, &format!("kernel-boot-{}-{}", arch.name, variant.name), Instant::now() - time)?;
    step.done();
    Ok((time, evidence))
}
