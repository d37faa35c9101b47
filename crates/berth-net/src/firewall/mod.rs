//! berth's firewall: one nftables table of its own (family `inet`), driven
//! in-process through libnftables.
//!
//! The table's rules are fixed and written once by [`Firewall::init`]; every
//! network is represented only by elements of a few sets, so adding or
//! removing a network is a constant number of element operations in one
//! atomic transaction, never a rule rewrite. See [`ruleset`] for the exact
//! table and the reasoning behind it. Published ports are map elements in the
//! same table, added and removed the same way ([`ports`]).

pub(crate) mod nft;
pub mod ports;
pub mod ruleset;

use std::fmt;

pub use nft::LIBRARY;

/// What the firewall needs to know about a bridge network.
#[derive(Debug, Clone, PartialEq)]
pub struct FwNetwork {
    /// Name of the network's Linux bridge (e.g. `br-0123456789ab`).
    pub bridge: String,
    /// `--internal`: the network reaches nothing outside itself.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade` (ignored when internal).
    pub masquerade: bool,
    /// `com.docker.network.bridge.enable_icc`: containers of the network may
    /// talk to each other. Enforcing `false` needs bridged traffic to reach
    /// the IP `forward` hook, i.e. `br_netfilter` with
    /// `net.bridge.bridge-nf-call-iptables=1` (as with Docker).
    pub icc: bool,
}

