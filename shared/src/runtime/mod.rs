//! Runtime: what a function is given by its environment and does once per process.
//! Configuration from the environment (`config`), the AWS clients and credentials (`aws`, with
//! the call log the IAM check reads: `call_log`), a function's start (`startup`), logs and
//! metrics (`logging`, `metrics`) and the clock (`time`).

pub mod aws;
pub mod call_log;
pub mod config;
pub mod deferred;
pub mod logging;
pub mod metrics;
pub mod startup;
pub mod time;
