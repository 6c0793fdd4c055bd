//! A run's verdict: per virtual Pi, whether it reached `up` and each check's
//! outcome, as a table for people and JUnit XML for CI systems.

use std::fmt::Write as _;
use std::time::Duration;

/// One check on one Pi.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) passed: bool,
    /// What it saw: the matching line, or the end of what there was.
    pub(crate) output: String,
    pub(crate) took: Duration,
}

/// One virtual Pi's run.
#[derive(Debug, Clone)]
pub(crate) struct Pi {
    pub(crate) position: String,
    /// Time from power-on to `up`; none when it never got there.
    pub(crate) up: Option<Duration>,
    /// Its state at the end, and the boot's stage timings.
    pub(crate) state: String,
    pub(crate) stages: String,
    /// The console's last lines, for a Pi that did not come up.
    pub(crate) console_tail: String,
    pub(crate) checks: Vec<Check>,
}

impl Pi {
    pub(crate) fn passed(&self) -> bool {
        self.up.is_some() && self.checks.iter().all(|c| c.passed)
    }

    /// Whether it came up at its latest boot: the first, or the last later one
    /// (whose check is named `<label>: boots to up`).
    pub(crate) fn up_at_last_boot(&self) -> bool {
        self.checks
            .iter()
            .rfind(|c| c.name.ends_with(": boots to up"))
            .map_or(self.up.is_some(), |c| c.passed)
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The verdict table, then each check's result and what it saw.
pub(crate) fn table(pis: &[Pi]) -> String {
    let mut out = format!(
        "{:<8} {:<7} {:>8}  {:<8} STAGES\n",
        "SLOT", "VERDICT", "TO UP", "CHECKS"
    );
    for p in pis {
        let passed = p.checks.iter().filter(|c| c.passed).count();
        let line = format!(
            "{:<8} {:<7} {:>8}  {:<8} {}",
            p.position,
            if p.passed() { "pass" } else { "FAIL" },
            p.up.map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
            format!("{passed}/{}", p.checks.len()),
            p.stages
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for p in pis {
        if p.up.is_none() {
            let _ = writeln!(
                out,
                "\n{}: did not reach up (left {}); its console's end:\n{}",
                p.position, p.state, p.console_tail
            );
        }
        for c in &p.checks {
            // A pass shows what it saw in brief; a failure all of its evidence.
            let (verdict, said) = match c.passed {
                true => ("passed", tail(&c.output, 5)),
                false => ("failed", c.output.clone()),
            };
            let _ = writeln!(
                out,
                "\n{}: {} {verdict} ({:.1} s):",
                p.position,
                c.name,
                c.took.as_secs_f64()
            );
            for line in said.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

/// The run as JUnit XML: a test suite, a test case per Pi's boot and per check.
pub(crate) fn junit(pis: &[Pi], took: Duration) -> String {
    let cases: Vec<String> = pis
        .iter()
        .flat_map(|p| {
            let boot = case(
                &p.position,
                "boots to up",
                p.up.unwrap_or_default(),
                (p.up.is_none()).then(|| {
                    (
                        format!("did not reach up (left {})", p.state),
                        p.console_tail.clone(),
                    )
                }),
            );
            std::iter::once(boot).chain(p.checks.iter().map(|c| {
                case(
                    &p.position,
                    &c.name,
                    c.took,
                    (!c.passed).then(|| (format!("{} failed", c.name), c.output.clone())),
                )
            }))
        })
        .collect();
    let failures = pis
        .iter()
        .map(|p| usize::from(p.up.is_none()) + p.checks.iter().filter(|c| !c.passed).count())
        .sum::<usize>();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites tests=\"{n}\" failures=\"{failures}\" time=\"{t:.3}\">\n\
         <testsuite name=\"pirack hil run\" tests=\"{n}\" failures=\"{failures}\" errors=\"0\" time=\"{t:.3}\">\n\
         {}</testsuite>\n</testsuites>\n",
        cases.concat(),
        n = cases.len(),
        t = took.as_secs_f64(),
    )
}

fn case(class: &str, name: &str, took: Duration, failure: Option<(String, String)>) -> String {
    let head = format!(
        "<testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
        xml(class),
        xml(name),
        took.as_secs_f64()
    );
    match failure {
        None => format!("{head}/>\n"),
        Some((message, body)) => format!(
            "{head}>\n<failure message=\"{}\">{}</failure>\n</testcase>\n",
            xml(&message),
            xml(&body)
        ),
    }
}

/// Text as XML character data or attribute value: markup escaped, and the
/// characters XML 1.0 cannot hold (a console's control codes) dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pis() -> Vec<Pi> {
        vec![
            Pi {
                position: "A-01".into(),
                up: Some(Duration::from_millis(21_300)),
                state: "up".into(),
                stages: "dhcp_seen 1.0 s".into(),
                console_tail: String::new(),
                checks: vec![
                    Check {
                        name: "expect /up: /".into(),
                        passed: true,
                        output: "pirack: up: a".into(),
                        took: Duration::ZERO,
                    },
                    Check {
                        name: "expect /ready/".into(),
                        passed: false,
                        output: "not on the console <\u{1b}[0m\"&>".into(),
                        took: Duration::from_secs(1),
                    },
                ],
            },
            Pi {
                position: "A-02".into(),
                up: None,
                state: "failed".into(),
                stages: String::new(),
                console_tail: "Kernel panic".into(),
                checks: Vec::new(),
            },
        ]
    }

    #[test]
    fn junit_counts_every_boot_and_check_and_escapes_what_the_console_said() {
        let xml = junit(&pis(), Duration::from_secs(60));
        assert!(xml.contains("<testsuite name=\"pirack hil run\" tests=\"4\" failures=\"2\""));
        assert!(
            xml.contains("not on the console &lt;[0m&quot;&amp;&gt;"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'));
        assert!(xml.contains("<failure message=\"did not reach up (left failed)\">Kernel panic"));
        assert_eq!(xml.matches("<testcase ").count(), 4);
    }

    #[test]
    fn the_table_has_a_line_per_pi_and_says_what_failed() {
        let t = table(&pis());
        assert!(
            t.contains("A-01     FAIL      21.3 s  1/2      dhcp_seen 1.0 s\n"),
            "{t}"
        );
        assert!(t.contains("A-02     FAIL           -  0/0\n"), "{t}");
        assert!(
            t.contains("A-01: expect /up: / passed (0.0 s):\n  pirack: up: a\n"),
            "{t}"
        );
        assert!(
            t.contains("A-01: expect /ready/ failed (1.0 s):\n  not on the console"),
            "{t}"
        );
        assert!(
            t.contains("A-02: did not reach up (left failed); its console's end:\nKernel panic")
        );
    }
}
