//! Image references the way Docker's `reference` package reads them: `name[:tag][@digest]`, with
//! Docker Hub names shortened to their familiar form (`docker.io/library/busybox` → `busybox`).

use crate::{Error, Result};

const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised reference. `name` is the familiar repository name (`busybox`,
/// `me/app`, `localhost:5000/app`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub tag: String,
    /// `sha256:...` when the reference pins a digest; berth keeps no registry digests, so such a
    /// reference never names a local image.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `s`, filling in the `latest` tag when none is given.
    pub fn parse(s: &str) -> Result<Reference> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(Error::invalid("invalid reference format"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = split_tag(rest);
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(Error::invalid("invalid reference format"));
            }
        }
        if is_full_id(name) {
            return Err(Error::invalid(format!(
                "invalid repository name ({name}), cannot specify 64-byte hexadecimal strings"
            )));
        }
        let name = familiar_name(name)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => t.to_string(),
            (None, Some(_)) => String::new(),
            (None, None) => DEFAULT_TAG.to_string(),
        };
        Ok(Reference { name, tag, digest })
    }

    /// `busybox:latest` (or `name@sha256:...` for digest references).
    pub fn familiar(&self) -> String {
        match (&self.digest, self.tag.is_empty()) {
            (Some(d), true) => format!("{}@{d}", self.name),
            (Some(d), false) => format!("{}:{}@{d}", self.name, self.tag),
            (None, _) => format!("{}:{}", self.name, self.tag),
        }
    }
}

/// The normalised `name:tag` for `repo` with `tag` overriding any tag in `repo` (the `repo` and
/// `tag` parameters of `POST /images/create` and `/images/{name}/tag`).
pub fn with_tag(repo: &str, tag: &str) -> Result<String> {
    let mut r = Reference::parse(repo)?;
    if r.digest.is_some() {
        return Err(Error::invalid("cannot import digest reference"));
    }
    if !tag.is_empty() {
        if !valid_tag(tag) {
            return Err(Error::invalid(format!("invalid tag format: {tag}")));
        }
        r.tag = tag.to_string();
    }
    Ok(r.familiar())
}

/// `name` and the tag after its last `:` that is not part of a registry's port.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    }
}

/// Docker Hub's canonical spellings reduced to the short one users type.
fn familiar_name(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::invalid("invalid reference format"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((d, p)) if d.contains(['.', ':']) || d == "localhost" || d != d.to_lowercase() => {
            (Some(d), p)
        }
        _ => (None, name),
    };
    if path != path.to_lowercase() {
        return Err(Error::invalid(
            "invalid reference format: repository name must be lowercase",
        ));
    }
    if !path.split('/').all(valid_component) {
        return Err(Error::invalid("invalid reference format"));
    }
    match domain {
        None | Some("docker.io") | Some("index.docker.io") => {
            let short = path.strip_prefix("library/").filter(|p| !p.contains('/'));
            Ok(short.unwrap_or(path).to_string())
        }
        Some(d) if valid_domain(d) => Ok(format!("{d}/{path}")),
        Some(_) => Err(Error::invalid("invalid reference format")),
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let host_ok = host.split('.').all(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    });
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(is_full_id)
}

/// 64 lowercase hex digits: an image id without its `sha256:`.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

pub fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The 12 hex digits Docker shows for an id (`sha256:` dropped).
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().familiar()
    }

    #[test]
    fn docker_hub_spellings_normalise() {
        for s in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox",
            "docker.io/busybox",
        ] {
            assert_eq!(norm(s), "busybox:latest", "{s}");
        }
        assert_eq!(norm("me/app:1.0"), "me/app:1.0");
        assert_eq!(norm("docker.io/me/app"), "me/app:latest");
        assert_eq!(norm("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(
            norm("registry.example.com/a/b:v2"),
            "registry.example.com/a/b:v2"
        );
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
    }

    #[test]
    fn bad_references_are_refused() {
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().message,
            "invalid reference format: repository name must be lowercase"
        );
        for s in [
            "",
            "a:",
            "a::b",
            "a/",
            "-a",
            "a..b",
            "a:b/c:d:e",
            "a@sha256:12",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?}");
        }
        let id = "a".repeat(64);
        assert!(Reference::parse(&id)
            .unwrap_err()
            .message
            .contains("cannot specify 64-byte hexadecimal strings"));
    }

    #[test]
    fn tag_override_and_digests() {
        assert_eq!(with_tag("busybox:1", "2").unwrap(), "busybox:2");
        assert_eq!(with_tag("busybox", "").unwrap(), "busybox:latest");
        let d = format!("busybox@sha256:{}", "0".repeat(64));
        assert_eq!(Reference::parse(&d).unwrap().familiar(), d);
        assert_eq!(
            short_id(&format!("sha256:{}", "ab".repeat(32))),
            "abababababab"
        );
    }
}
