//! A container as berthd remembers it: what was asked for at create time and where its
//! lifecycle stands. Persisted in the store's `containers` table, one JSON record per container.

use berth_api::NetworkMode;
use berth_api::{Config, EndpointSettings, HostConfig};
use serde::{Deserialize, Serialize};

pub const CONTAINERS: &str = "containers";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
    Removing,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Frozen (`pause`): still `Running`, shown as "paused".
    #[serde(default)]
    pub paused: bool,
    /// Ended, waiting for its restart policy's back-off: shown as "restarting".
    #[serde(default)]
    pub restarting: bool,
    /// Stopped or killed through the API since its last start by the user (Docker's
    /// `HasBeenManuallyStopped`): no restart, and none at boot for `unless-stopped`.
    #[serde(default)]
    pub stopped_by_user: bool,
}

/// One network the container is to be on, with what the user asked for there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    /// As the user named it (create, connect); resolved when the container starts.
    pub network: String,
    pub requested: EndpointSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// As given (`busybox`), shown by ps and inspect's `Config.Image`.
    pub image_ref: String,
    /// `sha256:...`
    pub image_id: String,
    /// Entrypoint + Cmd resolved against the image: `Path` and `Args` of inspect.
    pub path: String,
    pub args: Vec<String>,
    pub config: Config,
    pub host_config: HostConfig,
    /// In attach order; empty for host/none/container modes.
    pub networks: Vec<Attachment>,
    pub state: State,
    pub restart_count: i64,
    /// The bulk of a big port configuration, moved out of `config` and `host_config` (see
    /// `port_runs`); whole again wherever the record is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_runs: Option<super::port_runs::PortRuns>,
    /// Binds, volumes and tmpfs mounts (see `mounts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<super::mounts::MountPoint>,
}

impl Record {
    pub fn running(&self) -> bool {
        self.state.status == Status::Running
    }

    /// The container's network mode, parsed (`default` is `bridge`).
    pub fn network_mode(&self) -> NetworkMode<'_> {
        NetworkMode::parse(&self.host_config.network_mode)
    }

    /// `host` or `container:<x>`: the stack is someone else's, berth makes no sandbox.
    pub fn shares_netns(&self) -> bool {
        self.network_mode().shares_netns()
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Docker's "zero" time, shown for never-started containers.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
