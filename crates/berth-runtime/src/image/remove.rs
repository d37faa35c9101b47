//! `docker rmi`: untagging and deleting with Docker's rules and conflict messages
//! (daemon/images/image_delete.go). A container's image counts as in use whatever the
//! container's state, and an image in use is never deleted, forced or not: its layers are the
//! container's lower directories.

use super::layer::Layers;
use super::reference::short_id;
use super::store::Db;
use super::Removed;
use crate::{Error, Result};
use sha2::{Digest, Sha256};

/// Removes `reference` (already resolved to `id`). `by_id`: the user named the image by its id
/// rather than by a tag.
pub fn remove(
    db: &mut Db,
    layers: &Layers,
    reference: &str,
    tag: Option<&str>,
    id: &str,
    force: bool,
    user: Option<String>,
) -> Result<Removed> {
    let mut out = Removed::new();
    let tags = db.tags_of(id);
    match tag {
        Some(tag) => {
            if let Some(c) = &user {
                if tags.len() == 1 {
                    if !force {
                        return Err(Error::conflict(format!(
                            "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {}",
                            short_id(c),
                            short_id(id)
                        )));
                    }
                    // forced: the tag goes, the image stays for its container
                    db.untag(tag)?;
                    out.push(("Untagged".into(), tag.to_string()));
                    return Ok(out);
                }
            }
            db.untag(tag)?;
            out.push(("Untagged".into(), tag.to_string()));
            if tags.len() > 1 {
                return Ok(out);
            }
        }
        None => {
            if let Some(c) = &user {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    short_id(id),
                    short_id(c)
                )));
            }
            if tags.len() > 1 && !force {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short_id(id)
                )));
            }
            for t in &tags {
                db.untag(t)?;
                out.push(("Untagged".into(), t.clone()));
            }
        }
    }
    delete(db, layers, id, &mut out)?;
    Ok(out)
}

/// Deletes an untagged image and the layers no other image shares. Docker reports removed
/// layers by chain id, so berth does too.
fn delete(db: &mut Db, layers: &Layers, id: &str, out: &mut Removed) -> Result<()> {
    let diff_ids = db
        .images
        .get(id)
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    db.remove_image(id)?;
    out.push(("Deleted".into(), id.to_string()));
    let others: std::collections::HashSet<String> = db
        .images
        .values()
        .flat_map(|r| chain_ids(&r.diff_ids))
        .collect();
    for (diff, chain) in diff_ids.iter().zip(chain_ids(&diff_ids)) {
        if !others.contains(&chain) {
            out.push(("Deleted".into(), chain));
        }
        if db.layer_users(diff) == 0 {
            layers.remove(diff);
        }
    }
    Ok(())
}

/// The chain ids of a layer stack: the first is its diff id, each next one
/// `sha256(parent chain id + " " + diff id)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!("sha256:{:x}", Sha256::digest(format!("{parent} {d}"))),
        };
        out.push(next);
    }
    out
}
