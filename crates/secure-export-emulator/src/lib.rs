//! `secure-export-emulator`: local ServiceNow and BMC Helix API emulators with
//! fault injection, for tests, benches and demos.
#![doc = include_str!("../README.md")]

pub mod bmc;
mod call;
pub mod fault;
pub mod fixture;
mod server;
pub mod servicenow;

pub use call::RecordedCall;
pub use fault::Faults;
