//! Request and response DTOs, one file per API resource.
//!
//! Request DTOs use lower-case field names: the server lower-cases every property name of an
//! incoming body before binding, which is how DocSpace's case-insensitive binding is reproduced.
//! Response DTOs are camelCase and omit nulls.

pub mod auth;
pub mod backup;
pub mod files;
pub mod keys;
pub mod people;
pub mod portal;
pub mod settings;
