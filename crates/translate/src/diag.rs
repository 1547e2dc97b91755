//! Diagnostics: what translation dropped or replaced, and why.

use core::fmt;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Severity {
    /// Something was ignored the way Istio ignores it (a conflicting server, a route matching
    /// no port); the rest of the configuration is unaffected.
    Info,
    /// Part of the configuration was dropped or replaced because it cannot be translated.
    Warning,
    /// Envoy would reject a whole object (a listener or a route configuration).
    Error,
}

/// One note about the translation: where (a resource and a field path) and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// The resource, as `Kind namespace/name`, or a plan object name.
    pub resource: String,
    /// The field path inside the resource (`spec.http[0].match[1]`), or empty.
    pub path: String,
    /// What happened.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic.
    pub fn new(
        severity: Severity,
        resource: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            resource: resource.into(),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        if self.path.is_empty() {
            write!(f, "{level}: {}: {}", self.resource, self.message)
        } else {
            write!(
                f,
                "{level}: {}: {}: {}",
                self.resource, self.path, self.message
            )
        }
    }
}
