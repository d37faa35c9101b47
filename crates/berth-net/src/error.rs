//! The library's one error type. `kind` says which HTTP status the API answers with; `message`
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NetError {}

pub type Result<T> = std::result::Result<T, NetError>;

macro_rules! ctor {
    ($name:ident, $kind:ident) => {
        pub fn $name(msg: impl Into<String>) -> NetError {
            NetError {
                kind: ErrorKind::$kind,
                message: msg.into(),
            }
        }
    };
}

impl NetError {
    ctor!(invalid, InvalidParameter);
    ctor!(forbidden, Forbidden);
    ctor!(not_found, NotFound);
    ctor!(conflict, Conflict);
    ctor!(internal, Internal);
    ctor!(not_implemented, NotImplemented);
}

impl From<crate::store::StoreError> for NetError {
    fn from(e: crate::store::StoreError) -> Self {
        NetError::internal(e.to_string())
    }
}

impl From<crate::osl::OslError> for NetError {
    fn from(e: crate::osl::OslError) -> Self {
        NetError::internal(e.to_string())
    }
}

impl From<crate::firewall::FwError> for NetError {
    fn from(e: crate::firewall::FwError) -> Self {
        NetError::internal(format!("firewall: {e}"))
    }
}
