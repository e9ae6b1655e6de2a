/// How a request to a lock service or storage ended, with the same meaning as
/// the history's completion types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion<T> {
    /// It happened.
    Ok(T),
    /// It certainly did not happen (e.g. the lock is busy, the lease was lost,
    /// storage rejected a fenced write).
    Fail(String),
    /// Unknown: a timeout or a broken connection. It may still take effect.
    Info(String),
}

impl<T> Completion<T> {
    /// Whether it happened.
    pub fn is_ok(&self) -> bool {
        matches!(self, Completion::Ok(_))
    }

    /// `"ok"`, `"fail"` or `"info"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Completion::Ok(_) => "ok",
            Completion::Fail(_) => "fail",
            Completion::Info(_) => "info",
        }
    }

    /// The reason of a `fail` or an `info`; None for `ok`.
    pub fn error(&self) -> Option<&str> {
        match self {
            Completion::Ok(_) => None,
            Completion::Fail(e) | Completion::Info(e) => Some(e),
        }
    }

    /// Maps the value of an `ok`, keeping the others as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Completion<U> {
        match self {
            Completion::Ok(t) => Completion::Ok(f(t)),
            Completion::Fail(e) => Completion::Fail(e),
            Completion::Info(e) => Completion::Info(e),
        }
    }
}

/// An error with its causes, `a: b: c`: a client library's own message alone
/// (reqwest's, say) hides whether the connection was refused or reset, which
/// decides between `fail` and `info`.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
