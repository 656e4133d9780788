//! JUnit XML for `knetsim test --junit FILE`, in the shape GitLab, Jenkins and GitHub's test
//! report actions read: one `<testsuite>` per scenario file (named after the scenario, with the
//! file in `file`), one `<testcase>` per expectation (its place in `file` and `line`), a
//! `<failure>` for a failed expectation and an `<error>` for a scenario that is invalid.
//!
//! Why this shape: each of those tools lists suites and, inside them, cases with their own
//! pass/fail history and message, so a failing expectation shows by name, under its scenario;
//! GitHub's annotating actions place a case's failure at its `file` and `line`. One suite for
//! the whole run would lose the scenario, one case per scenario which expectation failed.
//!
//! Written by hand: it is a few elements and attributes, and a crate for it (quick-junit)
//! would bring a date library, UUIDs and an XML writer. No `time` or `timestamp` attributes
//! (the readers take them as optional): the file is byte-identical from run to run, like every
//! output of knetsim.

use std::fmt::Write as _;

/// One scenario file.
#[derive(Debug)]
pub struct Suite {
    /// The scenario's `name` (the file's path when it could not be read).
    pub name: String,
    /// The file, as the user named it.
    pub file: String,
    pub cases: Vec<Case>,
}

/// One expectation, or the loading of an invalid scenario.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub line: Option<u32>,
    pub result: CaseResult,
}

#[derive(Debug)]
pub enum CaseResult {
    Passed,
    /// An expectation that does not hold: a one-line message and the full text.
    Failed {
        message: String,
        text: String,
    },
    /// A scenario that cannot be run (exit status 2): the diagnostics.
    Error {
        message: String,
        text: String,
    },
}

impl Suite {
    fn count(&self, f: impl Fn(&CaseResult) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.result)).count()
    }
}

fn failed(r: &CaseResult) -> bool {
    matches!(r, CaseResult::Failed { .. })
}

fn errored(r: &CaseResult) -> bool {
    matches!(r, CaseResult::Error { .. })
}

/// The document, ending in a newline.
pub fn render(suites: &[Suite]) -> String {
    let total = |f: &dyn Fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let tests = total(&|s| s.cases.len());
    let failures = total(&|s| s.count(failed));
    let errors = total(&|s| s.count(errored));
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"knetsim test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">"
    );
    for s in suites {
        let _ = write!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" file=\"{}\"",
            attr(&s.name),
            s.cases.len(),
            s.count(failed),
            s.count(errored),
            attr(&s.file)
        );
        if s.cases.is_empty() {
            x.push_str("/>\n");
            continue;
        }
        x.push_str(">\n");
        // Jenkins reads the dots of a classname as a package path ("kubeadm-guide-1.30"
        // would be class "30" of package "kubeadm-guide-1").
        let classname = attr(&s.name.replace('.', "_"));
        for c in &s.cases {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{classname}\" file=\"{}\"",
                attr(&c.name),
                attr(&s.file)
            );
            if let Some(line) = c.line {
                let _ = write!(x, " line=\"{line}\"");
            }
            match &c.result {
                CaseResult::Passed => x.push_str("/>\n"),
                CaseResult::Failed { message, text } => {
                    let _ = write!(
                        x,
                        ">\n      <failure type=\"expectation\" message=\"{}\">{}</failure>\n    </testcase>\n",
                        attr(message),
                        text_node(text)
                    );
                }
                CaseResult::Error { message, text } => {
                    let _ = write!(
                        x,
                        ">\n      <error type=\"invalid\" message=\"{}\">{}</error>\n    </testcase>\n",
                        attr(message),
                        text_node(text)
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// Characters XML 1.0 does not allow at all, even as references: replaced.
fn allowed(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
        c => c,
    }
}

/// An attribute's value: markup and quotes escaped, line breaks and tabs as references (a
/// reader would turn them into spaces otherwise).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(allowed) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Element text: markup escaped.
fn text_node(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().map(allowed) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document parses back, with every count, name, place and message as written, text
    /// that needs escapes included.
    #[test]
    fn parses_back_with_what_was_written() {
        let tricky = "a <b> & \"c\" 'd'\n\ttab\r\u{1}";
        let suites = vec![
            Suite {
                name: "kubeadm-guide-1.30".into(),
                file: "scenarios/k/g.yaml".into(),
                cases: vec![
                    Case {
                        name: "component kube-apiserver started".into(),
                        line: Some(3),
                        result: CaseResult::Passed,
                    },
                    Case {
                        name: tricky.into(),
                        line: Some(9),
                        result: CaseResult::Failed {
                            message: tricky.into(),
                            text: format!("x:9:7: {tricky}"),
                        },
                    },
                ],
            },
            Suite {
                name: "scenarios/bad/x.yaml".into(),
                file: "scenarios/bad/x.yaml".into(),
                cases: vec![Case {
                    name: "load".into(),
                    line: None,
                    result: CaseResult::Error {
                        message: "invalid scenario".into(),
                        text: "error: <bad>\n --> x.yaml:1:1\n".into(),
                    },
                }],
            },
            Suite {
                name: "empty".into(),
                file: "e.yaml".into(),
                cases: vec![],
            },
        ];
        let xml = render(&suites);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(
            [
                root.attribute("tests"),
                root.attribute("failures"),
                root.attribute("errors")
            ],
            [Some("3"), Some("1"), Some("1")]
        );
        let got: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        assert_eq!(got.len(), 3);
        let s0 = got[0];
        assert_eq!(s0.attribute("name"), Some("kubeadm-guide-1.30"));
        assert_eq!(s0.attribute("file"), Some("scenarios/k/g.yaml"));
        let cases: Vec<_> = s0.children().filter(|n| n.is_element()).collect();
        assert_eq!(cases[0].attribute("classname"), Some("kubeadm-guide-1_30"));
        assert_eq!(cases[0].attribute("line"), Some("3"));
        assert!(cases[0].first_element_child().is_none());
        let replaced = tricky.replace('\u{1}', "\u{fffd}");
        assert_eq!(cases[1].attribute("name"), Some(replaced.as_str()));
        let failure = cases[1].first_element_child().expect("failure");
        assert_eq!(failure.tag_name().name(), "failure");
        assert_eq!(failure.attribute("message"), Some(replaced.as_str()));
        assert_eq!(failure.text(), Some(format!("x:9:7: {replaced}").as_str()));
        let error = got[1]
            .first_element_child()
            .and_then(|c| c.first_element_child())
            .expect("error");
        assert_eq!(error.tag_name().name(), "error");
        assert_eq!(error.text(), Some("error: <bad>\n --> x.yaml:1:1\n"));
        assert_eq!(got[2].attribute("tests"), Some("0"));
    }
}
