//! The rustc-pfe driver: turns the patch series in `patches/` into a built,
//! tested rustc 1.63 (the rustup toolchain `pfe`). `./x` with no arguments
//! lists the commands; every step skips itself when its output is current.

mod apply;
#[cfg(any(test, feature = "bench"))]
mod bench;
mod build;
mod cmd;
mod deb;
mod deps;
#[cfg(any(test, feature = "bench"))]
mod e2e;
#[cfg(any(test, feature = "bench"))]
mod e2e_matrix;
mod fetch;
mod kernel;
mod paths;
mod prefixes;
mod prepare;
mod refresh;
mod regressions;
mod series;
mod source_package;
mod test;

use anyhow::{bail, Result};
use std::io::Write;

/// The command line, in one place: name, arguments, what it does. `./x`
/// alone prints this table. Parsed by hand (a dozen words do not need an
/// argument-parsing crate in every fresh clone's driver build).
const COMMANDS: &[(&str, &str, &str)] = &[
    ("build", "[--discard]", "Install, fetch, prepare, apply the series, build stage1 and link the rustup toolchain `pfe`"),
    ("test", "[--discard] [--exact] [FILTER...]", "Build what is missing, then run the tests (those whose name contains a FILTER); ends with `N passed, N failed`"),
    ("refresh", "", "Export the commits after the base in the cached tree to `patches/`"),
    ("deps", "", "Only install the Debian packages every command needs (`./x kernel`'s for every architecture too)"),
    ("fetch", "", "Only download the pinned source package and verify its SHA-256 sums"),
    ("prepare", "", "Only unpack and prepare the base tree as `debian/rules` does"),
    ("apply", "[--discard]", "Only apply `patches/series` to the cached tree"),
    ("bench", "", "Measure what padding and the toolchain cost; rewrites docs/PERFORMANCE.md"),
    ("check-prefixes", "", "Check every prefix of the series with `x.py check` of the compiler, in a worktree of its own, then build and test the whole series (`./x test`)"),
    ("regressions", "[--rerun-base] [--run-pass]", "Run the base's whole codegen, assembly and ui suites with and without the series and compare; --run-pass instead runs every ui test that runs a program, plain and with padding forced on, and compares; each rewrites its part of docs/REGRESSIONS.md"),
    ("deb", "[--check]", "Package the toolchain `./x build` made as the Debian package rustc-pfe (in the cache; its path is printed); --check installs it with apt-get, uses it as a person would, purges it"),
    ("source-package", "[--check] [--build [--with-tests]] [--series-tests] [--chroot]", "Make Debian's rustc source package with the series in it (Debian's patches, then ours; a local version; its own version line), with dpkg-source, in the cache; --check unpacks it as a user would and checks it; --build builds its binary packages with dpkg-buildpackage -B (Debian's rules, stage 2; hours; Debian's test step only with --with-tests); --series-tests runs the series' codegen/assembly/ui/incremental tests in that build's tree through Debian's rules (stage 2); --chroot installs the last build's packages into a fresh debootstrap chroot of Debian 12 and checks them there, with the archive's rustc as control"),
    ("kernel", "[--arch x86_64|arm64|riscv64] [--jobs N] [--boot-timeout SECONDS]", "Build Debian's Linux 6.1 with the toolchain and kernel/patches, audit its Rust objects with pfe-check, boot it in qemu: x86_64 (default) padded =16,16 until the Rust sample prints, then with ftrace's entry tracing, redirecting and live-patching Rust functions, also with IBT (objtool silent on Rust code, against a control with Rust jump tables); arm64, riscv64 with ftrace tracing and redirecting Rust functions; each ftrace kernel with a control without the padding"),
];

const DISCARD_HELP: &str = "--discard  throw away uncommitted changes and unexported commits in the cached tree";
const TEST_HELP: &str = "\
FILTER     run only the tests whose name contains it (libtest's filters): the Rust
           tests of `cargo test`, the end-to-end ones among them as `e2e::tests::NAME`;
           compiletest runs only when a FILTER is part of the name of one of the series'
           tests, like `[ui] src/test/ui/patchable-function-entry/naked.rs`
--only F   the same as a FILTER F
--exact    a FILTER must be the whole name";

fn usage() -> String {
    let mut text = String::from("Build and test rustc 1.63 with patchable function entries.\n\nUsage: ./x <COMMAND> [ARGS]\n\nCommands:\n");
    for (name, args, help) in COMMANDS {
        text.push_str(&format!("  {:<14} {help}\n", name));
        if !args.is_empty() {
            text.push_str(&format!("  {:<14}   ./x {name} {args}\n", ""));
        }
    }
    text.push_str("\n`./x <COMMAND> --help` says more about one command.");
    text
}

