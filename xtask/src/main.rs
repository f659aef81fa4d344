//! The rustc-pfe driver: turns the patch series in `patches/` into a built,
//! tested rustc 1.63 (the rustup toolchain `pfe`). `./x` with no arguments
//! lists the commands; every step skips itself when its output is current.

mod apply;
mod bench;
mod build;
mod cmd;
mod deps;
mod e2e;
mod fetch;
mod kernel;
mod paths;
mod prepare;
mod refresh;
mod series;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Build and test rustc 1.63 with patchable function entries.
#[derive(Parser)]
#[command(name = "x", bin_name = "./x", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install, fetch, prepare, apply the series, build stage1 and link the
    /// rustup toolchain `pfe`.
    Build(build::Args),
    /// Build what is missing, then run every test; ends with `N passed, N failed`.
    Test(test::Args),
    /// Export the commits after the base in the cached tree to `patches/`.
    Refresh,
    /// Only install the Debian packages the build needs.
    Deps,
    /// Only download the pinned source package and verify its SHA-256 sums.
    Fetch,
    /// Only unpack and prepare the base tree as `debian/rules` does.
    Prepare,
    /// Only apply `patches/series` to the cached tree.
    Apply(apply::Args),
    /// Measure what padding and the toolchain cost; rewrites docs/PERFORMANCE.md.
    Bench,
    /// Build Debian's Linux 6.1 with the toolchain (=16,16, 16-aligned), audit
    /// its Rust objects with pfe-check, boot it in qemu until the Rust sample prints.
    Kernel(kernel::Args),
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let ctx = paths::Ctx::new()?;
    match cli.command {
        Command::Build(args) => build::run(&ctx, &args),
        Command::Test(args) => test::run(&ctx, &args),
        Command::Refresh => refresh::run(&ctx),
        Command::Deps => deps::run(&ctx),
        Command::Fetch => fetch::run(&ctx),
        Command::Prepare => prepare::run(&ctx),
        Command::Apply(args) => apply::run(&ctx, &args),
        Command::Bench => bench::run(&ctx),
        Command::Kernel(args) => kernel::run(&ctx, &args),
    }
}
