//! What `network prune`, `volume prune` and `container prune` share: docker's confirmation
//! prompt and its "Deleted …:" report.

use serde_json::Value;
use std::io::Write;

/// Prints docker's `WARNING! This will remove …` prompt; true when the user answers yes.
pub fn confirm(what: &str) -> std::io::Result<bool> {
    print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// `Deleted <title>:` and one line per entry of `reply[key]`; docker ends the list with an
/// empty line and prints nothing when it is empty.
pub fn print_deleted(reply: &Value, key: &str, title: &str) {
    if let Some(items) = reply[key].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted {title}:");
        for i in items {
            println!("{}", i.as_str().unwrap_or(""));
        }
        println!();
    }
}

/// docker's last line: `Total reclaimed space: 1.5kB` (go-units `HumanSize`).
pub fn print_reclaimed(reply: &Value) {
    let space = reply["SpaceReclaimed"].as_u64().unwrap_or(0) as f64;
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(space, 4)
    );
}
