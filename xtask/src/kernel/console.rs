//! The console of an ftrace boot, checked line by line against the audit
//! (`check_ftrace`); tested on real consoles in `kernel/testdata/`.

use super::audit::Symbol;
use super::{NOTRACE, SAMPLE_LINES};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// What the console of an oops, a WARN, a panic or ftrace giving up has
/// (arm64 prints `Call trace:`, x86 `Call Trace:`).
const OOPS_MARKS: &[&str] = &[
    "Oops",
    "Internal error:",
    "Unable to handle kernel",
    "Kernel panic",
    "BUG:",
    "WARNING:",
    "Call trace:",
    "Call Trace:",
    "kernel BUG",
    "ftrace bug",
    "ftrace failed",
];

pub fn has_oops(text: &str) -> bool {
    OOPS_MARKS.iter().any(|m| text.contains(m))
}

/// What the console of one ftrace boot must show.
pub struct Expected<'a> {
    pub padded: bool,
    /// The boot had the live patch of Rust functions (`Boot::Ftrace`).
    pub livepatch: bool,
    /// Rust functions with a record: built into vmlinux, in the module.
    pub built_in: &'a [String],
    pub module: &'a [String],
    /// Every function of the rustc-built objects.
    pub all: &'a [String],
    pub init_text: &'a [String],
    pub weak: &'a [String],
    pub module_text: &'a [Symbol],
}

/// The module function at `address`, given where its `.text` was.
fn symbolize<'a>(address: u64, base: u64, text: &'a [Symbol]) -> Option<&'a str> {
    let offset = address.checked_sub(base)?;
    text.iter().find(|s| s.value <= offset && offset < s.value + s.size.max(1)).map(|s| s.name.as_str())
}

/// The `0x...` addresses on a trace line.
fn addresses(line: &str) -> Vec<u64> {
    line.match_indices("0x")
        .filter_map(|(i, _)| {
            let hex: String = line[i + 2..].chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).ok()
        })
        .collect()
}

/// How often each name occurs.
fn counts<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut map = BTreeMap::new();
    for name in names {
        *map.entry(name).or_insert(0) += 1;
    }
    map
}

/// The value after `key ` on the console's line that starts with it.
fn value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines().filter_map(|l| l.trim_end().strip_prefix(key)).filter_map(|r| r.strip_prefix(' ')).collect()
}

/// What rust_ftrace_test.c's `run` prints where the redirection took, and
/// where ftrace refused it (no entry), and of the notrace function.
const REDIRECTED: &str =
    "redirect: rust_ftrace_target(6, 7) = 6007 before, 1000042 redirected, 6007 after; replacement(6, 7) = 1000042";
const REFUSED: &str = "redirect: rust_ftrace_target(6, 7) = 6007; ftrace_set_filter_ip refused it: -22";
const NOTRACE_REFUSED: &str = "notrace: rust_ftrace_notrace(6, 7) = 13; ftrace_set_filter_ip: -22";
/// While the live patch owns `rust_ftrace_target`, the test's own IPMODIFY
/// redirection of it is refused: one IPMODIFY user per function (-EBUSY).
const REDIRECT_BUSY: &str = "redirect: register_ftrace_function: -16";
/// What `call` prints: the Rust function's result, then the replacement's
/// (`a * b + 2000000`, logged by the live patch with its arguments).
const CALL_RUST: &str = "rust_ftrace_test: call: rust_ftrace_target(6, 7) = 6007";
const CALL_PATCHED: &str = "rust_ftrace_test: call: rust_ftrace_target(6, 7) = 2000042";
const REPLACED: &str = "livepatch_rust_ftrace: rust_ftrace_target(6, 7) replaced: 2000042";

/// The lines from the first that starts with `from` (after it) to the next
/// that starts with `to` (before it), or to the end.
fn section<'a>(lines: &[&'a str], from: &str, to: Option<&str>) -> Vec<&'a str> {
    let Some(start) = lines.iter().position(|l| l.starts_with(from)) else { return Vec::new() };
    let rest = &lines[start + 1..];
    let end = to.and_then(|to| rest.iter().position(|l| l.starts_with(to))).unwrap_or(rest.len());
    rest[..end].to_vec()
}

