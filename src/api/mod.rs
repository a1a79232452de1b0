//! The API as a client and a server both see it: wire types beyond the domain's own.

pub mod types;
