//! Load errors and warnings, each located by file, line, column and field path.

use core::fmt;

/// Where a problem is: the file, the document, the position and the field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) file: String,
    pub(crate) document: usize,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) path: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        Ok(())
    }
}

/// What kind of problem stopped a document from loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not well-formed YAML or JSON, or repeats a mapping key.
    Syntax,
    /// A field the schema does not have.
    UnknownField,
    /// A value of the wrong type, an unknown enumeration value, two branches of a oneof, an
    /// unparsable duration, …
    InvalidValue,
    /// A field the document must have (`apiVersion`, `kind`).
    MissingField,
    /// The input exceeds a limit of [`crate::LoadOptions`].
    Limit,
}

/// Why one document (or file) did not load.
///
/// Its `Display` reads `file:line:column: field.path: message`, for example
/// `gw.yaml:13:13: spec.servers[0].tls.mode: unknown variant `SIMPL`, expected one of …`. The
/// message text is for people; match on [`LoadError::kind`] and [`LoadError::path`] in code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    place: Place,
    kind: LoadErrorKind,
    message: String,
}

impl LoadError {
    pub(crate) fn new(place: Place, kind: LoadErrorKind, message: impl Into<String>) -> Self {
        Self {
            place,
            kind,
            message: message.into(),
        }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.place.file
    }

    /// The 0-based index of the document in its file's stream.
    pub fn document(&self) -> usize {
        self.place.document
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.place.line
    }

    /// The 1-based column (in characters), when known.
    pub fn column(&self) -> Option<usize> {
        self.place.column
    }

    /// The field path (`spec.http[0].route[1].destination.port.number`); empty for problems of
    /// the whole file or document.
    pub fn path(&self) -> &str {
        &self.place.path
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> LoadErrorKind {
        self.kind
    }

    /// The message alone, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.place, self.message)
    }
}

impl std::error::Error for LoadError {}

/// Every error of a load: the loader does not stop at the first bad document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadErrors {
    errors: Vec<LoadError>,
}

impl LoadErrors {
    pub(crate) fn new(errors: Vec<LoadError>) -> Self {
        Self { errors }
    }

    /// The errors, in file and document order (never empty).
    pub fn errors(&self) -> &[LoadError] {
        &self.errors
    }

    /// Takes the errors out.
    pub fn into_errors(self) -> Vec<LoadError> {
        self.errors
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// A problem that did not stop a document from loading: an unknown field in lenient mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadWarning {
    place: Place,
    message: String,
}

impl LoadWarning {
    pub(crate) fn new(place: Place, message: impl Into<String>) -> Self {
        Self {
            place,
            message: message.into(),
        }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.place.file
    }

    /// The 0-based index of the document in its file's stream.
    pub fn document(&self) -> usize {
        self.place.document
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        self.place.line
    }

    /// The 1-based column, when known.
    pub fn column(&self) -> Option<usize> {
        self.place.column
    }

    /// The field path.
    pub fn path(&self) -> &str {
        &self.place.path
    }

    /// The message alone, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.place, self.message)
    }
}
