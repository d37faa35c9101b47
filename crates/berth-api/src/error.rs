//! The one error type of berth's libraries. `kind` says which HTTP status the API answers with; `message`
//! is Docker's wording where Docker has one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400
    InvalidParameter,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 409
    Conflict,
    /// 500: also what Docker answers for libnetwork's "bad request" errors, kept for parity.
    Internal,
    /// 501
    NotImplemented,
    /// 503: a service berth depends on (the cluster store) does not answer.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

macro_rules! ctor {
    ($name:ident, $kind:ident) => {
        pub fn $name(msg: impl Into<String>) -> Error {
            Error {
                kind: ErrorKind::$kind,
                message: msg.into(),
            }
        }
    };
}

impl Error {
    ctor!(invalid, InvalidParameter);
    ctor!(forbidden, Forbidden);
    ctor!(not_found, NotFound);
    ctor!(conflict, Conflict);
    ctor!(internal, Internal);
    ctor!(not_implemented, NotImplemented);
    ctor!(unavailable, Unavailable);
}