fn command_help(name: &str) -> String {
    let (_, args, help) = COMMANDS.iter().find(|c| c.0 == name).expect("a listed command");
    let mut text = format!("{help}\n\nUsage: ./x {name} {args}\n");
    if args.contains("--discard") {
        text.push_str(&format!("\n{DISCARD_HELP}\n"));
    }
    if name == "test" {
        text.push_str(&format!("{TEST_HELP}\n"));
    }
    text
}

enum Command {
    Build(build::Args),
    Test(test::Args),
    Refresh,
    Deps,
    Fetch,
    Prepare,
    Apply(apply::Args),
    Bench,
    Kernel(kernel::Args),
    Deb(deb::Args),
    SourcePackage(source_package::Args),
    CheckPrefixes,
    Regressions(regressions::Args),
    /// `--help` or no arguments: print this and exit 0.
    Help(String),
}

fn parse(args: &[String]) -> Result<Command> {
    let Some((name, rest)) = args.split_first() else { return Ok(Command::Help(usage())) };
    let name = name.as_str();
    if matches!(name, "-h" | "--help" | "help") {
        return Ok(Command::Help(usage()));
    }
    if !COMMANDS.iter().any(|c| c.0 == name) {
        bail!("unknown command `{name}`\n\n{}", usage());
    }
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help(command_help(name)));
    }
    let mut discard = false;
    let mut exact = false;
    let mut filters = Vec::new();
    let mut kernel = kernel::Args::default();
    let mut regressions = regressions::Args::default();
    let mut deb = deb::Args::default();
    let mut source_package = source_package::Args::default();
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--discard" if matches!(name, "build" | "test" | "apply") => discard = true,
            "--exact" if name == "test" => exact = true,
            "--only" if name == "test" => match rest.next() {
                Some(f) => filters.push(f.clone()),
                None => bail!("--only needs a FILTER\n\n{}", command_help(name)),
            },
            f if name == "test" && !f.starts_with('-') => filters.push(f.to_string()),
            "--jobs" | "-j" if name == "kernel" => kernel.jobs = number(rest.next(), arg, name)?,
            "--boot-timeout" if name == "kernel" => kernel.boot_timeout = number(rest.next(), arg, name)?,
            "--arch" if name == "kernel" => match rest.next().map(|a| (a, kernel::Arch::parse(a))) {
                Some((_, Some(arch))) => kernel.arch = arch,
                Some((other, None)) => {
                    bail!("--arch {other}: not one of {}\n\n{}", kernel::Arch::NAMES, command_help(name))
                }
                None => bail!("--arch needs one of {}\n\n{}", kernel::Arch::NAMES, command_help(name)),
            },
            "--rerun-base" if name == "regressions" => regressions.rerun_base = true,
            "--run-pass" if name == "regressions" => regressions.run_pass = true,
            "--check" if name == "deb" => deb.check = true,
            "--check" if name == "source-package" => source_package.check = true,
            "--build" if name == "source-package" => source_package.build = true,
            "--with-tests" if name == "source-package" => source_package.with_tests = true,
            "--chroot" if name == "source-package" => source_package.chroot = true,
            "--series-tests" if name == "source-package" => source_package.series_tests = true,
            other => bail!("`./x {name}` takes no `{other}`\n\n{}", command_help(name)),
        }
    }
    if source_package.with_tests && !source_package.build {
        bail!("--with-tests is a way to --build\n\n{}", command_help(name));
    }
    Ok(match name {
        "build" => Command::Build(build::Args { discard }),
        "test" => Command::Test(test::Args { discard, exact, filters }),
        "refresh" => Command::Refresh,
        "deps" => Command::Deps,
        "fetch" => Command::Fetch,
        "prepare" => Command::Prepare,
        "apply" => Command::Apply(apply::Args { discard }),
        "bench" => Command::Bench,
        "kernel" => Command::Kernel(kernel),
        "deb" => Command::Deb(deb),
        "source-package" => Command::SourcePackage(source_package),
        "check-prefixes" => Command::CheckPrefixes,
        "regressions" => Command::Regressions(regressions),
        _ => unreachable!("every listed command is matched"),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|command| match command {
        Command::Help(text) => {
            // `./x | head` closes the pipe early: not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            Ok(())
        }
        command => run(command),
    });
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    let ctx = paths::Ctx::new()?;
    match command {
        Command::Build(args) => build::run(&ctx, &args),
        Command::Test(args) => test::run(&ctx, &args),
        Command::Refresh => refresh::run(&ctx),
        Command::Deps => {
            deps::run(&ctx)?;
            deps::install("install the kernel's Debian packages", &kernel::all_packages())
        }
        Command::Fetch => fetch::run(&ctx),
        Command::Prepare => prepare::run(&ctx),
        Command::Apply(args) => apply::run(&ctx, &args),
        Command::Bench => bench(&ctx),
        Command::Kernel(args) => kernel::run(&ctx, &args),
        Command::Deb(args) => deb::run(&ctx, &args),
        Command::SourcePackage(args) => source_package::run(&ctx, &args),
        Command::CheckPrefixes => prefixes::run(&ctx),
        Command::Regressions(args) => regressions::run(&ctx, &args),
        Command::Help(_) => unreachable!("printed by main"),
    }
}

