//! What is wrong with a spec file, and where: the errors the checker (`compile`) finds and the
//! loader (`load`) collects and prints, `file:line:col: message` then the offending line, the
//! way compilers do. Its own module so that the checker and the loader both depend on it, and
//! not on each other.

use std::fmt;

/// One problem in one spec file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file, as given to the loader.
    pub file: String,
    /// 1-based line, 0 when the problem is the whole file.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// The source line, for display.
    pub source_line: Option<String>,
}

impl SpecError {
    pub(super) fn at(file: &str, line: u64, column: u64, message: impl Into<String>) -> Self {
        Self { file: file.to_string(), line, column, message: message.into(), source_line: None }
    }

    pub(super) fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self::at(file, 0, 0, message)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message)?,
            (line, 0) => write!(f, "{}:{line}: {}", self.file, self.message)?,
            (line, col) => write!(f, "{}:{line}:{col}: {}", self.file, self.message)?,
        }
        if let Some(src) = &self.source_line {
            write!(f, "\n    | {src}")?;
            if self.column > 0 {
                write!(f, "\n    | {}^", " ".repeat(self.column as usize - 1))?;
            }
        }
        Ok(())
    }
}

/// Every problem found while loading a set of specs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}