/// The x86_64 steps of the init (the live patch of Rust functions in the
/// initramfs): the trigger traced by a tracer switched on after boot, 20
/// on/off cycles of the tracers, and the kernel's livepatch replacing Rust
/// functions, with a task parked inside one. Returns the failures and the
/// evidence. The kernel's own messages (`call:`, `replaced:`) print while
/// the init's write runs, so they come before the init's next line; klp's
/// "patching complete" comes from a worker and may land anywhere, so only
/// its count is checked.
fn check_livepatch(text: &str, padded: bool) -> (Vec<String>, Vec<String>) {
    let mut failed = Vec::new();
    let mut evidence = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let count = |lines: &[&str], needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    let number = |key: &str| -> Vec<i64> { value(text, key).iter().filter_map(|v| v.trim().parse().ok()).collect() };
    let replaced = count(&lines, REPLACED);
    let park = value(text, "PFE-PARK 1");
    let release = value(text, "PFE-PARK 0");
    expect(park == ["0"] && release == ["0"], format!("parking a task in rust_ftrace_park gave {park:?}, releasing it {release:?}, not 0"));
    expect(count(&lines, "park: asleep in rust_ftrace_park") == 1, "no task asleep in rust_ftrace_park".into());
    expect(count(&lines, "park: left rust_ftrace_park, which returned 42") == 1, "the parked task did not leave rust_ftrace_park".into());
    // Only the init could force a transition (`force` in sysfs), and klp
    // says so when it happens.
    expect(!lines.iter().any(|l| l.starts_with("livepatch") && l.contains("forc")), "a livepatch transition was forced".into());
    if !padded {
        expect(value(text, "PFE-RUN-FILTER") == ["-22"], "set_ftrace_filter took rust_ftrace_* without the entry".into());
        expect(count(&lines, "PFE-RUN-SKIPPED") == 1 && count(&lines, "PFE-CYCLE") == 0, "the control traced the trigger or cycled the tracers".into());
        let loads = value(text, "PFE-KLP-LOAD");
        expect(loads == ["target-only -22", "both -22"], format!("the live patch loaded as {loads:?}, not refused (-22) twice"));
        expect(replaced == 0 && count(&lines, CALL_PATCHED) == 0, "a call reached the replacement without the entry".into());
        expect(count(&lines, "failed to find location for function 'rust_ftrace_target'") == 2, "klp did not say why it refused".into());
        evidence.push("livepatch of rust_ftrace_target: refused (-22) both times, klp: failed to find location for function 'rust_ftrace_target'; trigger untraced (filter -22)".into());
        return (failed, evidence);
    }

    // The trigger, traced by the function tracer switched on through tracefs.
    for key in ["PFE-RUN-FILTER", "PFE-RUN-TRACER", "PFE-RUN-RUN"] {
        expect(value(text, key) == ["0"], format!("{key} is {:?}, not 0", value(text, key)));
    }
    let run_traced = number("PFE-RUN-TRACED rust_ftrace_target");
    let run_trace: Vec<&str> = value(text, "PFE-RUN-TRACE");
    let target_lines = run_trace.iter().filter(|l| l.contains("rust_ftrace_target <-")).count();
    expect(run_traced.len() == 1 && run_traced[0] > 0 && target_lines > 0, format!("the trigger's rust_ftrace_target was traced {run_traced:?} times"));
    // 20 cycles, function and function_graph in turn, each calling once.
    let cycles: Vec<&str> = value(text, "PFE-CYCLE");
    let good = cycles.iter().filter(|c| c.contains(" on 0 off 0 traced ") && !c.ends_with(" traced 0")).count();
    let cycle_calls = section(&lines, "PFE-RUN-TRACED", Some("PFE-CYCLES"));
    expect(cycles.len() == 20 && good == 20, format!("{good} of {} tracer cycles switched on and off and traced the call", cycles.len()));
    expect(value(text, "PFE-CYCLES") == ["20 of 20"], format!("PFE-CYCLES {:?}", value(text, "PFE-CYCLES")));
    expect(count(&cycle_calls, CALL_RUST) == 20, format!("{} of the 20 cycles' calls returned 6007", count(&cycle_calls, CALL_RUST)));

    // The live patch of rust_ftrace_target alone, with a task asleep in
    // another Rust function: the transition completes at once.
    let loads = value(text, "PFE-KLP-LOAD");
    expect(loads == ["target-only 0", "both 0"], format!("the live patch loaded as {loads:?}, not 0 twice"));
    expect(value(text, "PFE-KLP-ENABLED") == ["1", "1"], "the live patch's `enabled` is not 1 after loading".into());
    let target_only = number("PFE-KLP-TRANSITION-MS target-only");
    expect(target_only.len() == 1 && target_only[0] >= 0, format!("the transition of rust_ftrace_target's patch did not complete: {target_only:?}"));
    let patched = section(&lines, "PFE-KLP-LOAD target-only", Some("PFE-KLP-DISABLE target-only"));
    expect(count(&patched, CALL_PATCHED) == 1 && count(&patched, REPLACED) == 1, "the call under the first live patch did not reach the replacement with (6, 7)".into());
    let after = section(&lines, "PFE-KLP-DISABLE target-only", Some("PFE-KLP-LOAD both"));
    expect(count(&after, REPLACED) == 0 && count(&after, CALL_RUST) == 1, "a call reached the replacement after enabled=0, or the Rust function was not called".into());
    // Both functions: the transition waits while the task sleeps in
    // rust_ftrace_park, and completes once it leaves.
    let waiting = number("PFE-KLP-TRANSITION-MS while-parked");
    let still = number("PFE-KLP-TRANSITION while-parked");
    let released = number("PFE-KLP-TRANSITION-MS after-release");
    expect(waiting == [-1] && still == [1], format!("the transition did not wait while the task was parked: {waiting:?} ms, transition {still:?}"));
    expect(released.len() == 1 && released[0] >= 0, format!("the transition did not complete after the release: {released:?}"));
    let both = section(&lines, "PFE-KLP-TRANSITION-MS after-release", Some("PFE-KLP-DISABLE both"));
    expect(count(&both, REDIRECT_BUSY) == 1, format!("`run` under the live patch did not report `{REDIRECT_BUSY}`"));
    expect(count(&both, CALL_PATCHED) == 1 && count(&both, REPLACED) == 2, "`run` and `call` under the second live patch did not reach the replacement".into());
    let end = section(&lines, "PFE-KLP-DISABLE both", None);
    expect(count(&end, REPLACED) == 0 && count(&end, REDIRECTED) == 1 && count(&end, CALL_RUST) == 1, "after enabled=0 the calls did not reach the Rust function again".into());
    expect(value(text, "PFE-KLP-RUN") == ["0", "0"] && value(text, "PFE-KLP-CALL") == ["0", "0", "0", "0"], "a write to the test's `run` or `call` failed under the live patch".into());
    expect(value(text, "PFE-KLP-DISABLE-RESULT") == ["0", "0"], "disabling the live patch failed".into());
    expect(value(text, "PFE-KLP-UNLOAD") == ["0", "0"], format!("unloading the live patch gave {:?}, not 0 twice", value(text, "PFE-KLP-UNLOAD")));
    let complete = count(&lines, "': patching complete");
    let uncomplete = count(&lines, "': unpatching complete");
    expect(complete == 2 && uncomplete == 2, format!("klp said `patching complete` {complete} and `unpatching complete` {uncomplete} times, not twice each"));
    evidence.push(format!(
        "trigger traced after boot: rust_ftrace_target {} time(s); tracer cycles {}",
        run_traced.first().copied().unwrap_or(0),
        value(text, "PFE-CYCLES").first().copied().unwrap_or("none")
    ));
    evidence.push(format!(
        "livepatch, a task parked in rust_ftrace_park: rust_ftrace_target alone patched in {} ms; both: still in transition after 3 s, complete {} ms after the release; no force; {replaced} calls reached the replacement, none after enabled=0; unloaded",
        target_only.first().copied().unwrap_or(-1),
        released.first().copied().unwrap_or(-1),
    ));
    for line in [CALL_PATCHED, REDIRECT_BUSY] {
        if let Some(l) = lines.iter().find(|l| l.contains(line)) {
            evidence.push(format!("  | {}", l.trim()));
        }
    }
    (failed, evidence)
}

