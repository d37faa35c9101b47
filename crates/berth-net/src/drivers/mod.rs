//! Network drivers. `bridge` is the one users create; `host` and `null` exist only as the
//! predefined `host` and `none` networks.

pub mod bridge;

pub const BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NULL: &str = "null";
