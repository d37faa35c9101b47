//! /proc/sys writes. The values are per network namespace, so a daemon in a lab namespace
//! changes only its own.

use std::io;

pub fn write(key: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value)
}

pub fn read(key: &str) -> io::Result<String> {
    Ok(std::fs::read_to_string(format!("/proc/sys/{key}"))?
        .trim()
        .to_string())
}