/// Checks one ftrace boot's console line by line; returns the evidence
/// (counts and real excerpts) or every check that failed.
pub fn check_ftrace(text: &str, want: &Expected) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    let mut evidence = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };
    expect(text.contains("PFE-INIT done"), "the init did not finish (no `PFE-INIT done`)".into());
    let oopses: Vec<&str> = text.lines().filter(|l| OOPS_MARKS.iter().any(|m| l.contains(m))).collect();
    expect(oopses.is_empty(), format!("the kernel oopsed or warned: {}", oopses.join(" | ")));
    expect(value(text, "PFE-MOUNT tracefs") == ["0"], "tracefs did not mount".into());

    // available_filter_functions after boot, against the records.
    let listed: Vec<&str> = value(text, "PFE-AFF").into_iter().collect();
    let listed_counts = counts(listed.iter().copied());
    let rust_names = counts(want.all.iter().map(String::as_str));
    let listed_rust: usize = listed_counts.iter().filter(|(n, _)| rust_names.contains_key(*n)).map(|(_, c)| c).sum();
    expect(!listed.is_empty(), "no available_filter_functions lines".into());
    expect(!listed.contains(&NOTRACE), format!("{NOTRACE} is listed by ftrace"));
    if want.padded {
        let records = counts(want.built_in.iter().map(String::as_str));
        let deficit = |name: &str, n: usize| listed_counts.get(name).copied().unwrap_or(0) < n;
        let mut freed = Vec::new();
        let mut replaced = Vec::new();
        let mut missing = Vec::new();
        for (name, n) in &records {
            if !deficit(name, *n) {
                continue;
            }
            if want.init_text.iter().any(|i| i == name) {
                freed.push(name.to_string());
            } else if want.weak.iter().any(|w| w == name) {
                replaced.push(name.to_string());
            } else {
                missing.push(name.to_string());
            }
        }
        expect(
            missing.is_empty(),
            format!("{} of the {} Rust functions with a record are not listed, e.g. {}", missing.len(), want.built_in.len(), missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")),
        );
        let mut but = Vec::new();
        if !replaced.is_empty() {
            but.push(format!(
                "{} weak ones the arch replaces with its own ({}), which ftrace lists under the name of the function before them",
                replaced.len(),
                replaced.join(", ")
            ));
        }
        if !freed.is_empty() {
            but.push(format!("{} freed with .init.text", freed.len()));
        }
        let but = if but.is_empty() { String::new() } else { format!(" but {}", but.join(", and ")) };
        evidence.push(format!(
            "available_filter_functions: {listed_rust} of its {} lines name Rust functions; the {} records in the built-in Rust objects are all listed by their function's name{but}",
            listed.len(),
            want.built_in.len(),
        ));
    } else {
        expect(listed_rust == 0, format!("{listed_rust} Rust functions are listed without the padding"));
        evidence.push(format!("available_filter_functions: 0 Rust functions of {} lines (control)", listed.len()));
    }

    // The sample module: loaded and unloaded twice (function, function_graph).
    let loads = value(text, "PFE-MODULE-LOAD");
    let unloads = value(text, "PFE-MODULE-UNLOAD");
    expect(loads == ["0", "0"] && unloads == ["0", "0"], format!("module loads {loads:?}, unloads {unloads:?}, not 0 twice"));
    for line in SAMPLE_LINES {
        let n = text.lines().filter(|l| l.contains(line)).count();
        expect(n == 2, format!("`{line}` printed {n} times, not twice"));
    }
    let module_listed: Vec<&str> =
        value(text, "PFE-AFF-MODULE").into_iter().filter_map(|l| l.strip_suffix(" [rust_minimal]")).collect();
    if want.padded {
        // init_module is in .init.text: freed, and unlisted, once it has run.
        let module_records = counts(want.module.iter().map(String::as_str).filter(|n| !want.init_text.iter().any(|i| i == n)));
        let module_counts = counts(module_listed.iter().copied());
        expect(
            !want.module.is_empty() && module_records == module_counts,
            format!("the module's listed functions {module_counts:?} are not its records {module_records:?}"),
        );
        evidence.push(format!(
            "module rust_minimal: {} functions listed after loading: its {} records but init_module (.init.text, freed)",
            module_listed.len(),
            want.module.len()
        ));
    } else {
        expect(module_listed.is_empty(), format!("{} module functions listed without the padding", module_listed.len()));
    }

    // The tracers: while the module is loaded its functions have names;
    // after unloading (its Drop) they are addresses in its former .text.
    let traced = |tag: &str| -> Vec<&str> { value(text, &format!("PFE-TRACE {tag}")) };
    let (function, function_unload) = (traced("function"), traced("function-unload"));
    let (graph, graph_unload) = (traced("graph"), traced("graph-unload"));
    let bases: Vec<u64> = value(text, "PFE-MODULE-TEXT").iter().filter_map(|v| addresses(v).first().copied()).collect();
    let dropped = |lines: &[&str], base: Option<&u64>| -> Vec<String> {
        let Some(base) = base else { return Vec::new() };
        let mut names: Vec<String> = lines
            .iter()
            .flat_map(|l| addresses(l))
            .filter_map(|a| symbolize(a, *base, want.module_text))
            .filter(|n| n.contains("11RustMinimal") && n.ends_with("4Drop4drop"))
            .map(str::to_string)
            .collect();
        names.dedup();
        names
    };
    let filter = value(text, "PFE-FILTER-RUST-RESULT");
    if want.padded {
        expect(filter == ["0", "0"], format!("set_ftrace_filter `_R*` gave {filter:?}, not 0 twice"));
        expect(bases.len() == 2, format!("the module's .text was found {} times, not twice", bases.len()));
        let init = |lines: &[&str]| lines.iter().filter(|l| l.contains("12rust_minimal") && l.contains("6Module4init")).count();
        let kernel_crate = function.iter().filter(|l| l.contains("6kernel")).count();
        let drop_fn = dropped(&function_unload, bases.first());
        expect(init(&function) > 0, "the function tracer shows no call of the module's init".into());
        expect(kernel_crate > 0, "the function tracer shows no call of the kernel crate".into());
        expect(!drop_fn.is_empty(), "the function tracer shows no call of the module's Drop at unloading".into());
        let entries = graph.iter().filter(|l| l.trim_end().ends_with(") {") && l.contains("_R")).count();
        let returns = graph.iter().filter(|l| l.contains("} /* _R")).count();
        let leaves = graph.iter().filter(|l| l.trim_end().ends_with(");") && l.contains("_R")).count();
        let graph_init = graph.iter().filter(|l| l.contains("6Module4init") && l.trim_end().ends_with(") {")).count();
        let graph_init_ret = graph.iter().filter(|l| l.contains("} /* ") && l.contains("6Module4init")).count();
        let graph_drop = dropped(&graph_unload, bases.get(1));
        expect(entries > 0 && returns == entries, format!("function_graph: {entries} Rust entries, {returns} returns"));
        expect(graph_init > 0 && graph_init_ret == graph_init, format!("function_graph: the module's init entered {graph_init}, returned {graph_init_ret} times"));
        expect(!graph_drop.is_empty(), "function_graph shows no call of the module's Drop at unloading".into());
        evidence.push(format!(
            "function tracer: {} Rust calls while loading (module init {}, kernel crate {kernel_crate}), {} while unloading, {} named by the module's symbols as {}",
            function.len(),
            init(&function),
            function_unload.len(),
            drop_fn.len(),
            drop_fn.join(", ")
        ));
        evidence.push(format!(
            "function_graph: {entries} Rust entries, each with its return, {leaves} leaf calls; module init entered and returned {graph_init} time(s); Drop at unloading: {}",
            graph_drop.join(", ")
        ));
        let excerpt = function.iter().filter(|l| l.contains("6Module4init")).take(1)
            .chain(graph.iter().filter(|l| l.contains("6Module4init")).take(2))
            .chain(function_unload.iter().take(2));
        for line in excerpt {
            evidence.push(format!("  | {}", line.trim()));
        }
    } else {
        expect(filter.iter().all(|f| *f == "-22") && filter.len() == 2, format!("set_ftrace_filter `_R*` gave {filter:?}, not -22 (EINVAL) twice"));
        let all_traced = function.len() + function_unload.len() + graph.len() + graph_unload.len();
        expect(all_traced == 0, "Rust functions were traced without the padding".into());
        evidence.push("set_ftrace_filter `_R*`: -22 (EINVAL) for both tracers: nothing to trace".into());
    }

    // The redirection and the notrace function (rust_ftrace_test.c): once
    // at boot; with the live patch the trigger runs three more times
    // (traced, under the live patch, after it), checked with it below.
    expect(value(text, "PFE-REDIRECT-RUN") == ["0"], "writing 1 to rust_ftrace_test's `run` failed".into());
    let redirect: Vec<&str> = text.lines().filter(|l| l.contains("rust_ftrace_test: redirect:")).collect();
    let want_redirect = if want.padded { REDIRECTED } else { REFUSED };
    let runs = if want.livepatch && want.padded { 4 } else { 1 };
    expect(
        redirect.len() == runs && redirect[0].contains(want_redirect),
        format!("the redirection reported {redirect:?}, not `{want_redirect}` first of {runs}"),
    );
    let notrace: Vec<&str> = text.lines().filter(|l| l.contains("rust_ftrace_test: notrace:")).collect();
    expect(
        notrace.len() == runs && notrace.iter().all(|l| l.contains(NOTRACE_REFUSED)),
        format!("the notrace test reported {notrace:?}, not `{NOTRACE_REFUSED}` {runs} time(s)"),
    );
    expect(value(text, "PFE-NOTRACE-FILTER") == ["-22"], "set_ftrace_filter took the notrace function".into());
    for line in redirect.iter().take(1).chain(notrace.iter().take(1)) {
        evidence.push(format!("  | {}", line.trim()));
    }
    evidence.push(format!("set_ftrace_filter {NOTRACE}: -22 (EINVAL); no oops, no WARN, no ftrace bug"));
    if want.livepatch {
        let (fails, said) = check_livepatch(text, want.padded);
        failed.extend(fails);
        evidence.extend(said);
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::audit::{parse_instructions, parse_symbols};
    use std::fs;
    use std::path::Path;

    fn testdata(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel/testdata").join(name);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The audit's side of a real boot (`kernel/testdata`, the console of
    /// `./x kernel` with its listing cut to a few dozen Rust functions):
    /// what the console is checked against. `weak`: the arch's weak
    /// intrinsics its own assembly replaces (arm64).
    struct Audited {
        built_in: Vec<String>,
        module: Vec<String>,
        init_text: Vec<String>,
        weak: Vec<String>,
        module_text: Vec<Symbol>,
    }

    fn audited_as(console: &str, weak: &[&str], symbols: &str) -> Audited {
        let rust = |n: &&str| n.starts_with("_R") || n.starts_with("rust_ftrace_");
        let weak: Vec<String> = weak.iter().map(|w| w.to_string()).collect();
        let mut built_in: Vec<String> =
            value(console, "PFE-AFF").into_iter().filter(rust).map(String::from).collect();
        built_in.extend(weak.iter().cloned());
        let mut module: Vec<String> = value(console, "PFE-AFF-MODULE")
            .into_iter()
            .filter_map(|l| l.strip_suffix(" [rust_minimal]"))
            .map(String::from)
            .collect();
        module.sort();
        module.dedup();
        module.push("init_module".into());
        let symbols = parse_symbols(&testdata(symbols));
        Audited {
            built_in,
            module,
            init_text: vec!["init_module".into()],
            weak,
            module_text: symbols.into_iter().filter(|s| s.section == ".text").collect(),
        }
    }

    fn audited(console: &str) -> Audited {
        audited_as(console, &["__ashlti3", "__ashrti3", "__lshrti3"], "arm64-rust_minimal.ko.symbols")
    }

    fn audited_x86(console: &str) -> Audited {
        audited_as(console, &[], "x86_64-rust_minimal.ko.symbols")
    }

    fn check_with(console: &str, padded: bool, livepatch: bool, a: &Audited) -> Result<Vec<String>> {
        let mut all = a.built_in.clone();
        all.extend(a.module.iter().cloned());
        all.push(NOTRACE.into());
        let want = Expected {
            padded,
            livepatch,
            built_in: &a.built_in,
            module: &a.module,
            all: &all,
            init_text: &a.init_text,
            weak: &a.weak,
            module_text: &a.module_text,
        };
        check_ftrace(console, &want)
    }

    fn check(console: &str, padded: bool, a: &Audited) -> Result<Vec<String>> {
        check_with(console, padded, false, a)
    }

    #[test]
    fn a_real_traced_boot_passes_every_check() {
        let console = testdata("arm64-ftrace.console");
        let a = audited(&console);
        let evidence = check(&console, true, &a).unwrap().join("\n");
        for said in [
            "1000042 redirected, 6007 after",
            "3 weak ones the arch replaces with its own (__ashlti3, __ashrti3, __lshrti3)",
            "but init_module (.init.text, freed)",
            "11RustMinimalNtNtNtCshNso7GI6UKi_4core3ops4drop4Drop4drop",
            "each with its return",
        ] {
            assert!(evidence.contains(said), "no `{said}` in:\n{evidence}");
        }
        // The serial console's line ends.
        check(&console.replace('\n', "\r\n"), true, &a).unwrap();
        // Not what a kernel without the padding shows.
        assert!(check(&console, false, &a).is_err());
    }

    #[test]
    fn a_real_control_boot_passes_as_a_control_only() {
        let console = testdata("arm64-control.console");
        let a = audited(&testdata("arm64-ftrace.console"));
        let evidence = check(&console, false, &a).unwrap().join("\n");
        assert!(evidence.contains("ftrace_set_filter_ip refused it: -22"), "{evidence}");
        let err = format!("{:#}", check(&console, true, &a).unwrap_err());
        assert!(err.contains("not listed") && err.contains("redirection"), "{err}");
    }

    #[test]
    fn each_missing_or_wrong_line_fails_the_boot() {
        let console = testdata("arm64-ftrace.console");
        let a = audited(&console);
        let first_rust = value(&console, "PFE-AFF").into_iter().find(|n| n.starts_with("_R")).unwrap().to_string();
        let cases: Vec<(String, &str)> = vec![
            (console.replace("1000042 redirected", "6007 redirected"), "redirection"),
            (console.replace("PFE-NOTRACE-FILTER -22", "PFE-NOTRACE-FILTER 0"), "notrace function"),
            (console.replace(&format!("PFE-AFF {first_rust}\n"), ""), "not listed"),
            (console.replace("PFE-INIT done", ""), "did not finish"),
            (console.replace("PFE-MODULE-UNLOAD 0", "PFE-MODULE-UNLOAD -16"), "unloads"),
            (console.replace("PFE-INIT done", "Internal error: Oops - BTI: 0000000034000002 [#1] SMP\nPFE-INIT done"), "oopsed"),
            (console.replace("PFE-MODULE-TEXT 0xffffffc000250000", "PFE-MODULE-TEXT 0xffffffc000150000"), "Drop"),
            (console.lines().filter(|l| !(l.contains("PFE-TRACE graph ") && l.contains("} /*"))).collect::<Vec<_>>().join("\n"), "returns"),
        ];
        for (broken, why) in cases {
            assert_ne!(broken, console, "the case `{why}` changed nothing");
            let err = format!("{:#}", check(&broken, true, &a).unwrap_err());
            assert!(err.contains(why), "expected `{why}` in: {err}");
        }
    }

    #[test]
    fn a_real_x86_64_boot_with_the_live_patch_passes_every_check() {
        let console = testdata("x86_64-ftrace.console");
        let a = audited_x86(&console);
        let evidence = check_with(&console, true, true, &a).unwrap().join("\n");
        for said in [
            "1000042 redirected, 6007 after",
            "but init_module (.init.text, freed)",
            "11RustMinimalNtNtNtCshNso7GI6UKi_4core3ops4drop4Drop4drop",
            "each with its return",
            "tracer cycles 20 of 20",
            "none after enabled=0",
            "rust_ftrace_test: call: rust_ftrace_target(6, 7) = 2000042",
            "redirect: register_ftrace_function: -16",
        ] {
            assert!(evidence.contains(said), "no `{said}` in:\n{evidence}");
        }
        check_with(&console.replace('\n', "\r\n"), true, true, &a).unwrap();
        // Not a control, and not a boot without the live patch's steps.
        assert!(check_with(&console, false, true, &a).is_err());
        let err = format!("{:#}", check_with(&console, true, false, &a).unwrap_err());
        assert!(err.contains("redirection reported"), "{err}");
    }

    #[test]
    fn a_real_x86_64_control_refuses_the_live_patch() {
        let console = testdata("x86_64-control.console");
        let a = audited_x86(&testdata("x86_64-ftrace.console"));
        let evidence = check_with(&console, false, true, &a).unwrap().join("\n");
        assert!(evidence.contains("refused (-22) both times"), "{evidence}");
        let err = format!("{:#}", check_with(&console, true, true, &a).unwrap_err());
        assert!(err.contains("not listed") && err.contains("loaded as"), "{err}");
        let cases: Vec<(String, &str)> = vec![
            (console.replace("PFE-KLP-LOAD both -22", "PFE-KLP-LOAD both 0"), "not refused"),
            (console.replace("PFE-RUN-FILTER -22", "PFE-RUN-FILTER 0"), "without the entry"),
            (console.replace("PFE-AFF-COUNT", &format!("PFE-AFF {}\nPFE-AFF-COUNT", a.built_in[0])), "listed without the padding"),
        ];
        for (broken, why) in cases {
            assert_ne!(broken, console, "the case `{why}` changed nothing");
            let err = format!("{:#}", check_with(&broken, false, true, &a).unwrap_err());
            assert!(err.contains(why), "expected `{why}` in: {err}");
        }
    }

    #[test]
    fn each_wrong_livepatch_or_tracer_line_fails_the_x86_64_boot() {
        let console = testdata("x86_64-ftrace.console");
        let a = audited_x86(&console);
        let first_rust = value(&console, "PFE-AFF").into_iter().find(|n| n.starts_with("_R")).unwrap().to_string();
        let disabled = "PFE-KLP-DISABLE both\n";
        let cases: Vec<(String, &str)> = vec![
            (console.replace(&format!("PFE-AFF {first_rust}\n"), ""), "not listed"),
            (console.replace("PFE-KLP-LOAD target-only 0", "PFE-KLP-LOAD target-only -22"), "loaded as"),
            (console.replace("PFE-KLP-TRANSITION while-parked 1", "PFE-KLP-TRANSITION while-parked 0"), "did not wait"),
            (console.replacen(CALL_PATCHED, CALL_RUST, 1), "did not reach the replacement"),
            (console.replace(disabled, &format!("{disabled}{REPLACED}\n")), "after enabled=0"),
            (console.replace("PFE-CYCLES 20 of 20", "PFE-CYCLES 19 of 20"), "PFE-CYCLES"),
            (console.replacen(" on 0 off 0 traced 1", " on 0 off 0 traced 0", 1), "tracer cycles"),
            (
                console.lines().map(|l| if l.starts_with("PFE-RUN-TRACED") { "PFE-RUN-TRACED rust_ftrace_target 0" } else { l }).collect::<Vec<_>>().join("\n"),
                "trigger",
            ),
            (console.replacen("PFE-KLP-UNLOAD 0", "PFE-KLP-UNLOAD -16", 1), "unloading"),
            (console.replace(&format!("rust_ftrace_test: {REDIRECT_BUSY}"), ""), "redirection reported"),
            (console.replace("PFE-PARK 0 0", "PFE-PARK 0 0\n------------[ ftrace bug ]------------"), "oopsed"),
            (console.replace("PFE-PARK 0 0", "PFE-PARK 0 0\n Call Trace:"), "oopsed"),
            (console.replace("PFE-PARK 1 0", "PFE-PARK 1 0\nlivepatch: 'livepatch_rust_ftrace': forcing transition"), "forced"),
            (console.replace("park: left rust_ftrace_park", "park: still in rust_ftrace_park"), "did not leave"),
        ];
        for (broken, why) in cases {
            assert_ne!(broken, console, "the case `{why}` changed nothing");
            let Err(err) = check_with(&broken, true, true, &a) else { panic!("the case `{why}` passed") };
            let err = format!("{err:#}");
            assert!(err.contains(why), "expected `{why}` in: {err}");
        }
    }

    /// audit.rs's readers of `llvm-objdump-14`'s output, and this file's
    /// of trace addresses, on the real module's symbols.
    #[test]
    fn symbols_and_instructions_are_read_as_llvm_objdump_prints_them() {
        let symbols = parse_symbols(&testdata("arm64-rust_minimal.ko.symbols"));
        let init = symbols.iter().find(|s| s.name == "init_module").unwrap();
        assert_eq!(init.section, ".init.text");
        assert!(!init.weak);
        assert!(symbols.iter().any(|s| s.section == ".text" && s.name.ends_with("4Drop4drop")));
        let weak = parse_symbols("0000000000000288  w    F .text\t0000000000000048 .hidden __ashlti3\n");
        assert_eq!(weak, [Symbol { name: "__ashlti3".into(), section: ".text".into(), value: 0x288, size: 0x48, weak: true }]);
        let text = "\nvmlinux:\tfile format elf64-littleaarch64\n\nDisassembly of section .text:\n\n\
                    ffffffc00823be3c <rust_ftrace_target>:\n\
                    ffffffc00823be3c:      \tbti\tc\nffffffc00823be40:      \tnop\n\
                    ffffffc00823be48:      \tpaciasp\nffffffc00823be4c:      \tstp\tx29, x30, [sp, #-16]!\n";
        assert_eq!(parse_instructions(text), ["bti c", "nop", "paciasp", "stp x29, x30, [sp, #-16]!"]);
        assert_eq!(addresses("init-1 [000] 1.1: 0xffffffc0002506f8 <-0xffffffc000250708"), [0xffffffc0002506f8, 0xffffffc000250708]);
        let text_syms = vec![Symbol { name: "f".into(), section: ".text".into(), value: 0x10, size: 0x8, weak: false }];
        assert_eq!(symbolize(0x1014, 0x1000, &text_syms), Some("f"));
        assert_eq!(symbolize(0x1018, 0x1000, &text_syms), None);
        assert_eq!(symbolize(0x0fff, 0x1000, &text_syms), None);
    }
}
