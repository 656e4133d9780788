//! Field errors and API status errors, rendered the way kube-apiserver renders them.
//!
//! Sources: `apimachinery/pkg/util/validation/field/errors.go` (`Error.ErrorBody`, `ToAggregate`),
//! `apimachinery/pkg/util/errors/errors.go` (`aggregate.Error`) and
//! `apimachinery/pkg/api/errors/errors.go` (`NewInvalid`, `NewInternalError`, `NewAlreadyExists`).
//!
//! `ErrorBody` prints the bad value according to its Go type, and Kubernetes passes Go values of
//! several types: plain strings print with `%q`, integers with `%v`, nil pointers as `null`,
//! slices and named string types with `%#v` (so `[]string{"10.0.0.1", "2000::1"}` and
//! `[]core.IPFamily{"IPv4"}`; a named string such as an `IPFamilyPolicy` prints like a plain
//! string). [`BadValue`] names those Go shapes so that every message is rendered exactly.

use std::fmt::Write as _;

/// The Go value a field error carries, by the shape `ErrorBody` prints it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    /// A `string` or a named string type (`%q` and `%#v` print these alike).
    Str(String),
    /// A `[]string`; `None` is a nil slice.
    Strings(Option<Vec<String>>),
    /// A `[]core.IPFamily` (internal API type, hence the `core.` package name); `None` is nil.
    Families(Option<Vec<String>>),
    /// An `int`, `int32` or `int64`.
    Int(i64),
    /// A nil pointer.
    Null,
    /// A pre-rendered `%#v` (Go structs such as `core.ServicePort`).
    Raw(String),
}

impl BadValue {
    fn render(&self) -> String {
        match self {
            BadValue::Str(s) => go_quote(s),
            BadValue::Strings(v) => go_slice("[]string", v.as_deref()),
            BadValue::Families(v) => go_slice("[]core.IPFamily", v.as_deref()),
            BadValue::Int(i) => i.to_string(),
            BadValue::Null => "null".to_string(),
            BadValue::Raw(s) => s.clone(),
        }
    }
}

/// `%#v` of a string slice: `[]string{"a", "b"}`, `[]string{}` or `[]string(nil)`.
fn go_slice(type_name: &str, items: Option<&[String]>) -> String {
    match items {
        None => format!("{type_name}(nil)"),
        Some(items) => {
            let inner: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
            format!("{type_name}{{{}}}", inner.join(", "))
        }
    }
}

/// Go's `%q` for a string: double-quoted, with Go escapes for quotes, backslashes and
/// non-printable characters (printable Unicode is kept as is, as `strconv.Quote` does).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The kinds of field error Kubernetes' Service validation produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    Internal,
}

impl ErrorType {
    /// `ErrorType.String()`.
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// One `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, value: BadValue, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Invalid,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Required,
            field: field.into(),
            value: BadValue::Str(String::new()),
            detail: detail.into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Forbidden,
            field: field.into(),
            value: BadValue::Str(String::new()),
            detail: detail.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: BadValue) -> Self {
        FieldError {
            kind: ErrorType::Duplicate,
            field: field.into(),
            value,
            detail: String::new(),
        }
    }

    /// `field.NotSupported`: the detail lists the valid values, each `strconv.Quote`d.
    pub fn not_supported(field: impl Into<String>, value: BadValue, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            kind: ErrorType::NotSupported,
            field: field.into(),
            value,
            detail,
        }
    }

    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Internal,
            field: field.into(),
            value: BadValue::Null,
            detail: detail.into(),
        }
    }

    /// `Error.ErrorBody()`: Required, Forbidden and Internal errors never print the value.
    pub fn body(&self) -> String {
        let mut s = match self.kind {
            ErrorType::Required | ErrorType::Forbidden | ErrorType::Internal => {
                self.kind.as_str().to_string()
            }
            _ => format!("{}: {}", self.kind.as_str(), self.value.render()),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// `Error.Error()`: `<field>: <body>`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

/// `ErrorList.ToAggregate().Error()`: duplicates (by message) dropped, one error printed bare,
/// several as `[e1, e2]`.
pub fn aggregate(errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.message();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// An error the API server returns for a request, as kubectl prints it after
/// `Error from server (<reason>): error when creating "<file>": `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The `metav1.StatusReason`: "Invalid", "AlreadyExists", "InternalError", "NotFound".
    pub reason: &'static str,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// `errors.NewInvalid(api.Kind("Service"), name, errs)`.
    pub fn invalid(name: &str, errs: &[FieldError]) -> ApiError {
        let agg = aggregate(errs);
        let message = if agg.is_empty() {
            format!("Service {} is invalid", go_quote(name))
        } else {
            format!("Service {} is invalid: {agg}", go_quote(name))
        };
        ApiError {
            reason: "Invalid",
            message,
        }
    }

    /// `errors.NewInternalError(err)`.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        ApiError {
            reason: "InternalError",
            message: format!("Internal error occurred: {err}"),
        }
    }

    /// `errors.NewAlreadyExists(api.Resource("services"), name)`.
    pub fn already_exists(name: &str) -> ApiError {
        ApiError {
            reason: "AlreadyExists",
            message: format!("services {} already exists", go_quote(name)),
        }
    }

    /// `errors.NewNotFound(api.Resource("services"), name)`.
    pub fn not_found(name: &str) -> ApiError {
        ApiError {
            reason: "NotFound",
            message: format!("services {} not found", go_quote(name)),
        }
    }
}
