//! Container names: Docker's validity rule and its `adjective_scientist` generator.

use super::{Engine, Result};
use berth_net::NetError;
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

impl Engine {
    /// `POST /containers/{id}/rename`, with Docker's checks and messages. docker-compose renames
    /// a stopped container out of the way when it recreates it. A running one is renamed in
    /// the embedded DNS too: peers resolve the new name, no longer the old (as Docker's).
    pub async fn rename_container(&self, key: &str, new: &str) -> Result<()> {
        let new = new.strip_prefix('/').unwrap_or(new);
        if key.is_empty() || new.is_empty() {
            return Err(NetError::invalid("Neither old nor new names may be empty"));
        }
        if !valid(new) {
            return Err(NetError::invalid(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let c = self.find(key)?;
        let _op = c.op.lock().await;
        let old = {
            let ctrs = self.ctrs.lock().unwrap();
            let old = c.rec.lock().unwrap().name.clone();
            if old == new {
                return Err(NetError::invalid(
                    "Renaming a container with the same name as its current name",
                ));
            }
            if let Some(other) = ctrs.values().find(|o| o.rec.lock().unwrap().name == new) {
                return Err(NetError::conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
            // under the registry lock, so no create can take the name in between
            c.rec.lock().unwrap().name = new.to_string();
            old
        };
        let rec = c.snapshot();
        // A running container's endpoints answer to the new name in the embedded DNS (and
        // no longer to the old one), committed with the record in one transaction.
        let saved = if rec.running() && !rec.shares_netns() {
            serde_json::to_vec(&rec)
                .map_err(|e| NetError::internal(e.to_string()))
                .and_then(|bytes| {
                    let with = [(super::record::CONTAINERS, rec.id.clone(), bytes)];
                    self.net.rename_container(&rec.id, new, &with)
                })
        } else {
            self.persist(&rec)
        };
        if let Err(e) = saved {
            c.rec.lock().unwrap().name = old;
            return Err(e);
        }
        c.bump();
        self.relink(&rec.id, &old, new);
        Ok(())
    }

    /// Links follow their target (Docker keeps them by container): the containers linked to
    /// `old` now name `new`, under the same alias, in Docker's form (`/new:/parent/alias`).
    /// Their `/etc/hosts` lines keep the alias and the old name until they restart, as Docker's.
    fn relink(&self, id: &str, old: &str, new: &str) {
        let others: Vec<_> = self.ctrs.lock().unwrap().values().cloned().collect();
        for o in others.iter().filter(|o| o.id != id) {
            let hit = |l: &String| {
                berth_net::resolver::names::parse_link(l)
                    .filter(|(_, t)| t.eq_ignore_ascii_case(old))
            };
            if !o
                .snapshot()
                .host_config
                .links
                .iter()
                .flatten()
                .any(|l| hit(l).is_some())
            {
                continue;
            }
            let _ = self.update(o, |r| {
                let parent = r.name.clone();
                for l in r.host_config.links.iter_mut().flatten() {
                    if let Some((alias, _)) = hit(l) {
                        *l = format!("/{new}:/{parent}/{alias}");
                    }
                }
            });
        }
    }
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