/// The number after an option such as `--jobs`.
fn number<T: std::str::FromStr>(value: Option<&String>, option: &str, command: &str) -> Result<T> {
    match value.and_then(|v| v.parse().ok()) {
        Some(n) => Ok(n),
        None => bail!("{option} needs a number\n\n{}", command_help(command)),
    }
}

/// `./x bench` links the auditor into the driver (feature `bench`, which
/// `./x` turns on for this command only); no other command pays for it.
#[cfg(feature = "bench")]
fn bench(ctx: &paths::Ctx) -> Result<()> {
    bench::run(ctx)
}

#[cfg(not(feature = "bench"))]
fn bench(_ctx: &paths::Ctx) -> Result<()> {
    bail!("this driver was built without the feature `bench`: run `./x bench`, which turns it on")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Result<Command> {
        parse(&line.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn no_arguments_lists_every_command() {
        let Ok(Command::Help(text)) = parsed("") else { panic!("no help") };
        for (name, _, _) in COMMANDS {
            assert!(text.contains(&format!("  {name} ")), "{name} missing from:\n{text}");
        }
    }

    #[test]
    fn test_takes_filters_only_and_exact() {
        let Ok(Command::Test(args)) = parsed("test --discard asm --only e2e::tests::bad_inputs --exact") else {
            panic!("not a test command")
        };
        assert!(args.discard && args.exact);
        assert_eq!(args.filters, ["asm", "e2e::tests::bad_inputs"]);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_usage() {
        for line in ["frobnicate", "build asm", "deps --discard", "test --only", "test --bogus"] {
            let err = parsed(line).err().unwrap_or_else(|| panic!("`{line}` accepted"));
            assert!(format!("{err:#}").contains("Usage: ./x"), "`{line}`: {err:#}");
        }
        assert!(matches!(parsed("apply --help"), Ok(Command::Help(t)) if t.contains("--discard")));
        assert!(parsed("regressions --discard").is_err());
        assert!(matches!(parsed("regressions --rerun-base"), Ok(Command::Regressions(a)) if a.rerun_base));
        assert!(matches!(parsed("regressions --run-pass"), Ok(Command::Regressions(a)) if a.run_pass && !a.rerun_base));
        assert!(matches!(parsed("kernel --arch riscv64"), Ok(Command::Kernel(a)) if a.arch == kernel::Arch::Riscv64));
        assert!(matches!(parsed("kernel"), Ok(Command::Kernel(a)) if a.arch == kernel::Arch::X86_64));
        for line in ["kernel --arch", "kernel --arch aarch64", "build --arch arm64"] {
            assert!(parsed(line).is_err(), "`{line}` accepted");
        }
    }

    #[test]
    fn deb_takes_check_only() {
        assert!(matches!(parsed("deb"), Ok(Command::Deb(a)) if !a.check));
        assert!(matches!(parsed("deb --check"), Ok(Command::Deb(a)) if a.check));
        for line in ["deb --discard", "deb check", "build --check", "deb --check --jobs 2"] {
            let err = parsed(line).err().unwrap_or_else(|| panic!("`{line}` accepted"));
            assert!(format!("{err:#}").contains("Usage: ./x"), "`{line}`: {err:#}");
        }
        assert!(matches!(parsed("deb --help"), Ok(Command::Help(t)) if t.contains("./x deb [--check]")));
    }

    #[test]
    fn source_package_takes_its_own_flags_only() {
        assert!(matches!(parsed("source-package"), Ok(Command::SourcePackage(a)) if !a.check && !a.build && !a.chroot));
        assert!(matches!(parsed("source-package --check"), Ok(Command::SourcePackage(a)) if a.check));
        assert!(matches!(
            parsed("source-package --build --with-tests --chroot"),
            Ok(Command::SourcePackage(a)) if a.build && a.with_tests && a.chroot && !a.check
        ));
        for line in ["source-package --discard", "source-package check", "source-package --arch arm64", "source-package --with-tests"] {
            let err = parsed(line).err().unwrap_or_else(|| panic!("`{line}` accepted"));
            assert!(format!("{err:#}").contains("Usage: ./x source-package"), "`{line}`: {err:#}");
        }
    }
}
