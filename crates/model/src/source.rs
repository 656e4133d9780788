//! The files a scenario is made of, and positions in them.
//!
//! A [`Span`] names a file by [`FileId`] and a byte range, with the 1-based line and column of
//! its start precomputed, so that diagnostics can be rendered without re-scanning the text.

use std::fmt;
use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A range of a source file. `line` and `col` are 1-based and count characters, as editors do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

/// A value together with where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned {
            value: f(self.value),
            span: self.span,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// One loaded file: its name as the user wrote it (for messages) and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// All files read for one scenario, in the order they were first read.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(
        &mut self,
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        text: String,
    ) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            name: name.into(),
            path: path.into(),
            text,
        });
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}

/// How `path:` references in a scenario are read. The CLI passes one backed by the
/// filesystem; tests may pass an in-memory one. Keeping this a trait is what lets the model
/// crate stay free of I/O.
pub trait FileLoader {
    /// Reads `path` (already resolved against the including file's directory).
    /// The error is a human-readable reason, e.g. "No such file or directory (os error 2)".
    fn load(&self, path: &Path) -> Result<String, String>;
}

/// A [`FileLoader`] over the real filesystem. It lives here, not in the CLI, only because it
/// is three lines; the core crates never construct it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}
