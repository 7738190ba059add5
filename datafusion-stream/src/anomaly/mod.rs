//! Anomaly detection for streams, as Kinesis Data Analytics SQL defines it (`SPEC.md` §1.10).
pub mod hotspots;
