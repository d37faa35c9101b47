//! `ps`: the project's containers (one-off ones too) as docker-compose 1.29 lists them.

use super::api;
use super::load::Loaded;
use crate::client::Client;
use crate::format::table::TabWriter;

/// docker-compose's state column: `Up`, `Exit 137`, or the daemon's state.
fn state(ctr: &api::Ctr) -> String {
    if ctr.running {
        return "Up".into();
    }
    if let Some(code) = ctr
        .status
        .strip_prefix("Exited (")
        .and_then(|s| s.split(')').next())
    {
        return format!("Exit {code}");
    }
    ctr.state.clone()
}

pub async fn ps(c: &Client, l: &Loaded, quiet: bool, services: &[String]) -> anyhow::Result<i32> {
    let p = &l.project;
    for s in services {
        if p.service(s).is_none() {
            anyhow::bail!("no such service: {s}");
        }
    }
    let mut ctrs: Vec<api::Ctr> = api::containers(c, &p.name, None, None)
        .await?
        .into_iter()
        .filter(|x| services.is_empty() || services.contains(&x.service))
        .collect();
    ctrs.sort_by(|a, b| a.name.cmp(&b.name));
    if quiet {
        for x in &ctrs {
            println!("{}", x.id);
        }
        return Ok(0);
    }
    let mut tw = TabWriter::docker();
    tw.write("NAME\tCOMMAND\tSERVICE\tSTATE\tPORTS\n");
    for x in &ctrs {
        let ports = crate::cmd::container::ports::displayable(&x.ports);
        tw.write(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            x.name,
            x.command,
            x.service,
            state(x),
            ports
        ));
    }
    print!("{}", tw.flush());
    Ok(0)
}
