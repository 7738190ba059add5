//! Stateless streaming operators and the physical rule that installs them.

pub mod filter;
pub mod messages;
pub mod operator;
pub mod pipeline;
pub mod union;
