//! `berth version` and `berth info`, laid out like docker's.

use crate::client::Client;
use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub async fn version(c: &Client) -> anyhow::Result<i32> {
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", berth_api::API_VERSION);
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    println!();
    let v = c.get_json("/version").await?;
    println!("Server: berth");
    println!(" Engine:");
    println!("  Version:          {}", s(&v["Version"]));
    println!(
        "  API version:      {} (minimum version {})",
        s(&v["ApiVersion"]),
        s(&v["MinAPIVersion"])
    );
    println!("  OS/Arch:          {}/{}", s(&v["Os"]), s(&v["Arch"]));
    println!("  Kernel version:   {}", s(&v["KernelVersion"]));
    Ok(0)
}

pub async fn info(c: &Client) -> anyhow::Result<i32> {
    let v = c.get_json("/info").await?;
    println!("Server:");
    for (label, key) in [
        ("Containers", "Containers"),
        ("Images", "Images"),
        ("Server Version", "ServerVersion"),
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
        ("CPUs", "NCPU"),
        ("Total Memory", "MemTotal"),
        ("Name", "Name"),
        ("ID", "ID"),
        ("Berth Root Dir", "DockerRootDir"),
        ("Networks", "Networks"),
        ("IPv4 Forwarding", "IPv4Forwarding"),
    ] {
        println!(" {label}: {}", s(&v[key]));
    }
    let plugins: Vec<String> = v["Plugins"]["Network"]
        .as_array()
        .map(|a| a.iter().map(s).collect())
        .unwrap_or_default();
    println!(" Plugins:");
    println!("  Network: {}", plugins.join(" "));
    Ok(0)
}
