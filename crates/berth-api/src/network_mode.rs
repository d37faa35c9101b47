//! `HostConfig.NetworkMode` as a type: which network stack a container gets.

/// A parsed network mode; it borrows the string it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode<'a> {
    /// `""`, `default` or `bridge`: the default bridge network.
    Bridge,
    /// The host's own stack.
    Host,
    /// Only a loopback interface.
    None,
    /// `container:<name or id>`: another container's stack.
    Container(&'a str),
    /// A user-defined network, by name or id.
    Network(&'a str),
}

impl<'a> NetworkMode<'a> {
    pub fn parse(s: &'a str) -> NetworkMode<'a> {
        match s {
            "" | "default" | "bridge" => NetworkMode::Bridge,
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            s => match s.strip_prefix("container:") {
                Some(c) => NetworkMode::Container(c),
                None => NetworkMode::Network(s),
            },
        }
    }

    /// The network a container in this mode is first attached to (`bridge`, `host`, `none`
    /// or the user network); none for `container:`.
    pub fn network(&self) -> Option<&'a str> {
        match self {
            NetworkMode::Bridge => Some("bridge"),
            NetworkMode::Host => Some("host"),
            NetworkMode::None => Some("none"),
            NetworkMode::Container(_) => None,
            NetworkMode::Network(n) => Some(n),
        }
    }

    /// `host` and `container:`: the stack is someone else's, no sandbox of its own.
    pub fn shares_netns(&self) -> bool {
        matches!(self, NetworkMode::Host | NetworkMode::Container(_))
    }

    /// Whether the container gets interfaces on networks (and can be connected to more).
    pub fn has_endpoints(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Network(_))
    }
}

impl std::fmt::Display for NetworkMode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkMode::Container(c) => write!(f, "container:{c}"),
            m => f.write_str(m.network().unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_show() {
        for (s, m, shown) in [
            ("", NetworkMode::Bridge, "bridge"),
            ("default", NetworkMode::Bridge, "bridge"),
            ("host", NetworkMode::Host, "host"),
            ("none", NetworkMode::None, "none"),
            (
                "container:web",
                NetworkMode::Container("web"),
                "container:web",
            ),
            ("appnet", NetworkMode::Network("appnet"), "appnet"),
        ] {
            assert_eq!(NetworkMode::parse(s), m, "{s}");
            assert_eq!(m.to_string(), shown);
        }
        assert!(NetworkMode::Host.shares_netns() && !NetworkMode::None.shares_netns());
        assert!(NetworkMode::Network("x").has_endpoints() && !NetworkMode::None.has_endpoints());
    }
}
