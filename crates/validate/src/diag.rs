//! Diagnostics: what validation and analysis report.

use core::fmt;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// The object is rejected (Istio's webhook refuses it).
    Error,
    /// The object is accepted, with a message.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// One finding: its severity, the field it is about, and a message close to Istio's own (tools
/// grep for those texts).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The field path, relative to what was validated (`spec.http[0].route[1].weight` for a
    /// whole resource; `retries.perTryTimeout` for a route).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.severity, self.message)
        } else {
            write!(f, "{}: {}: {}", self.severity, self.path, self.message)
        }
    }
}

/// Every error and warning found, in the order found. Like Istio, validation accumulates all
/// problems rather than stopping at the first.
///
/// ```
/// use portcullis_validate::{Diagnostics, Severity};
///
/// let mut found = Diagnostics::new();
/// found.warning("spec.exportTo", "something to look at");
/// assert!(found.is_valid());
/// found.error("spec.hosts[0]", "domain name \"\" too short");
/// assert!(!found.is_valid());
/// assert_eq!(found.errors().count(), 1);
/// assert_eq!(found.iter().next().map(|d| d.severity), Some(Severity::Warning));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error about the field at `path`.
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, path, message);
    }

    /// Records a warning about the field at `path`.
    pub fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, path, message);
    }

    /// Records a diagnostic.
    pub fn push(
        &mut self,
        severity: Severity,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            path: path.into(),
            message: message.into(),
        });
    }

    /// Appends another set of diagnostics.
    pub fn extend(&mut self, other: Self) {
        self.items.extend(other.items);
    }

    /// Appends another set of diagnostics, keeping only its errors (Istio drops the warnings of
    /// some sub-validations).
    pub fn extend_errors(&mut self, other: Self) {
        self.items.extend(
            other
                .items
                .into_iter()
                .filter(|d| d.severity == Severity::Error),
        );
    }

    /// Appends diagnostics found relative to a sub-object, prefixing their paths with `prefix`.
    pub fn extend_at(&mut self, prefix: &str, other: Self) {
        self.items.extend(other.items.into_iter().map(|mut d| {
            d.path = crate::path::join(prefix, &d.path);
            d
        }));
    }

    /// No error (warnings allowed): the object would be accepted.
    pub fn is_valid(&self) -> bool {
        !self.has_errors()
    }

    /// At least one error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// At least one warning.
    pub fn has_warnings(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Warning)
    }

    /// Nothing found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Every diagnostic, in order.
    pub fn iter(&self) -> core::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Takes the diagnostics out.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = core::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
