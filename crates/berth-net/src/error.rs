//! The network library's errors: the shared `berth_api::Error` (kind = HTTP status, message =
//! Docker's wording), with conversions from this crate's lower layers.

pub use berth_api::error::{Error as NetError, ErrorKind};

pub type Result<T> = std::result::Result<T, NetError>;

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
