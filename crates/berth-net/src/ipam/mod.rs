//! IP address management: which subnets networks get (`subnets`) and which addresses inside a
//! subnet are handed out (`pool`).

mod addr;
mod grant;
mod pool;
mod subnets;

pub use addr::{from_u128, to_u128};
pub use grant::{Ipam, LocalIpam};
pub use pool::{prepare, AddressPool, PoolError};
pub use subnets::{default_local_pools, PoolSpec, SubnetAllocator};
