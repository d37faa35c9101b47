//! Docker's detach-keys syntax (`moby/term.ToBytes`), one rule for the daemon that matches the
//! keys and the CLI that checks them before it creates or starts anything.

/// ctrl-p, ctrl-q
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// Names of the control characters 0..=31, as `moby/term.ToBytes` knows them.
const CTRL: [&str; 32] = [
    "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
    "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
    "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
];

/// `"ctrl-x,y"` → bytes: each comma-separated item is one byte, a `ctrl-` name or `DEL`; the
/// empty string is the default. Errors read like docker's (`Unknown character: 'x'`).
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    if keys.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    let mut codes = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            codes.push(key.as_bytes()[0]);
        } else if let Some(code) = CTRL.iter().position(|c| *c == key) {
            codes.push(code as u8);
        } else if key == "DEL" {
            codes.push(127);
        } else {
            return Err(format!("Unknown character: '{key}'"));
        }
    }
    Ok(codes)
}

/// The daemon's refusal, in Docker's words.
pub fn invalid_detach_keys(keys: &str) -> String {
    format!("Invalid detach keys ({keys}) provided")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_syntax() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-x,y").unwrap(), vec![24, b'y']);
        assert_eq!(parse_detach_keys("DEL,ctrl-@").unwrap(), vec![127, 0]);
        assert_eq!(parse_detach_keys("ctrl-\\").unwrap(), vec![28]);
        for bad in ["ctrl-", "ctrl-A", " ctrl-a", "ab", "a,,b", "é"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }
}
