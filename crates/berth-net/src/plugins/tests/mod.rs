//! The plugin client against fake plugins on real unix sockets (and TCP).

mod calls;
mod fake;
mod lifecycle;

use super::*;
use fake::{ok, Answer, Call, Fake};
use std::path::PathBuf;
use std::time::Duration;

/// A registry over a temp dir, with Docker's schedule scaled down to 5 ms units.
fn registry(dir: &std::path::Path) -> Plugins {
    Plugins::new(Config {
        dirs: Dirs::from_dirs(&[dir.to_path_buf()]),
        retry: Retry {
            unit: Duration::from_millis(5),
            limit: 30,
        },
        limits: Limits {
            dial: Duration::from_secs(1),
            call: Some(Duration::from_millis(500)),
            max_reply: 64 * 1024,
        },
    })
}

fn sock(dir: &std::path::Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// The standard plugin, with `method` answered by `answer` instead.
fn with(
    method: &'static str,
    answer: impl Fn() -> Answer + Send + Sync + 'static,
) -> impl Fn(&Call) -> Answer + Send + Sync + 'static {
    move |c: &Call| {
        if c.method == method {
            answer()
        } else {
            fake::standard(c)
        }
    }
}

/// The error of `f`'s call, as text.
async fn err_of<T: std::fmt::Debug>(
    f: impl std::future::Future<Output = Result<T, PluginError>>,
) -> String {
    f.await.unwrap_err().to_string()
}
