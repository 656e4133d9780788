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

    /// The file `id` names. Panics on an id from another map: every diagnostic of a run
    /// points into the one map the run's files were loaded into (see [`SourceMap::try_get`]).
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// The file `id` names, or `None` for an id this map never gave out.
    pub fn try_get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}

/// Why a file could not be read. The model turns each into a located diagnostic at the
/// `path:` that named the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The operating system's reason, e.g. "No such file or directory (os error 2)".
    Io(String),
    /// The file is outside every directory the loader may read (the scenario's own tree and
    /// those the user allowed). Nothing of the file was read.
    Outside {
        /// The path after resolving symbolic links, as far as it could be resolved.
        resolved: PathBuf,
        /// The directories the loader may read.
        allowed: Vec<PathBuf>,
    },
    /// The file is larger than [`crate::limits::MAX_FILE_BYTES`]; nothing of it was read.
    TooLarge { bytes: u64 },
}

/// How `path:` references in a scenario are read. The CLI passes one backed by the
/// filesystem; tests may pass an in-memory one. Keeping this a trait is what lets the model
/// crate stay free of I/O.
pub trait FileLoader {
    /// Reads `path` (already resolved against the including file's directory).
    /// The error is a human-readable reason, e.g. "No such file or directory (os error 2)".
    fn load(&self, path: &Path) -> Result<String, String>;

    /// Reads `path` as bytes. The model decodes them itself, so that text that is not UTF-8
    /// is reported at the line and column where it stops being UTF-8. The default reads
    /// through [`FileLoader::load`].
    fn load_bytes(&self, path: &Path) -> Result<Vec<u8>, LoadError> {
        self.load(path)
            .map(String::into_bytes)
            .map_err(LoadError::Io)
    }
}

/// A [`FileLoader`] over the real filesystem, unconfined: it reads any path it is given, up
/// to [`crate::limits::MAX_FILE_BYTES`]. The CLI wraps reads in a confinement of its own (a
/// scenario may only name files under its own directory); tests and tools use this one. It
/// lives here, not in the CLI, only because it is short; the core crates never construct it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn load_bytes(&self, path: &Path) -> Result<Vec<u8>, LoadError> {
        read_capped(path)
    }
}

/// Reads a file of at most [`crate::limits::MAX_FILE_BYTES`]: the size is checked before
/// reading, and the read stops one byte past the cap (a file that grows meanwhile, or a
/// device such as `/dev/zero` whose size says nothing).
pub fn read_capped(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let cap = crate::limits::MAX_FILE_BYTES;
    let file = std::fs::File::open(path).map_err(|e| LoadError::Io(e.to_string()))?;
    let meta = file.metadata().map_err(|e| LoadError::Io(e.to_string()))?;
    if meta.is_dir() {
        return Err(LoadError::Io("Is a directory (os error 21)".to_string()));
    }
    if meta.len() > cap {
        return Err(LoadError::TooLarge { bytes: meta.len() });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::Io(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(LoadError::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    Ok(bytes)
}
