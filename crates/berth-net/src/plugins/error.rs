//! What can go wrong talking to a plugin, worded as Docker words it (`pkg/plugins`,
//! `plugin/store.go`, `drivers/remote`, `ipams/remote`).

use crate::error::NetError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// No socket, `.spec` or `.json` file named the plugin within the retry window.
    #[error("plugin \"{0}\" not found")]
    NotFound(String),
    /// A spec file that does not parse (`Unknown protocol`, unreadable file, bad JSON).
    #[error("legacy plugin: {0}")]
    Lookup(String),
    /// `Plugin.Activate` failed: the transport error, the plugin's error, or a bad manifest.
    #[error("legacy plugin: {0}")]
    Activation(Box<PluginError>),
    /// The manifest's `Implements` lacks the interface asked for.
    #[error("legacy plugin: Plugin does not implement the requested driver")]
    NotImplements { name: String, interface: String },
    /// The plugin is activated but its registration (GetCapabilities) failed or was invalid.
    #[error("could not resolve driver {0} in registry")]
    NotRegistered(String),
    /// The IPAM registration (GetDefaultAddressSpaces) failed.
    #[error("invalid ipam driver: \"{0}\"")]
    InvalidIpam(String),
    /// Go's `url.Error`: `Post "http://…/Method": dial unix …: connect: connection refused`.
    #[error("Post \"{url}\": {msg}")]
    Transport { url: String, msg: String },
    /// No reply within the call timeout (Go's `http.Client.Timeout` wording).
    #[error("Post \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")]
    Timeout { url: String },
    /// A non-200 reply: `<Interface>.<Method>: <Err or raw body>`.
    #[error("{method}: {msg}")]
    Status {
        method: String,
        status: u16,
        msg: String,
    },
    /// A 200 reply whose `Err` (network) or `Error` (IPAM) field is set.
    #[error("remote: {0}")]
    Remote(String),
    /// A 200 reply that is not the JSON the call expects (or too large).
    #[error("{method}: {msg}")]
    Reply { method: String, msg: String },
    /// A reply that decoded but whose values Docker refuses (`unable to parse Gateway "x"`,
    /// `driver modified interface address: …; rolled back`, `No address returned`).
    #[error("{0}")]
    Invalid(String),
}

impl PluginError {
    /// A non-200 reply with status 404: the plugin does not implement the method (optional
    /// methods such as ProgramExternalConnectivity count it as success).
    pub fn is_not_implemented(&self) -> bool {
        matches!(self, PluginError::Status { status: 404, .. })
    }

    /// Connection-level failures: the plugin is not (or no longer) reachable.
    pub fn is_unreachable(&self) -> bool {
        match self {
            PluginError::Transport { .. } | PluginError::NotFound(_) => true,
            PluginError::Activation(e) => e.is_unreachable(),
            _ => false,
        }
    }
}

impl From<PluginError> for NetError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::NotFound(_) => NetError::not_found(e.to_string()),
            _ => NetError::internal(e.to_string()),
        }
    }
}

/// Go's wording of an errno (`connection refused`, `no such file or directory`): the C
/// library's text with its first letter lowercased, without Rust's `(os error N)`.
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let full = std::io::Error::from_raw_os_error(n).to_string();
            let text = full.split(" (os error").next().unwrap_or(&full);
            let mut c = text.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn texts_are_dockers() {
        assert_eq!(
            PluginError::NotFound("foo".into()).to_string(),
            "plugin \"foo\" not found"
        );
        assert_eq!(
            NetError::from(PluginError::NotFound("foo".into())).kind,
            ErrorKind::NotFound
        );
        let e = PluginError::NotImplements {
            name: "x".into(),
            interface: "IpamDriver".into(),
        };
        assert_eq!(
            e.to_string(),
            "legacy plugin: Plugin does not implement the requested driver"
        );
        let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(errno_text(&refused), "connection refused");
        let missing = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(errno_text(&missing), "no such file or directory");
    }
}
