//! The README's examples are real: every ```console block that starts with `$ knetsim ...`
//! is run, and its output must be what the README shows. Set `KNETSIM_BLESS_README=1` to
//! rewrite the blocks with the current output (then read the diff before committing it).
//!
//! A command may end in `| head -n N` or `| tail -n N` (only those lines are shown and
//! compared) or
//! `; echo "exit status $?"` (the exit status is appended as that line).

use crate::harness::{knetsim, root};

struct Block {
    /// Line index of the `$ knetsim` line.
    command_line: usize,
    /// Line index of the closing fence.
    end: usize,
    command: String,
}

fn blocks(lines: &[&str]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```console"
            && i + 1 < lines.len()
            && lines[i + 1].starts_with("$ knetsim ")
        {
            let end = (i + 2..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .expect("closed fence");
            out.push(Block {
                command_line: i + 1,
                end,
                command: lines[i + 1][2..].to_owned(),
            });
            i = end;
        }
        i += 1;
    }
    out
}

/// Runs a README command line and renders what a terminal would show.
fn run(command: &str) -> String {
    let (command, show_status) = match command.strip_suffix("; echo \"exit status $?\"") {
        Some(c) => (c.trim_end(), true),
        None => (command, false),
    };
    let (command, head) = match command.split_once(" | head -n ") {
        Some((c, n)) => (c, Some(n.trim().parse::<usize>().expect("head count"))),
        None => (command, None),
    };
    let (command, tail) = match command.split_once(" | tail -n ") {
        Some((c, n)) => (c, Some(n.trim().parse::<usize>().expect("tail count"))),
        None => (command, None),
    };
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = knetsim(&args);
    let mut text = out.stdout;
    // Diagnostics go to stderr; the README shows them where a terminal would.
    text.push_str(&out.stderr);
    let mut lines: Vec<&str> = text.lines().collect();
    if let Some(n) = head {
        lines.truncate(n);
    }
    if let Some(n) = tail {
        lines = lines.split_off(lines.len().saturating_sub(n));
    }
    let mut shown = lines.join("\n");
    if show_status {
        if !shown.is_empty() {
            shown.push('\n');
        }
        shown.push_str(&format!("exit status {}", out.code));
    }
    shown
}

#[test]
fn readme_examples_show_real_output() {
    let path = root().join("README.md");
    let text = std::fs::read_to_string(&path).expect("README.md");
    let lines: Vec<&str> = text.lines().collect();
    let found = blocks(&lines);
    assert!(
        found.len() >= 6,
        "the README should show every subcommand; found {} examples",
        found.len()
    );
    let bless = std::env::var_os("KNETSIM_BLESS_README").is_some();
    let mut rewritten: Vec<String> = Vec::new();
    let mut cursor = 0;
    let mut mismatches = Vec::new();
    for b in &found {
        let want = lines[b.command_line + 1..b.end].join("\n");
        let got = run(&b.command);
        if got != want {
            mismatches.push(format!(
                "`{}`:\n--- README\n{want}\n--- actual\n{got}",
                b.command
            ));
        }
        rewritten.extend(lines[cursor..=b.command_line].iter().map(|s| s.to_string()));
        if !got.is_empty() {
            rewritten.push(got);
        }
        cursor = b.end;
    }
    rewritten.extend(lines[cursor..].iter().map(|s| s.to_string()));
    if bless {
        std::fs::write(&path, rewritten.join("\n") + "\n").expect("write README");
        return;
    }
    assert!(
        mismatches.is_empty(),
        "README examples are out of date (KNETSIM_BLESS_README=1 rewrites them):\n{}",
        mismatches.join("\n\n")
    );
}
