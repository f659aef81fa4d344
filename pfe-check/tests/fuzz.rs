//! Property: malformed input never panics pfe-check. Inputs are the real
//! objects and executables of `tests/objects/` (every architecture, ELF32
//! and ELF64, little- and big-endian, relocatable and linked) and an archive of some of them,
//! mutated with a fixed seed: random bytes and bits anywhere, and the values
//! that break parsers (0, 1, all ones, sign bits, the file's length) written
//! into the fields that index other things (the ELF header, section headers,
//! symbols, relocations, the records) or cut off. Each input goes through
//! `analyze`, and every report through `offenders`, `misaligned` and the
//! JSON writer. A panic is a failure; an error (exit 2 in the CLI) is fine.
//!
//! `PFE_FUZZ_INPUTS` sets the number of inputs (default 120,000: a few
//! seconds in release, a few tens of seconds in debug on these machines).

use object::{Object, ObjectSection};
use pfe_check::{analyze, to_json, Expect};
use std::io::Write;
use std::panic;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
mod support;
use support::archive;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A seed file and the byte ranges worth aiming at: the ELF header, the
/// section header table, and the symbol, relocation and record sections.
struct Seed {
    name: String,
    data: Vec<u8>,
    hot: Vec<(usize, usize)>,
    /// `ELFDATA2MSB` (aarch64_be): fields are read and written big-endian.
    big_endian: bool,
}

fn seed(name: String, data: Vec<u8>) -> Seed {
    let mut hot = vec![(0, 64.min(data.len()))];
    let big_endian = data.get(5) == Some(&2);
    // An ELF header field of 2, 4 or 8 bytes at `at`, in the file's byte order.
    let field = |at: usize, width: usize| -> usize {
        let bytes = &data[at..at + width];
        let mut value = [0u8; 8];
        if big_endian {
            value[8 - width..].copy_from_slice(bytes);
            u64::from_be_bytes(value) as usize
        } else {
            value[..width].copy_from_slice(bytes);
            u64::from_le_bytes(value) as usize
        }
    };
    if let Ok(file) = object::File::parse(&*data) {
        let (shoff, shentsize, shnum) =
            if file.is_64() { (field(0x28, 8), 64, field(0x3c, 2)) } else { (field(0x20, 4), 40, field(0x30, 2)) };
        hot.push((shoff, (shoff + shentsize * shnum).min(data.len())));
        for section in file.sections() {
            let name = section.name().unwrap_or("");
            let wanted = name.starts_with(".rel")
                || name.contains("symtab")
                || name.contains("dynsym")
                || name == pfe_check::RECORD_SECTION
                || name == ".dynamic"
                || name.starts_with(".text");
            if let (true, Some((offset, size))) = (wanted, section.file_range()) {
                hot.push((offset as usize, (offset + size) as usize));
            }
        }
    }
    hot.retain(|(a, b)| a < b && *b <= data.len());
    Seed { name, data, hot, big_endian }
}

fn mutate(rng: &mut Rng, seed: &Seed) -> Vec<u8> {
    let mut data = seed.data.clone();
    for _ in 0..1 + rng.below(4) {
        if data.is_empty() {
            break;
        }
        // Where: half the time inside a hot range.
        let at = if !seed.hot.is_empty() && rng.below(2) == 0 {
            let (a, b) = seed.hot[rng.below(seed.hot.len())];
            a + rng.below(b - a)
        } else {
            rng.below(data.len())
        } % data.len(); // an earlier cut may have shortened it
        match rng.below(10) {
            0 => data[at] ^= 1 << rng.below(8),
            1 | 2 => data[at] = rng.next() as u8,
            3..=7 => {
                // An interesting value in a field of 1, 2, 4 or 8 bytes.
                let len = data.len() as u64;
                let values = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, u64::MAX, len, len + 1, len - 1, 255, 256, rng.next() % 64];
                let value: u64 = values[rng.below(values.len())];
                let width = [1, 2, 4, 8][rng.below(4)];
                let at = at & !(width - 1);
                let end = (at + width).min(data.len());
                let bytes =
                    if seed.big_endian { value.to_be_bytes()[8 - width..].to_vec() } else { value.to_le_bytes()[..width].to_vec() };
                data[at..end].copy_from_slice(&bytes[..end - at]);
            }
            8 => data.truncate(at),
            _ => {
                // Copy a run from elsewhere in the file (a plausible value).
                let from = rng.below(data.len());
                let n = (1 + rng.below(16)).min(data.len() - from).min(data.len() - at);
                let run = data[from..from + n].to_vec();
                data[at..at + n].copy_from_slice(&run);
            }
        }
    }
    data
}

#[test]
fn mutated_real_objects_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/objects");
    let mut names: Vec<String> = std::fs::read_to_string(dir.join("MANIFEST"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    names.sort();
    let mut seeds: Vec<Seed> = names.iter().map(|n| seed(n.clone(), std::fs::read(dir.join(n)).unwrap())).collect();
    let a = std::fs::read(dir.join("clang-x86_64-16-16-a16.o")).unwrap();
    let b = std::fs::read(dir.join("gcc-aarch64-2-bti.o")).unwrap();
    seeds.push(seed("lib.a".into(), archive(&[("a.o", &a), ("lib.rmeta", b"rust metadata"), ("b.o", &b)])));

    let inputs: usize = std::env::var("PFE_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(120_000);
    // Panics are counted, not printed one by one: keep the first message.
    let first_panic: Arc<Mutex<Option<String>>> = Arc::default();
    let hook_first = first_panic.clone();
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let mut first = hook_first.lock().unwrap();
        if first.is_none() {
            *first = Some(info.to_string());
        }
    }));

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut panics, mut errors, mut reports, mut panicking_input) = (0usize, 0usize, 0usize, None);
    let started = Instant::now();
    for i in 0..inputs {
        let seed = &seeds[i % seeds.len()];
        let data = mutate(&mut rng, seed);
        let outcome = panic::catch_unwind(|| match analyze("fuzz.o", &data) {
            Ok(rs) => {
                for r in &rs {
                    let _ = r.offenders(Expect { total: 4, prefix: 2 }, &[]);
                    let _ = r.misaligned(16, &[]);
                }
                let _ = to_json(&rs);
                Ok(rs.len())
            }
            Err(e) => Err(format!("{e:#}")),
        });
        match outcome {
            Ok(Ok(n)) => reports += n,
            Ok(Err(_)) => errors += 1,
            Err(_) => {
                panics += 1;
                if panicking_input.is_none() {
                    panicking_input = Some((seed.name.clone(), data));
                }
            }
        }
    }
    let elapsed = started.elapsed();
    panic::set_hook(default_hook);
    // To the real stderr, past the test harness's capture: the figure shows
    // in every `cargo test` run, passing or not.
    let _ = writeln!(
        std::io::stderr(),
        "fuzz: {inputs} inputs from {} real seeds, {panics} panics, {errors} errors (exit 2), {} parsed ({reports} reports), {:.1} s",
        seeds.len(),
        inputs - panics - errors,
        elapsed.as_secs_f64()
    );
    if let Some((name, data)) = panicking_input {
        let path = std::env::temp_dir().join("pfe-check-fuzz-panic.bin");
        std::fs::write(&path, data).unwrap();
        panic!(
            "{panics} panics; first from a mutation of {name}, saved as {}: {}",
            path.display(),
            first_panic.lock().unwrap().clone().unwrap_or_default()
        );
    }
    assert!(inputs >= 100_000 || std::env::var("PFE_FUZZ_INPUTS").is_ok());
}
