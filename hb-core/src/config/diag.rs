//! Diagnostics: every complaint about a configuration names the file, the line
//! and the field, so an operator can go straight to it. Errors stop the agent;
//! warnings are kept in `Config::warnings` and logged at start-up.
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub severity: Severity,
    /// The file as the caller named it (not canonicalised), so messages match
    /// what the operator typed.
    pub file: PathBuf,
    /// 1-based; None when the problem is about the file as a whole or about
    /// something that is missing from it.
    pub line: Option<usize>,
    /// The directive (ha.cf), resource (haresources) or key (TOML) concerned.
    pub field: Option<String>,
    pub message: String,
}

impl Diag {
    pub fn error(file: &Path, message: impl Into<String>) -> Diag {
        Diag::new(Severity::Error, file, message)
    }

    pub fn warning(file: &Path, message: impl Into<String>) -> Diag {
        Diag::new(Severity::Warning, file, message)
    }

    fn new(severity: Severity, file: &Path, message: impl Into<String>) -> Diag {
        Diag {
            severity,
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
        }
    }

    /// Builder: the 1-based line the problem is on.
    pub fn at(mut self, line: usize) -> Diag {
        self.line = Some(line);
        self
    }

    /// Builder: like `at`, for callers that may not know the line.
    pub fn at_opt(mut self, line: Option<usize>) -> Diag {
        self.line = line;
        self
    }

    /// Builder: the directive or key concerned.
    pub fn field(mut self, field: impl Into<String>) -> Diag {
        self.field = Some(field.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `ha.cf:12: keepalive: expected a duration such as 2, 0.5 or 500ms, found "abc"`.
/// The severity is not printed: callers group or prefix as they see fit.
impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

pub fn has_errors(diags: &[Diag]) -> bool {
    diags.iter().any(Diag::is_error)
}
