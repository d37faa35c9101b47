pub mod container;
pub mod cp;
pub mod image;
pub mod network;
pub mod network_diag;
pub mod prune;
pub mod system;
pub mod volume;