/// Errors of the firewall.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FwError {
    #[error("nftables library {library} not found: install the nftables package ({detail})")]
    LibraryNotFound { library: String, detail: String },
    #[error("nftables library {library} is not usable (too old or not libnftables?): {detail}")]
    LibraryIncompatible { library: String, detail: String },
    #[error("could not create an nftables context: {0}")]
    Context(&'static str),
    #[error("invalid bridge name {name:?}: {reason}")]
    InvalidBridgeName { name: String, reason: &'static str },
    #[error("invalid nftables table name {name:?}: {reason}")]
    InvalidTableName { name: String, reason: &'static str },
    #[error("nftables table inet {table} does not exist: the firewall is not initialized")]
    NotInitialized { table: String },
    #[error("nftables: {action} failed: {message}")]
    Nft { action: String, message: String },
    #[error("unexpected output from nftables: {0}")]
    UnexpectedOutput(String),
}

/// berth's view of the host firewall.
pub trait Firewall: Send + Sync {
    /// Makes the table exist with its sets, chains and rules. Idempotent;
    /// keeps every element already present (a restarted daemon keeps its
    /// state) and never duplicates rules.
    fn init(&self) -> Result<(), FwError>;
    /// Puts a network in the firewall, in one transaction. Idempotent;
    /// re-adding with different flags updates them.
    fn add_network(&self, n: &FwNetwork) -> Result<(), FwError>;
    /// Takes a network's bridge out of the firewall, in one transaction.
    /// Only `n.bridge` matters: every element for that bridge is removed,
    /// whatever flags it was added with. Removing an absent network is fine.
    fn remove_network(&self, n: &FwNetwork) -> Result<(), FwError>;
    /// Bridges currently in the table, sorted (for reconciliation at start).
    fn bridges(&self) -> Result<Vec<String>, FwError>;
    /// Deletes the whole table. Succeeds when it does not exist.
    fn teardown(&self) -> Result<(), FwError>;
    /// Adds published-port elements, in one transaction. Idempotent.
    fn publish(&self, elems: &[ports::Elem]) -> Result<(), FwError> {
        let _ = elems;
        Ok(())
    }
    /// Removes published-port elements, in one transaction; absent ones are fine.
    fn unpublish(&self, elems: &[ports::Elem]) -> Result<(), FwError> {
        let _ = elems;
        Ok(())
    }
    /// Makes the port maps hold exactly `elems`, in one transaction (at start, from the
    /// records: stale elements go, missing ones come back).
    fn reset_ports(&self, elems: &[ports::Elem]) -> Result<(), FwError> {
        let _ = elems;
        Ok(())
    }
    /// Deletes the table and recreates it empty.
    fn reset(&self) -> Result<(), FwError> {
        self.teardown()?;
        self.init()
    }
}

/// [`Firewall`] backed by nftables through libnftables (no child process).
///
/// Bound to the network namespace of the thread that creates it.
pub struct Nftables {
    table: String,
    ctx: nft::Context,
}

impl fmt::Debug for Nftables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nftables")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Nftables {
    /// Default table name.
    pub const DEFAULT_TABLE: &'static str = "berth";

    /// Loads libnftables (once per process) and opens a context for table
    /// `inet <table>`. Touches no kernel state.
    pub fn new(table: &str) -> Result<Self, FwError> {
        ruleset::validate_table(table)?;
        Ok(Nftables {
            table: table.to_string(),
            ctx: nft::Context::new()?,
        })
    }

    /// Name of the table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether the table exists.
    pub fn table_exists(&self) -> Result<bool, FwError> {
        let out = self.ctx.run_json(&ruleset::list_tables_command())?;
        if !out.ok {
            return Err(nft_error("listing tables", &out.error));
        }
        ruleset::parse_has_table(&out.output, &self.table)
    }

    /// Runs `script` as one transaction. `needs_table`: a failure while the
    /// table is missing is reported as [`FwError::NotInitialized`].
    fn apply(&self, action: &str, script: &str, needs_table: bool) -> Result<(), FwError> {
        const SHOWN: usize = 4096;
        if script.len() <= SHOWN {
            tracing::debug!(table = %self.table, "nft: {action}:\n{script}");
        } else {
            let cut = script.floor_char_boundary(SHOWN);
            let more = script.len() - cut;
            tracing::debug!(table = %self.table, "nft: {action}:\n{}... ({more} more bytes)", &script[..cut]);
        }
        let out = self.ctx.run(script)?;
        if script.len() > BIG_SCRIPT {
            give_back_memory();
        }
        if out.ok {
            return Ok(());
        }
        if needs_table && !self.table_exists().unwrap_or(true) {
            return Err(self.not_initialized());
        }
        Err(nft_error(action, &out.error))
    }

    fn not_initialized(&self) -> FwError {
        FwError::NotInitialized {
            table: self.table.clone(),
        }
    }
}

/// Scripts beyond this size (thousands of elements) leave libnftables' parse trees behind
/// in the allocator's free lists.
const BIG_SCRIPT: usize = 64 * 1024;

/// Returns the allocator's free memory to the kernel: a big script's parse trees (tens of
/// MB for 10,000 elements) would otherwise stay in berthd's RSS for good.
pub(crate) fn give_back_memory() {
    // SAFETY: glibc's malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn nft_error(action: &str, stderr: &str) -> FwError {
    let message = stderr.trim();
    FwError::Nft {
        action: action.to_string(),
        message: if message.is_empty() {
            "nft reported an error without a message".to_string()
        } else {
            message.to_string()
        },
    }
}

impl Firewall for Nftables {
    fn init(&self) -> Result<(), FwError> {
        let script = ruleset::init_script(&self.table)?;
        self.apply(
            &format!(
                "creating table inet {} (if it exists with other definitions, reset it)",
                self.table
            ),
            &script,
            false,
        )
    }

    fn add_network(&self, n: &FwNetwork) -> Result<(), FwError> {
        let script = ruleset::add_script(&self.table, n)?;
        self.apply(
            &format!("adding bridge {} to table inet {}", n.bridge, self.table),
            &script,
            true,
        )
    }

    fn remove_network(&self, n: &FwNetwork) -> Result<(), FwError> {
        let script = ruleset::remove_script(&self.table, &n.bridge)?;
        self.apply(
            &format!(
                "removing bridge {} from table inet {}",
                n.bridge, self.table
            ),
            &script,
            true,
        )
    }

    fn bridges(&self) -> Result<Vec<String>, FwError> {
        let cmd = ruleset::list_bridges_command(&self.table)?;
        let out = self.ctx.run_json(&cmd)?;
        if !out.ok {
            if !self.table_exists().unwrap_or(true) {
                return Err(self.not_initialized());
            }
            return Err(nft_error(
                &format!("listing the bridges of table inet {}", self.table),
                &out.error,
            ));
        }
        let mut bridges =
            ruleset::parse_set_elements(&out.output, &self.table, ruleset::SET_BRIDGES)?;
        bridges.sort();
        Ok(bridges)
    }

    fn teardown(&self) -> Result<(), FwError> {
        let script = ruleset::teardown_script(&self.table)?;
        self.apply(
            &format!("deleting table inet {}", self.table),
            &script,
            false,
        )
    }

    fn publish(&self, elems: &[ports::Elem]) -> Result<(), FwError> {
        if elems.is_empty() {
            return Ok(());
        }
        let script = ports::publish_script(&self.table, elems)?;
        self.apply(
            &format!("publishing ports in table inet {}", self.table),
            &script,
            true,
        )
    }

    fn unpublish(&self, elems: &[ports::Elem]) -> Result<(), FwError> {
        if elems.is_empty() {
            return Ok(());
        }
        let script = ports::unpublish_script(&self.table, elems)?;
        let action = format!("unpublishing ports in table inet {}", self.table);
        match self.apply(&action, &script, true) {
            Ok(()) => Ok(()),
            // An element someone changed by hand (same key, other value) fails the whole
            // transaction: fall back to deleting what can be deleted, one by one.
            Err(e) => {
                tracing::warn!("{e}; removing the elements one by one");
                for el in elems {
                    let one = format!(
                        "delete element {} {} {} {{ {} }}",
                        ruleset::FAMILY,
                        self.table,
                        el.map,
                        el.key
                    );
                    let _ = self.ctx.run(&one);
                }
                Ok(())
            }
        }
    }

    fn reset_ports(&self, elems: &[ports::Elem]) -> Result<(), FwError> {
        let script = ports::reset_script(&self.table, elems)?;
        self.apply(
            &format!("restoring published ports in table inet {}", self.table),
            &script,
            true,
        )
    }

    /// One transaction: the table is never observed missing or half-built.
    fn reset(&self) -> Result<(), FwError> {
        let script = ruleset::reset_script(&self.table)?;
        self.apply(
            &format!("resetting table inet {}", self.table),
            &script,
            false,
        )
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ports;
