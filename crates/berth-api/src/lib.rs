//! Docker Engine API (v1.41) wire types, shared by berthd and its clients.
//!
//! Field names, order and `null`-vs-`{}` choices follow what a real Docker 20.10 daemon emits, so
//! the docker CLI and libraries such as bollard decode them unchanged.

pub mod container;
pub mod error;
pub mod fd;
pub mod keys;
pub mod network;
pub mod network_mode;
pub mod system;
pub mod units;

pub use container::*;
pub use network::*;
pub use network_mode::NetworkMode;
pub use system::*;

use serde::{Deserialize, Serialize};

/// The API version berth speaks, and the oldest a client may ask for.
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.12";

/// `{"message": "..."}`: the body of every error reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}
