//! `--json`: the reports as JSON, written by hand (a few fixed shapes do not
//! need serde; the driver that links this library stays lean). Field names
//! and value shapes are those the serde derive of earlier versions wrote.

use crate::{Function, Orphan, PatchSite, RecordSection, Report};
use std::fmt::Write;

/// The reports as a pretty-printed JSON array.
pub fn to_json(reports: &[Report]) -> String {
    let mut out = String::new();
    array(&mut out, 0, reports, report);
    out
}

fn report(out: &mut String, depth: usize, r: &Report) {
    object(out, depth, |o| {
        o.field("path", |out, _| string(out, &r.path));
        o.field("kind", |out, _| string(out, &r.kind));
        o.field("arch", |out, _| string(out, r.arch.name()));
        o.field("big_endian", |out, _| out.push_str(if r.big_endian { "true" } else { "false" }));
        o.field("functions", |out, d| array(out, d, &r.functions, function));
        o.field("record_sections", |out, d| array(out, d, &r.record_sections, record_section));
        o.field("sites", |out, d| array(out, d, &r.sites, site));
        o.field("orphans", |out, d| array(out, d, &r.orphans, orphan));
        o.field("problems", |out, d| array(out, d, &r.problems, |out, _, s| string(out, s)));
    });
}

fn function(out: &mut String, depth: usize, f: &Function) {
    object(out, depth, |o| {
        o.field("name", |out, _| string(out, &f.name));
        o.field("section", |out, _| string(out, &f.section));
        o.field("address", |out, _| number(out, f.address));
        o.field("prefix_nops", |out, _| number(out, f.prefix_nops));
        o.field("entry_nops", |out, _| number(out, f.entry_nops));
        o.field("landing_pad", |out, _| option(out, f.landing_pad, string));
        o.field("records", |out, _| number(out, f.records));
        o.field("record_offset", |out, _| option(out, f.record_offset, number));
        o.field("site_alignment", |out, _| option(out, f.site_alignment, number));
        o.field("pad", |out, _| string(out, &f.pad));
        o.field("problems", |out, d| array(out, d, &f.problems, |out, _, s| string(out, s)));
    });
}

fn record_section(out: &mut String, depth: usize, s: &RecordSection) {
    object(out, depth, |o| {
        o.field("name", |out, _| string(out, &s.name));
        o.field("flags", |out, _| string(out, &s.flags));
        o.field("records", |out, _| number(out, s.records));
        o.field("link_order", |out, _| out.push_str(if s.link_order { "true" } else { "false" }));
    });
}

fn site(out: &mut String, depth: usize, s: &PatchSite) {
    object(out, depth, |o| {
        o.field("function", |out, _| option(out, s.function.as_deref(), string));
        o.field("location", |out, _| string(out, &s.location));
        o.field("alignment", |out, _| number(out, s.alignment));
    });
}

fn orphan(out: &mut String, depth: usize, o: &Orphan) {
    object(out, depth, |ob| {
        ob.field("record_section", |out, _| string(out, &o.record_section));
        ob.field("points_at", |out, _| string(out, &o.points_at));
    });
}

struct Fields<'a> {
    out: &'a mut String,
    depth: usize,
    first: bool,
}

impl Fields<'_> {
    fn field(&mut self, name: &str, value: impl FnOnce(&mut String, usize)) {
        self.out.push_str(if self.first { "\n" } else { ",\n" });
        self.first = false;
        indent(self.out, self.depth + 1);
        string(self.out, name);
        self.out.push_str(": ");
        value(self.out, self.depth + 1);
    }
}

fn object(out: &mut String, depth: usize, fields: impl FnOnce(&mut Fields<'_>)) {
    out.push('{');
    let mut f = Fields { out, depth, first: true };
    fields(&mut f);
    let empty = f.first;
    if !empty {
        out.push('\n');
        indent(out, depth);
    }
    out.push('}');
}

fn array<T>(out: &mut String, depth: usize, items: &[T], item: impl Fn(&mut String, usize, &T)) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        indent(out, depth + 1);
        item(out, depth + 1, x);
    }
    out.push('\n');
    indent(out, depth);
    out.push(']');
}

fn option<T>(out: &mut String, value: Option<T>, some: impl FnOnce(&mut String, T)) {
    match value {
        Some(v) => some(out, v),
        None => out.push_str("null"),
    }
}

fn number(out: &mut String, n: impl std::fmt::Display) {
    let _ = write!(out, "{n}");
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A JSON string: quotes, backslashes and control characters escaped.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
