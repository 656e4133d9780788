//! Running `knetsim` in-process from the workspace root.

use std::path::{Path, PathBuf};

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The workspace root: scenario paths in snapshots are relative to it, as a user at the root
/// of a clone would type them.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Runs `knetsim <args>` with the workspace root as the current directory.
pub fn knetsim(args: &[&str]) -> Output {
    let _cwd = CwdGuard::enter(&root());
    let mut argv: Vec<std::ffi::OsString> = vec!["knetsim".into()];
    argv.extend(args.iter().map(Into::into));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = knetsim::main_with(argv, &mut out, &mut err);
    Output {
        code,
        stdout: String::from_utf8(out).expect("utf-8"),
        stderr: String::from_utf8(err).expect("utf-8"),
    }
}

/// Scenario files below `dir` (relative to the root), as `knetsim test` would find them.
pub fn scenario_files(dir: &str) -> Vec<String> {
    let _cwd = CwdGuard::enter(&root());
    let mut files = Vec::new();
    walk(Path::new(dir), &mut files);
    files.sort();
    files
}

fn walk(dir: &Path, files: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for e in entries {
        let name = e
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if e.is_dir() {
            if name != "manifests" && name != "bad" && name != "failing" {
                walk(&e, files);
            }
        } else if name.ends_with(".yaml") {
            files.push(e.to_string_lossy().into_owned());
        }
    }
}

/// Serializes tests that change the process's current directory.
static CWD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct CwdGuard {
    prev: PathBuf,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl CwdGuard {
    fn enter(dir: &Path) -> Self {
        let lock = CWD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let prev = std::env::current_dir().expect("cwd");
        std::env::set_current_dir(dir).expect("chdir");
        CwdGuard { prev, _lock: lock }
    }
}

impl Drop for CwdGuard {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.prev);
    }
}

/// insta settings that put snapshots under `snapshots/<sub>` at the workspace root.
pub fn snapshot_settings(sub: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(root().join("snapshots").join(sub));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}
