//! `./x bench`: what padding and the toolchain cost, measured side by side
//! in one run, written from scratch to `docs/PERFORMANCE.md` (with the chart
//! `docs/padding-text.svg`). Nothing here asserts a timing.
#![cfg_attr(not(feature = "bench"), allow(dead_code))] // compiled for its unit tests

use crate::build;
use crate::cmd::{self, Step};
use crate::e2e;
use crate::paths::{Ctx, CROSS, HOST};
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// (target, shapes): the kernel's shapes and a plain entry pad.
const SIZE_RUNS: &[(&str, &[Option<&str>])] = &[
    (HOST, &[None, Some("16,16"), Some("5")]),
    (CROSS, &[None, Some("2"), Some("4,2")]),
];
const RUNTIME_SHAPES: &[Option<&str>] = &[None, Some("2"), Some("5"), Some("16,16")];
const COMPILE_RUNS: usize = 3;

struct Size {
    target: &'static str,
    shape: Option<&'static str>,
    functions: usize,
    padded: usize,
    text: u64,
    records: u64,
}

/// Bytes of padding per function: nops are bytes on x86, 4-byte
/// instructions on aarch64.
fn pad_bytes(target: &str, shape: Option<&str>) -> u64 {
    let total: u64 = shape.and_then(|s| s.split(',').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    if target.starts_with("aarch64") {
        4 * total
    } else {
        total
    }
}

fn shape_name(shape: Option<&str>) -> String {
    shape.map_or("no flag".to_string(), |s| format!("`={s}`"))
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let started = Instant::now();
    build::run(ctx, &build::Args::default())?;
    let mut report = String::new();
    let cores = cmd::output(&mut Command::new("nproc"))?.trim().to_string();
    let date = cmd::output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))?.trim().to_string();
    let head = crate::apply::head(&ctx.src())?;
    writeln!(
        report,
        "# Performance\n\nWritten by `./x bench` on {date}, on a machine with {cores} cores, \
         with the series at `{}` (the cached tree's HEAD, as `./x build` makes it from \
         `patches/`); every figure below comes from that one run (rerun `./x bench` to \
         regenerate this page). Ratios are measured side by side in the same run.\n",
        &head[..12]
    )?;

    let step = Step::start("bench: size of library/core");
    let sizes = sizes(ctx)?;
    write_sizes(&mut report, &sizes)?;
    chart(ctx, &sizes)?;
    step.done();

    let step = Step::start("bench: compile time of library/core, interleaved");
    compile_time(ctx, &mut report)?;
    step.done();

    let step = Step::start("bench: run time, callgrind");
    run_time(ctx, &mut report)?;
    step.done();

    toolchain_times(ctx, &mut report)?;
    writeln!(report, "\n`./x bench` itself took {}.", cmd::elapsed(started.elapsed()))?;
    let out = ctx.root.join("docs/PERFORMANCE.md");
    fs::create_dir_all(out.parent().unwrap())?;
    fs::write(&out, report)?;
    println!("./x bench: wrote {} in {}", out.display(), cmd::elapsed(started.elapsed()));
    Ok(())
}

fn sizes(ctx: &Ctx) -> Result<Vec<Size>> {
    let mut out = Vec::new();
    for (target, shapes) in SIZE_RUNS {
        for shape in shapes.iter() {
            let rlib = e2e::core_rlib(ctx, target, *shape)?;
            let (text, records) = section_sizes(&rlib)?;
            let reports = e2e::reports(&rlib)?;
            let functions = reports.iter().map(|r| r.functions.len()).sum();
            let padded = reports.iter().flat_map(|r| &r.functions).filter(|f| f.records > 0).count();
            out.push(Size { target, shape: *shape, functions, padded, text, records });
        }
    }
    Ok(out)
}

/// Total `.text*` and `__patchable_function_entries` bytes of an rlib's objects.
fn section_sizes(rlib: &Path) -> Result<(u64, u64)> {
    let data = fs::read(rlib)?;
    let archive = object::read::archive::ArchiveFile::parse(&*data)?;
    let (mut text, mut records) = (0, 0);
    for member in archive.members() {
        let member = member?;
        let bytes = member.data(&*data)?;
        if !bytes.starts_with(b"\x7fELF") {
            continue;
        }
        let file = object::File::parse(bytes)?;
        for section in file.sections() {
            let name = section.name().unwrap_or("");
            if name.starts_with(".text") {
                text += section.size();
            } else if name == pfe_check::RECORD_SECTION {
                records += section.size();
            }
        }
    }
    Ok((text, records))
}

