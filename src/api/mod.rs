//! The API as a client and a server both see it: wire types beyond the domain's own, and the
//! typed HTTP client the sync engine uses.

pub mod client;
pub mod error;
pub mod pages;
pub mod types;

pub use client::{ApiClient, ApiError, ClientConfig, RetryPolicy};
