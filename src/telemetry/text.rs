//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines once per
//! metric family, then one sample per line, `name{label="value",…} value`. Owns the escaping
//! (backslash, double quote and newline in label values; backslash and newline in help text)
//! and the number format (`+Inf`, `-Inf`, `NaN`; integers without a fraction).

use std::fmt::Write;

use super::histogram::Snapshot;

/// The `Content-Type` of a text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kind of a metric family, as its `# TYPE` line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A text exposition being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a metric family: its help and type lines. Every sample of the family follows.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        push_number(&mut self.out, value);
        self.out.push('\n');
    }

    /// A whole family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The samples of one histogram (`_bucket` per bound and `+Inf`, `_sum`, `_count`), under
    /// a family started with [`Kind::Histogram`].
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], snapshot: &Snapshot) {
        for (bound, count) in &snapshot.buckets {
            let mut le = String::new();
            push_number(&mut le, *bound);
            self.bucket(name, labels, &le, *count);
        }
        self.bucket(name, labels, "+Inf", snapshot.count);
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        self.out.push(' ');
        push_number(&mut self.out, snapshot.sum);
        self.out.push('\n');
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", snapshot.count);
    }

    fn bucket(&mut self, name: &str, labels: &[(&str, &str)], le: &str, count: u64) {
        let _ = write!(self.out, "{name}_bucket");
        write_labels(&mut self.out, labels, Some(le));
        let _ = writeln!(self.out, " {count}");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)], le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let le = le.map(|le| ("le", le));
    for (i, (name, value)) in labels.iter().copied().chain(le).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(out, value);
        out.push('"');
    }
    out.push('}');
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: whole numbers without a fraction, others in Rust's shortest round-trip
/// decimal form (never an exponent), infinities and NaN as the format spells them.
fn push_number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut text = Exposition::new();
        text.family(
            "outpost_things_total",
            Kind::Counter,
            "Things.\nWith a \\ in it.",
        );
        text.sample(
            "outpost_things_total",
            &[("route", "/a/{id}"), ("odd", "q\"b\\n\n")],
            3.0,
        );
        text.single("outpost_ratio", Kind::Gauge, "A ratio.", 0.25);
        assert_eq!(
            text.finish(),
            "# HELP outpost_things_total Things.\\nWith a \\\\ in it.\n\
             # TYPE outpost_things_total counter\n\
             outpost_things_total{route=\"/a/{id}\",odd=\"q\\\"b\\\\n\\n\"} 3\n\
             # HELP outpost_ratio A ratio.\n\
             # TYPE outpost_ratio gauge\n\
             outpost_ratio 0.25\n"
        );
    }

    #[test]
    fn histograms_have_cumulative_buckets_inf_sum_and_count() {
        let mut text = Exposition::new();
        let snapshot = Snapshot {
            buckets: vec![(0.0005, 1), (1.0, 3)],
            count: 4,
            sum: 2.5,
        };
        text.histogram("h_seconds", &[("type", "webhook")], &snapshot);
        assert_eq!(
            text.finish(),
            "h_seconds_bucket{type=\"webhook\",le=\"0.0005\"} 1\n\
             h_seconds_bucket{type=\"webhook\",le=\"1\"} 3\n\
             h_seconds_bucket{type=\"webhook\",le=\"+Inf\"} 4\n\
             h_seconds_sum{type=\"webhook\"} 2.5\n\
             h_seconds_count{type=\"webhook\"} 4\n"
        );
    }

    #[test]
    fn numbers() {
        let mut out = String::new();
        for value in [
            0.0,
            12.0,
            1e-5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e20,
        ] {
            push_number(&mut out, value);
            out.push(' ');
        }
        assert_eq!(out, "0 12 0.00001 +Inf -Inf NaN 100000000000000000000 ");
    }
}