fn write_sizes(report: &mut String, sizes: &[Size]) -> Result<()> {
    writeln!(
        report,
        "## Size: `library/core`\n\n`library/core` of the pinned tree, compiled with `rustc +pfe \
         --crate-type=rlib --crate-name=core --edition=2021 -O [--target aarch64-unknown-linux-gnu] \
         [-Zpatchable-function-entry=…] library/core/src/lib.rs`; sizes summed over the rlib's \
         objects. A pad is the nops of one function (bytes on x86, 4-byte instructions on aarch64); \
         a record is 8 bytes. Both ratios have 1.00 as their physical limit.\n"
    )?;
    writeln!(
        report,
        "| target | flag | functions | padded | `.text` | Δ`.text` | record bytes | Δ`.text` ÷ (pad × padded) | records ÷ (8 × padded) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for s in sizes {
        let base = sizes.iter().find(|b| b.target == s.target && b.shape.is_none()).context("no baseline")?;
        let delta = s.text as i64 - base.text as i64;
        let pad = pad_bytes(s.target, s.shape);
        let ideal = pad * s.padded as u64;
        let text_ratio = if ideal > 0 { format!("{:.2}", delta as f64 / ideal as f64) } else { "–".into() };
        let record_ratio =
            if s.padded > 0 { format!("{:.2}", s.records as f64 / (8 * s.padded) as f64) } else { "–".into() };
        writeln!(
            report,
            "| {} | {} | {} | {} | {} | {:+} | {} | {} | {} |",
            s.target,
            shape_name(s.shape),
            s.functions,
            s.padded,
            s.text,
            delta,
            s.records,
            text_ratio,
            record_ratio
        )?;
    }
    writeln!(
        report,
        "\nΔ`.text` can differ from the pad bytes because functions are aligned (16 bytes on \
         x86_64, 4 on aarch64): prefix nops sit before the aligned symbol and may fill, or \
         add, alignment padding. The chart `padding-text.svg` plots Δ`.text` against the pad \
         bytes per function, with pad × padded functions as the reference line.\n\n\
         ![Δ.text against the pad](padding-text.svg)\n"
    )?;
    Ok(())
}

/// `docs/padding-text.svg`: Δ`.text` against the pad bytes per function, per
/// target, with pad × padded functions as the reference line. Plain SVG
/// written by hand: a charting crate would cost every fresh clone's driver
/// build more than this one picture is worth.
fn chart(ctx: &Ctx, sizes: &[Size]) -> Result<()> {
    let path = ctx.root.join("docs/padding-text.svg");
    fs::create_dir_all(path.parent().unwrap())?;
    fs::write(&path, chart_svg(sizes))?;
    Ok(())
}

