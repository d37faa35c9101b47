//! docker-py's integration suite against berthd, one test per file of the suite: every test
//! of a file passes except those on `tests/docker-py-expected.txt` (see `src/dockerpy.rs`).

use berth_e2e::dockerpy::check_file;
use std::time::Duration;

#[test]
fn api_network_test() {
    check_file("api_network_test.py", Duration::from_secs(600));
}

#[test]
fn models_networks_test() {
    check_file("models_networks_test.py", Duration::from_secs(600));
}

#[test]
fn api_container_test() {
    check_file("api_container_test.py", Duration::from_secs(1200));
}

#[test]
fn models_containers_test() {
    check_file("models_containers_test.py", Duration::from_secs(1200));
}

#[test]
fn api_exec_test() {
    check_file("api_exec_test.py", Duration::from_secs(1200));
}
