//! berth's container runtime: images and their layers, per-container root filesystems, OCI
//! bundles, and the supervision of containers run by runc. It knows nothing of networks: the
//! engine in berthd hands it a prepared network namespace.

pub mod container;
pub mod image;

pub use berth_api::error::{Error, ErrorKind};
pub type Result<T> = std::result::Result<T, Error>;
