//! NATS decentralized auth for FLick: an operator, the FLICK account, one user per service role
//! and one per enrolled host, each allowed only its own subjects.
//!
//! Why JWTs rather than `nats.conf` passwords: one shared collector password let a compromised
//! host publish as any server, read other hosts' acknowledgements and rewrite the metrics
//! stream. With JWTs every host has its own key pair (the seed never leaves it) and a user JWT,
//! signed by the account's signing key, that names exactly its subjects; the server checks it
//! without any per-host configuration, and a revoked host is cut off by pushing the account JWT
//! with a revocation (see `hub`).

pub mod cluster;
pub mod hub;
pub mod jwt;
pub mod layout;
pub mod roles;
pub mod tls;

pub use hub::HubKeys;
pub use jwt::Permissions;
pub use roles::Role;
