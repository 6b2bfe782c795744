//! Accounts: password hashing, access and refresh tokens, and the extractor that turns a bearer
//! token into the caller.

pub mod access;
pub mod api_token;
pub mod cookie;
pub mod password;
pub mod tokens;
pub mod user;

pub use user::{CurrentUser, Role, Via};
