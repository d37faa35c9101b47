//! `logs [-f]` (and attached `up`): every container's log, line by line, prefixed with its
//! name padded to the longest, as docker-compose prints them.

use super::api::{self, Ctr};
use crate::client::Client;
use crate::hijack::{stdcopy::Stream, Output, Sink};
use http_body_util::BodyExt;
use hyper::Method;
use std::io::Write;

/// Complete lines go out with the prefix; a partial line waits for its end.
struct Prefixed {
    prefix: String,
    pending: Vec<u8>,
}

impl Prefixed {
    fn emit(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.pending.extend_from_slice(data);
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            let mut out = std::io::stdout().lock();
            out.write_all(self.prefix.as_bytes())?;
            out.write_all(&line)?;
            out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            self.emit(&[])?;
        }
        Ok(())
    }
}

impl Sink for &mut Prefixed {
    fn write(&mut self, _: Stream, data: &[u8]) -> anyhow::Result<()> {
        self.emit(data)
    }
}

async fn one(c: &Client, ctr: &Ctr, width: usize, follow: bool) -> anyhow::Result<()> {
    let v = api::inspect_container(c, &ctr.id).await?;
    let tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    let q = if follow {
        "follow=1&stderr=1&stdout=1&tail=all"
    } else {
        "stderr=1&stdout=1&tail=all"
    };
    let resp = c
        .open(
            Method::GET,
            &format!("/containers/{}/logs?{q}", ctr.id),
            None,
        )
        .await?;
    let mut p = Prefixed {
        prefix: format!("{:width$} | ", ctr.name),
        pending: Vec::new(),
    };
    {
        let mut out = Output::new(tty, &mut p);
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                out.write(&data)?;
            }
        }
    }
    p.finish()
}

/// All the containers' logs at once; with `follow`, until every container's log ends.
pub async fn follow(c: &Client, ctrs: &[Ctr], follow: bool) -> anyhow::Result<()> {
    let width = ctrs.iter().map(|x| x.name.len()).max().unwrap_or(0);
    let all = ctrs.iter().map(|x| one(c, x, width, follow));
    for r in futures::future::join_all(all).await {
        r?;
    }
    Ok(())
}
