//! Network drivers. `bridge` is the one users create locally; `host` and `null` exist only as
//! the predefined `host` and `none` networks; `overlay` spans hosts through the cluster store.

pub mod bridge;
pub mod overlay;

pub const BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NULL: &str = "null";
pub const OVERLAY: &str = "overlay";

/// Where a driver's networks live: one host, or every host of the cluster store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

/// The built-in drivers, as a type: what a network's `driver` string means to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bridge,
    Host,
    Null,
    Overlay,
}

impl Kind {
    pub fn of(driver: &str) -> Option<Kind> {
        Some(match driver {
            BRIDGE => Kind::Bridge,
            HOST => Kind::Host,
            NULL => Kind::Null,
            OVERLAY => Kind::Overlay,
            _ => return None,
        })
    }

    /// GetCapabilities in libnetwork's terms.
    pub fn scope(self) -> Scope {
        match self {
            Kind::Overlay => Scope::Global,
            _ => Scope::Local,
        }
    }

    /// Whether containers get interfaces on its networks.
    pub fn has_endpoints(self) -> bool {
        matches!(self, Kind::Bridge | Kind::Overlay)
    }
}
