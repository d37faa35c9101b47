//! Container names: Docker's validity rule and its `adjective_scientist` generator.

use rand::seq::IndexedRandom;

const LEFT: &[&str] = &[
    "admiring",
    "brave",
    "clever",
    "dazzling",
    "eager",
    "festive",
    "gallant",
    "happy",
    "jolly",
    "keen",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "tender",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];
const RIGHT: &[&str] = &[
    "albattani",
    "babbage",
    "curie",
    "darwin",
    "euclid",
    "fermi",
    "galileo",
    "hopper",
    "hypatia",
    "johnson",
    "kepler",
    "lovelace",
    "mayer",
    "noether",
    "pasteur",
    "ritchie",
    "shannon",
    "thompson",
    "turing",
    "volta",
    "wozniak",
    "yonath",
    "zhukovsky",
];

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, optionally with Docker's leading `/`.
pub fn valid(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut b = n.bytes();
    match b.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    n.len() >= 2 && b.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    for i in 0.. {
        let mut n = format!(
            "{}_{}",
            LEFT.choose(&mut rng).unwrap(),
            RIGHT.choose(&mut rng).unwrap()
        );
        if i > 10 {
            n.push_str(&rand::random_range(0..100u32).to_string());
        }
        if !taken(&n) {
            return n;
        }
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_name_rule() {
        assert!(super::valid("container1"));
        assert!(super::valid("/web_1.a-b"));
        assert!(!super::valid("a"));
        assert!(!super::valid("bad/name"));
        assert!(!super::valid("_x"));
        let n = super::generate(|_| false);
        assert!(super::valid(&n) && n.contains('_'));
    }
}