fn chart_svg(sizes: &[Size]) -> String {
    // (pad bytes, measured Δ.text KiB, reference KiB) per target, by pad.
    let points = |target: &str| -> Vec<(f64, f64, f64)> {
        let base = sizes.iter().find(|b| b.target == target && b.shape.is_none()).map_or(0, |b| b.text);
        let mut v: Vec<_> = sizes
            .iter()
            .filter(|s| s.target == target)
            .map(|s| {
                let pad = pad_bytes(target, s.shape) as f64;
                (pad, (s.text as f64 - base as f64) / 1024.0, pad * s.padded as f64 / 1024.0)
            })
            .collect();
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        v
    };
    let series = [(HOST, "#1f4fd1"), (CROSS, "#d1261f")];
    let max_y = series.iter().flat_map(|(t, _)| points(t)).map(|p| p.1.max(p.2)).fold(1.0, f64::max) * 1.1;
    let (width, height) = (720.0, 420.0);
    let (left, right, top, bottom) = (72.0, 16.0, 44.0, 52.0);
    let x = |v: f64| left + v / 17.0 * (width - left - right);
    let y = |v: f64| height - bottom - v / max_y * (height - top - bottom);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" font-size=\"17\" text-anchor=\"middle\">library/core: Δ.text against pad bytes per function</text>",
        width / 2.0
    );
    // Axes, ticks and grid: x every 2 pad bytes, y in 6 steps.
    let _ = writeln!(
        svg,
        "<path d=\"M{:.1},{:.1}V{:.1}H{:.1}\" stroke=\"black\" fill=\"none\"/>",
        x(0.0),
        y(max_y),
        y(0.0),
        x(17.0)
    );
    for i in (0..=16).step_by(2) {
        let v = i as f64;
        let _ = writeln!(
            svg,
            "<path d=\"M{0:.1},{1:.1}V{2:.1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{i}</text>",
            x(v),
            y(0.0),
            y(max_y),
            y(0.0) + 16.0
        );
    }
    for i in 0..=6 {
        let v = max_y * i as f64 / 6.0;
        let _ = writeln!(
            svg,
            "<path d=\"M{0:.1},{1:.1}H{2:.1}\" stroke=\"#ddd\"/><text x=\"{3:.1}\" y=\"{4:.1}\" text-anchor=\"end\">{v:.0}</text>",
            x(0.0),
            y(v),
            x(17.0),
            x(0.0) - 6.0,
            y(v) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">pad bytes per function</text>\n\
         <text transform=\"translate(18,{:.1}) rotate(-90)\" text-anchor=\"middle\">Δ.text (KiB)</text>",
        (x(0.0) + x(17.0)) / 2.0,
        height - 12.0,
        (y(0.0) + y(max_y)) / 2.0
    );
    let polyline = |pts: &[(f64, f64)], color: &str, opacity: f64| {
        let coords: Vec<String> = pts.iter().map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b))).collect();
        format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-opacity=\"{opacity}\" stroke-width=\"1.5\"/>",
            coords.join(" ")
        )
    };
    let mut legend = Vec::new();
    for (target, color) in series {
        let pts = points(target);
        let measured: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
        let reference: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.2)).collect();
        let _ = writeln!(svg, "{}", polyline(&measured, color, 1.0));
        for (a, b) in &measured {
            let _ = writeln!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/>", x(*a), y(*b));
        }
        let _ = writeln!(svg, "{}", polyline(&reference, color, 0.35));
        legend.push((format!("{target}: measured"), color, 1.0));
        legend.push((format!("{target}: pad × padded functions"), color, 0.35));
    }
    let (lx, ly) = (x(0.0) + 12.0, y(max_y) + 8.0);
    let _ = writeln!(
        svg,
        "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"300\" height=\"{}\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"black\"/>",
        8.0 + 18.0 * legend.len() as f64
    );
    for (i, (label, color, opacity)) in legend.iter().enumerate() {
        let row = ly + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            svg,
            "<path d=\"M{:.1},{row:.1}h16\" stroke=\"{color}\" stroke-opacity=\"{opacity}\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            lx + 8.0,
            lx + 30.0,
            row + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn compile_time(ctx: &Ctx, report: &mut String) -> Result<()> {
    let dir = ctx.cache.join("bench");
    fs::create_dir_all(&dir)?;
    let mut off = Vec::new();
    let mut on = Vec::new();
    for run in 0..COMPILE_RUNS {
        // Alternate which goes first (off/on, on/off, …), so that an effect of
        // running first or second does not pass for an effect of the flag.
        let order = if run % 2 == 0 { [false, true] } else { [true, false] };
        for padded in order {
            let shape = if padded { Some("16,16") } else { None };
            let mut cmd = e2e::core_command(ctx, HOST, shape, &dir.join(format!("core-{run}-{padded}.rlib")));
            let t = Instant::now();
            cmd::output(&mut cmd)?;
            let secs = t.elapsed().as_secs_f64();
            println!("    run {} {}: {secs:.1}s", run + 1, if padded { "=16,16" } else { "no flag" });
            if padded { on.push(secs) } else { off.push(secs) }
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (off_min, off_med, off_max) = stats(&mut off);
    let (on_min, on_med, on_max) = stats(&mut on);
    let spread = ((off_max / off_min).max(on_max / on_min) - 1.0) * 100.0;
    writeln!(
        report,
        "## Compile time: `library/core` for x86_64\n\nThe same `core` build as above, without the \
         flag and with `-Zpatchable-function-entry=16,16`, interleaved with the order \
         alternating (off, on, on, off, off, on), {COMPILE_RUNS} runs each, wall time.\n\n| | min | median | max |\n|---|---:|---:|---:|\n\
         | no flag | {off_min:.1} s | {off_med:.1} s | {off_max:.1} s |\n\
         | `=16,16` | {on_min:.1} s | {on_med:.1} s | {on_max:.1} s |\n\
         | on ÷ off | {:.3} | {:.3} | {:.3} |\n\n\
         Runs of the same setting differ by up to {spread:.0}% here, so differences between \
         the settings smaller than that are this machine's noise: the flag adds two string \
         attributes per function and LLVM emits a few nops, which costs no measurable time.\n",
        on_min / off_min,
        on_med / off_med,
        on_max / off_max
    )?;
    Ok(())
}

/// Total instructions from a callgrind run's stderr (`Collected : N`).
fn callgrind(exe: &Path, out: &Path) -> Result<(u64, u64)> {
    let result = Command::new("valgrind")
        .args(["--tool=callgrind"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .output()
        .context("running valgrind")?;
    if !result.status.success() {
        bail!("callgrind of {} failed:\n{}", exe.display(), String::from_utf8_lossy(&result.stderr));
    }
    let stderr = String::from_utf8_lossy(&result.stderr);
    let ir = stderr
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .context("no `Collected :` in callgrind's output")?;
    let stdout = String::from_utf8_lossy(&result.stdout);
    let calls = stdout
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("calls="))
        .and_then(|n| n.parse().ok())
        .context("the benchmark printed no calls=")?;
    Ok((ir, calls))
}

/// Cycles from `perf stat`, where the machine supports it.
fn perf_cycles(exe: &Path) -> Option<u64> {
    let out = Command::new("perf").args(["stat", "-x,", "-e", "cycles"]).arg(exe).output().ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("cycles"))?;
    line.split(',').next()?.trim().parse().ok()
}

fn run_time(ctx: &Ctx, report: &mut String) -> Result<()> {
    let dir = ctx.cache.join("bench");
    fs::create_dir_all(&dir)?;
    let perf = perf_cycles(Path::new("/bin/true")).is_some();
    let mut rows = Vec::new();
    for shape in RUNTIME_SHAPES {
        let tag = shape.unwrap_or("none").replace(',', "_");
        let rust = dir.join(format!("tree-rust-{tag}"));
        let mut rc = e2e::rustc(ctx);
        rc.args(["-O", "-o"]).arg(&rust);
        if let Some(s) = shape {
            rc.arg(format!("-Zpatchable-function-entry={s}"));
        }
        cmd::output(rc.arg(ctx.root.join("benches/tree.rs")))?;
        let c = dir.join(format!("tree-c-{tag}"));
        let mut cc = Command::new("clang-14");
        cc.args(["-O2", "-o"]).arg(&c);
        if let Some(s) = shape {
            cc.arg(format!("-fpatchable-function-entry={s}"));
        }
        cmd::output(cc.arg(ctx.root.join("benches/tree.c")))?;
        for (lang, exe) in [("Rust", &rust), ("C (clang-14)", &c)] {
            let (ir, calls) = callgrind(exe, &dir.join(format!("callgrind-{tag}-{}", lang.len())))?;
            let cycles = if perf { perf_cycles(exe) } else { None };
            println!("    {lang} {}: {ir} instructions, {calls} calls", shape_name(*shape));
            rows.push((lang, *shape, ir, calls, cycles));
        }
    }
    writeln!(
        report,
        "## Run time: a call-heavy walk (x86_64)\n\n`benches/tree.rs` and `benches/tree.c` walk a \
         complete binary tree of depth 20 four times, one non-inlined call per node; built with \
         `rustc +pfe -O` and `clang-14 -O2` with the same padding. Instructions come from \
         `valgrind --tool=callgrind` (deterministic); entry nops are executed, prefix nops are \
         not.{}\n",
        if perf { " Cycles from `perf stat -e cycles`, one run each." } else { " `perf stat` cannot count cycles on this machine, so there are no cycle figures." }
    )?;
    writeln!(report, "| program | flag | instructions | calls | instructions/call | extra per call | ratio to no flag |{}\n|---|---|---:|---:|---:|---:|---:|{}", if perf { " cycles | ratio |" } else { "" }, if perf { "---:|---:|" } else { "" })?;
    for (lang, shape, ir, calls, cycles) in &rows {
        let base = rows.iter().find(|r| r.0 == *lang && r.1.is_none()).context("no baseline")?;
        let per_call = *ir as f64 / *calls as f64;
        let base_per_call = base.2 as f64 / base.3 as f64;
        let mut line = format!(
            "| {lang} | {} | {ir} | {calls} | {per_call:.3} | {:+.3} | {:.3} |",
            shape_name(*shape),
            per_call - base_per_call,
            per_call / base_per_call
        );
        if perf {
            match (cycles, base.4) {
                (Some(c), Some(b)) => line.push_str(&format!(" {c} | {:.3} |", *c as f64 / b as f64)),
                _ => line.push_str(" – | – |"),
            }
        }
        writeln!(report, "{line}")?;
    }
    writeln!(
        report,
        "\nThe physical limit: an entry pad adds the nop instructions executed at every \
         call (LLVM emits `=2` and `=5` as one multi-byte nop on x86: exactly +1 instruction \
         per call), and a prefix-only pad (`=16,16`) adds none: the nops before the symbol \
         are never executed.\n"
    )?;
    Ok(())
}

/// The driver's own records (`state/times`): every compile it ran and every
/// `./x test`.
fn toolchain_times(ctx: &Ctx, report: &mut String) -> Result<()> {
    let text = fs::read_to_string(ctx.state().join("times")).unwrap_or_default();
    writeln!(
        report,
        "## The toolchain\n\nFrom the timestamps the driver records in \
         `$RUSTC_PFE_HOME/state/times` on this machine: every `x.py build` it ran, with the \
         number of crates cargo compiled (a cold build from an empty cache compiled 323 and \
         took 27m51s on these machines; a rebuild after a change in `rustc_codegen_llvm` and \
         `rustc_llvm` only, 57), and every full `./x test` (a warm one builds nothing: the \
         build step skips itself).\n\n\
         | when (UTC) | what | crates compiled | wall |\n|---|---|---:|---:|"
    )?;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let when = f.first().and_then(|t| t.parse::<i64>().ok()).map(|t| {
            cmd::output(Command::new("date").args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%d %H:%M"]))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        });
        let when = when.unwrap_or_default();
        match f.as_slice() {
            [_, "compile", crates, secs] => writeln!(
                report,
                "| {when} | `x.py build` (in `./x build`) | {crates} | {} |",
                cmd::elapsed(std::time::Duration::from_secs(secs.parse().unwrap_or(0)))
            )?,
            [_, what @ "test", secs] => writeln!(
                report,
                "| {when} | `./x {what}` | | {} |",
                cmd::elapsed(std::time::Duration::from_secs(secs.parse().unwrap_or(0)))
            )?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures of a real run (docs/PERFORMANCE.md of 2026-11).
    fn sizes() -> Vec<Size> {
        let s = |target: &'static str, shape: Option<&'static str>, padded: usize, text: u64| Size { target, shape, functions: padded.max(905), padded, text, records: 8 * padded as u64 };
        vec![
            s(HOST, None, 0, 176677),
            s(HOST, Some("16,16"), 905, 191157),
            s(HOST, Some("5"), 905, 181538),
            s(CROSS, None, 0, 204252),
            s(CROSS, Some("2"), 1020, 212412),
            s(CROSS, Some("4,2"), 1020, 220572),
        ]
    }

    #[test]
    fn chart_has_both_targets_measured_and_reference() {
        let svg = chart_svg(&sizes());
        if let Some(out) = std::env::var_os("XTASK_CHART_OUT") {
            fs::write(out, &svg).unwrap();
        }
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline ").count(), 4, "measured and reference, per target");
        assert_eq!(svg.matches("<circle ").count(), 6, "one point per measured size");
        assert!(svg.contains("aarch64-unknown-linux-gnu: pad × padded functions"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
