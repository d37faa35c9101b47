//! The detach key sequence: docker's `--detach-keys` syntax and the watcher that spots it in
//! what the user types.

pub use berth_api::keys::DEFAULT_DETACH_KEYS;

/// `"ctrl-x,y"` → bytes, by the rule the daemon applies (berth_api::keys).
pub fn parse(keys: &str) -> Result<Vec<u8>, String> {
    berth_api::keys::parse_detach_keys(keys)
}

/// Refuses, before anything is created or started, keys the daemon would refuse at attach
/// time (docker's daemon message).
pub fn check(flag: Option<&str>) -> anyhow::Result<()> {
    match flag {
        Some(k) if parse(k).is_err() => {
            anyhow::bail!("{}", berth_api::keys::invalid_detach_keys(k))
        }
        _ => Ok(()),
    }
}

/// The keys to watch for given a `--detach-keys` value ([`check`]ed before).
pub fn resolve(flag: Option<&str>) -> Vec<u8> {
    flag.and_then(|k| parse(k).ok())
        .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_vec())
}

/// Watches typed input for the sequence. Like docker's escape proxy, keys that start the
/// sequence are held back until it is clear whether the sequence completes; if it does not,
/// they are sent on together with the key that broke it.
pub struct Escape {
    keys: Vec<u8>,
    pos: usize,
}

impl Escape {
    pub fn new(keys: Vec<u8>) -> Escape {
        Escape { keys, pos: 0 }
    }

    /// Returns what to forward to the container, and whether the whole sequence was typed
    /// (what follows it in `input` is dropped, as the session ends there).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.pos] {
                self.pos += 1;
                if self.pos == self.keys.len() {
                    self.pos = 0;
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.pos]);
                self.pos = 0;
                out.push(b);
            }
        }
        (out, false)
    }

    /// Keys held back when input ends: they were typed, so they go through.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = self.keys[..self.pos].to_vec();
        self.pos = 0;
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_docker_syntax() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-x,y").unwrap(), vec![24, b'y']);
        assert_eq!(
            parse("ctrl-@,ctrl-\\,ctrl-_,DEL,a").unwrap(),
            vec![0, 28, 31, 127, b'a']
        );
        assert_eq!(parse("ctrl-P").unwrap_err(), "Unknown character: 'ctrl-P'");
        assert_eq!(parse("ab").unwrap_err(), "Unknown character: 'ab'");
        // empty is the default, for the daemon as for the CLI
        assert_eq!(parse("").unwrap(), vec![16, 17]);
        assert!(check(Some("")).is_ok() && check(None).is_ok());
        let e = check(Some("DEL,ctrl-P")).unwrap_err().to_string();
        assert_eq!(e, "Invalid detach keys (DEL,ctrl-P) provided");
        assert_eq!(resolve(None), vec![16, 17]);
        assert_eq!(resolve(Some("")), vec![16, 17]);
        assert_eq!(resolve(Some("bogus")), vec![16, 17]);
        assert_eq!(resolve(Some("ctrl-a")), vec![1]);
    }

    #[test]
    fn sequence_in_one_read() {
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(b"ls\n\x10\x11after"), (b"ls\n".to_vec(), true));
    }

    #[test]
    fn sequence_across_reads_is_held_back() {
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(b"a\x10"), (b"a".to_vec(), false));
        assert_eq!(e.feed(b"\x11"), (vec![], true));
    }

    #[test]
    fn broken_sequence_is_released() {
        let mut e = Escape::new(vec![16, 17]);
        assert_eq!(e.feed(b"\x10"), (vec![], false));
        assert_eq!(e.feed(b"x"), (b"\x10x".to_vec(), false));
        // like docker, the key that broke a sequence does not start a new one
        assert_eq!(e.feed(b"\x10\x10\x11"), (b"\x10\x10\x11".to_vec(), false));
        assert_eq!(e.feed(b"\x10\x11"), (vec![], true));
    }

    #[test]
    fn held_keys_flushed_at_end() {
        let mut e = Escape::new(vec![24, b'y', b'z']);
        assert_eq!(e.feed(b"\x18y"), (vec![], false));
        assert_eq!(e.finish(), b"\x18y".to_vec());
        assert_eq!(e.feed(b"\x18yz"), (vec![], true));
    }

    #[test]
    fn single_key_sequence() {
        let mut e = Escape::new(vec![1]);
        assert_eq!(e.feed(b"ab\x01c"), (b"ab".to_vec(), true));
    }
}
