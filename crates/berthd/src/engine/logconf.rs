//! `HostConfig.LogConfig`: Docker's checks of the log driver and its options at create, and
//! the form inspect shows. berth keeps every container's output in its own log (read by
//! `logs`), which serve the file drivers Docker reads back (`json-file`, `local`).

use super::Result;
use berth_api::LogConfig;
use berth_net::NetError;

/// The daemon's default driver, shown when the client left `Type` empty.
pub const DEFAULT_DRIVER: &str = "json-file";

/// The drivers berth's log files stand in for.
const SERVED: &[&str] = &["json-file", "local"];

/// Docker's driver that keeps nothing: accepted, and `logs` refuses to read (as Docker).
pub const NONE: &str = "none";

/// Docker's other built-in drivers: known, but berth does not ship logs anywhere.
const DOCKER_ONLY: &[&str] = &[
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// The options moby's `json-file` and `local` drivers take (`ValidateLogOpt`).
fn known_opt(driver: &str, key: &str) -> bool {
    let common = [
        "max-file",
        "max-size",
        "compress",
        "mode",
        "max-buffer-size",
    ];
    let json_only = ["labels", "labels-regex", "env", "env-regex", "tag"];
    common.contains(&key) || (driver == "json-file" && json_only.contains(&key))
}

/// Docker's create-time check (`logger.ValidateLogOpts`), as a 400.
pub fn check(lc: &LogConfig) -> Result<()> {
    let driver = if lc.r#type.is_empty() {
        DEFAULT_DRIVER
    } else {
        lc.r#type.as_str()
    };
    if DOCKER_ONLY.contains(&driver) {
        return Err(NetError::invalid(format!(
            "berth does not support the {driver} log driver: container output is kept in berth's own log files (json-file, local)"
        )));
    }
    if driver == NONE {
        return Ok(());
    }
    if !SERVED.contains(&driver) {
        return Err(NetError::invalid(format!(
            "logger: no log driver named '{driver}' is registered"
        )));
    }
    for k in lc.config.iter().flatten().map(|(k, _)| k) {
        if !known_opt(driver, k) {
            return Err(NetError::invalid(format!(
                "unknown log opt '{k}' for {driver} log driver"
            )));
        }
    }
    Ok(())
}

/// As inspect shows it: the default driver named, `Config` an object (`{}` when none).
pub fn shown(lc: &LogConfig) -> LogConfig {
    LogConfig {
        r#type: if lc.r#type.is_empty() {
            DEFAULT_DRIVER.to_string()
        } else {
            lc.r#type.clone()
        },
        config: Some(lc.config.clone().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lc(t: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            r#type: t.into(),
            config: Some(
                opts.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn drivers_and_options() {
        assert!(check(&lc("", &[("max-file", "100")])).is_ok());
        assert!(check(&lc("json-file", &[("labels", "a")])).is_ok());
        assert_eq!(
            check(&lc("asdf", &[])).unwrap_err().message,
            "logger: no log driver named 'asdf' is registered"
        );
        assert_eq!(
            check(&lc("json-file", &[("bogus", "1")]))
                .unwrap_err()
                .message,
            "unknown log opt 'bogus' for json-file log driver"
        );
        assert!(check(&lc("local", &[("labels", "a")])).is_err());
        assert!(check(&lc("syslog", &[]))
            .unwrap_err()
            .message
            .contains("syslog"));
        let shown = shown(&LogConfig::default());
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            serde_json::json!({"Type": "json-file", "Config": {}})
        );
    }
}
