//! `berth compose`: multi-container projects from compose files, the networking part of the
//! format, made through the Engine API with docker-compose 1.29's names, labels and config
//! hash — so the real docker-compose and berth compose manage the same projects.
//!
//! Loading: `yaml` (tree with positions) → `interpolate` → `parse` (keys checked) → `merge`
//! (several `-f`) → `validate`. Running: `up`, `down`, `ps`, `logs`, `run` (and `exec`), over
//! `api`; `container` and `networks` say how a service's container and the project's networks
//! are made; `hash` is docker-compose's config hash; `emit` prints the model for `config`.

mod api;
mod container;
mod down;
mod emit;
mod hash;
mod interpolate;
mod load;
mod logs;
mod merge;
mod model;
mod networks;
mod parse;
mod ps;
mod run;
mod shlex;
mod up;
mod validate;
mod volumes;
mod yaml;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hash;
#[cfg(test)]
mod tests_props;

use crate::client::Client;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
pub struct ComposeArgs {
    /// Compose configuration files (default: docker-compose.yml or compose.yaml, looked for
    /// here and in the parent directories, with its override file)
    #[arg(short = 'f', long = "file")]
    file: Vec<PathBuf>,
    /// Project name (default: COMPOSE_PROJECT_NAME, the file's `name:`, or the directory's name)
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Working directory of the project (default: the first file's directory)
    #[arg(long = "project-directory")]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    cmd: ComposeCmd,
}

#[derive(Subcommand)]
enum ComposeCmd {
    /// Create and start the services' networks and containers
    Up {
        /// Detached mode: start the containers in the background
        #[arg(short, long)]
        detach: bool,
        /// Remove containers of services not in the compose file
        #[arg(long = "remove-orphans")]
        remove_orphans: bool,
        /// Seconds to wait for a container to stop when it is recreated
        #[arg(short = 't', long = "timeout", default_value_t = 10)]
        timeout: u32,
        services: Vec<String>,
    },
    /// Stop and remove the project's containers and networks
    Down {
        /// Remove containers of services not in the compose file
        #[arg(long = "remove-orphans")]
        remove_orphans: bool,
        /// Seconds to wait for a container to stop before killing it
        #[arg(short = 't', long = "timeout", default_value_t = 10)]
        timeout: u32,
        /// Remove the named volumes of the `volumes` section and the containers' anonymous ones
        #[arg(short = 'v', long = "volumes")]
        volumes: bool,
    },
    /// List the project's containers
    Ps {
        /// Only display IDs
        #[arg(short, long)]
        quiet: bool,
        services: Vec<String>,
    },
    /// Execute a command in a running service container
    Exec {
        /// Detached mode: run the command in the background
        #[arg(short, long)]
        detach: bool,
        /// Set environment variables (KEY=VALUE)
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Do not allocate a pseudo-TTY
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        /// Give extended privileges to the process
        #[arg(long)]
        privileged: bool,
        /// Run the command as this user
        #[arg(short, long)]
        user: Option<String>,
        /// Path to the working directory for this command
        #[arg(short, long)]
        workdir: Option<String>,
        /// Which container of the service (its number)
        #[arg(long, default_value_t = 1)]
        index: u32,
        service: String,
        /// COMMAND [ARG...]
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show the services' output
    Logs {
        /// Follow the output
        #[arg(short, long)]
        follow: bool,
        services: Vec<String>,
    },
    /// Run a one-off command in a new container of a service
    Run {
        /// Remove the container when it exits
        #[arg(long)]
        rm: bool,
        /// Do not allocate a pseudo-TTY
        #[arg(short = 'T')]
        no_tty: bool,
        /// Do not start the services it depends on
        #[arg(long = "no-deps")]
        no_deps: bool,
        service: String,
        /// COMMAND [ARG...]
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Validate the files and print the resolved project
    Config {
        /// Only validate, print nothing
        #[arg(short, long)]
        quiet: bool,
        /// Print the service names, one per line
        #[arg(long)]
        services: bool,
    },
}

pub async fn run(c: &Client, a: ComposeArgs) -> anyhow::Result<i32> {
    let opts = load::Options {
        files: a.file,
        project_name: a.project_name,
        project_dir: a.project_directory,
    };
    let loaded = match load::load(&opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    for w in &loaded.warnings {
        eprintln!("WARNING: {w}");
    }
    let r = match a.cmd {
        ComposeCmd::Up {
            detach,
            remove_orphans,
            timeout,
            services,
        } => {
            let o = up::UpOpts {
                detach,
                remove_orphans,
                services,
                timeout,
            };
            up::up(c, &loaded, &o).await
        }
        ComposeCmd::Down {
            remove_orphans,
            timeout,
            volumes,
        } => down::down(c, &loaded, remove_orphans, timeout, volumes).await,
        ComposeCmd::Ps { quiet, services } => ps::ps(c, &loaded, quiet, &services).await,
        ComposeCmd::Exec {
            detach,
            env,
            no_tty,
            privileged,
            user,
            workdir,
            index,
            service,
            command,
        } => {
            let o = run::ExecOpts {
                detach,
                env,
                no_tty,
                privileged,
                user,
                workdir,
                index,
            };
            run::exec(c, &loaded, &service, o, command).await
        }
        ComposeCmd::Logs { follow, services } => {
            let all = api::containers(c, &loaded.project.name, None, Some(false)).await;
            match all {
                Ok(all) => {
                    let ctrs: Vec<api::Ctr> = all
                        .into_iter()
                        .filter(|x| services.is_empty() || services.contains(&x.service))
                        .collect();
                    logs::follow(c, &ctrs, follow).await.map(|_| 0)
                }
                Err(e) => Err(e),
            }
        }
        ComposeCmd::Run {
            rm,
            no_tty,
            no_deps,
            service,
            command,
        } => {
            let o = run::RunOpts {
                service,
                command,
                rm,
                no_tty,
                no_deps,
                timeout: 10,
            };
            run::run(c, &loaded, o).await
        }
        ComposeCmd::Config { quiet, services } => {
            if services {
                for s in &loaded.project.services {
                    println!("{}", s.name);
                }
            } else if !quiet {
                print!("{}", emit::project(&loaded.project));
            }
            Ok(0)
        }
    };
    match r {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("ERROR: {}", crate::render_error(&e));
            Ok(1)
        }
    }
}
