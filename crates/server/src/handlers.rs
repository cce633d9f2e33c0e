//! Thin handlers, one file per API resource: extract, call one service, convert.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod download;
pub mod files;
pub mod keys;
pub mod people;
pub mod portal;
pub mod settings;
