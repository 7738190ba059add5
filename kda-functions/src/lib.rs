//! # datafusion-stream-kda-functions
//!
//! The built-in functions of Amazon Kinesis Data Analytics for SQL (KDA v1), as DataFusion
//! scalar UDFs and aggregate UDAFs, so KDA applications run unchanged on DataFusion
//! (`/work/shared/kda/SPEC.md` §1.6, §1.7, §2.3, §2.8).
//!
//! [`register_all`] registers every function under its upper-case KDA name **and** a
//! lower-case alias, so calls resolve whether the SQL front end folds unquoted identifiers to
//! upper case (KDA) or lower case (DataFusion's default).
//!
//! | family (module) | functions |
//! |---|---|
//! | numeric ([`numeric`]) | `STEP(ts, interval)`, `STEP(x, n)`, `FLOOR_TO(ts, unit)`, `CEIL_TO(ts, unit)` |
//! | date/time ([`datetime`]) | `TSDIFF(a, b)`, `UNIX_TIMESTAMP(ts)`, `CURRENT_ROW_TIMESTAMP()` |
//! | datetime conversion ([`datetime_conversion`], [`simple_date_format`]) | `CHAR_TO_TIMESTAMP`, `CHAR_TO_DATE`, `CHAR_TO_TIME`, `TIMESTAMP_TO_CHAR`, `DATE_TO_CHAR`, `TIME_TO_CHAR` (Java `SimpleDateFormat`) |
//! | streaming ([`streaming`]) | `MONOTONIC(x)` |
//! | string ([`string`], [`java_regex`]) | `REGEX_REPLACE`, KDA `INITCAP`, KDA `OVERLAY`, `SUBSTRING_REGEX` (for `SUBSTRING(s FROM 'regex')`) |
//! | aggregate ([`aggregate`]) | `KDA_AVG(x)`, `EXP_AVG(x, rowtime, half_life)` |
//! | log parsing ([`log_parse`]) | `FAST_REGEX_LOG_PARSE`, `REGEX_LOG_PARSE`, `VARIABLE_COLUMN_LOG_PARSE`, `FIXED_COLUMN_LOG_PARSE`, `W3C_LOG_PARSE`, `SYS_LOG_PARSE` |
//!
//! Functions DataFusion already provides with KDA semantics are not duplicated: `CHAR_LENGTH`
//! / `CHARACTER_LENGTH`, `POSITION(x IN y)`, `SUBSTRING(s FROM a FOR n)`, `LOWER`, `UPPER`,
//! `TRIM`, `ABS`, `CEIL`/`FLOOR` of numbers, `EXP`, `LN`, `LOG10`, `MOD`, `POWER`, `COALESCE`,
//! `NULLIF`, `STDDEV_POP`, `STDDEV_SAMP`, `VAR_POP`, `VAR_SAMP` (checked in `tests/sql.rs`).
//!
//! Syntax the front end rewrites before planning: `STEP(ts BY i)` → `STEP(ts, i)`,
//! `FLOOR(ts TO MINUTE)` → `FLOOR_TO(ts, 'MINUTE')`, `CEIL(ts TO u)` → `CEIL_TO(ts, 'u')`,
//! `AVG(x)` → `KDA_AVG(x)`, `EXP_AVG(x, i)` → `EXP_AVG(x, ROWTIME, i)`. `OVERLAY(... PLACING
//! ...)` and `SUBSTRING(s FROM 'regex')` need no rewrite: [`register_all`] installs
//! [`string::KdaExprPlanner`] ahead of DataFusion's planners.
//!
//! Errors name the function and the offending argument (`STEP: the step must be positive, got
//! 0`); type errors are reported at planning time, data errors at execution.

#![warn(missing_docs)]

pub mod aggregate;
pub mod datetime;
pub mod datetime_conversion;
pub mod java_regex;
pub mod log_parse;
pub mod numeric;
pub mod simple_date_format;
pub mod streaming;
pub mod string;
#[cfg(test)]
mod test_util;
mod util;

use std::sync::Arc;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::planner::ExprPlanner;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

/// Every KDA scalar function of this crate.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![
        numeric::step(),
        numeric::floor_to(),
        numeric::ceil_to(),
        datetime::tsdiff(),
        datetime::unix_timestamp(),
        datetime::current_row_timestamp(),
        datetime_conversion::char_to_timestamp(),
        datetime_conversion::char_to_date(),
        datetime_conversion::char_to_time(),
        datetime_conversion::timestamp_to_char(),
        datetime_conversion::date_to_char(),
        datetime_conversion::time_to_char(),
        streaming::monotonic(),
        string::regex_replace(),
        string::initcap(),
        string::overlay(),
        string::substring_regex(),
        log_parse::fast_regex_log_parse(),
        log_parse::regex_log_parse(),
        log_parse::variable_column_log_parse(),
        log_parse::fixed_column_log_parse(),
        log_parse::w3c_log_parse(),
        log_parse::sys_log_parse(),
    ]
}

/// Every KDA aggregate function of this crate.
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![aggregate::kda_avg(), aggregate::exp_avg()]
}

/// The expression planner for KDA's `OVERLAY ... PLACING` and `SUBSTRING(s FROM 'regex')`.
/// Front ends that build their own `SessionState` can put it first in
/// `SessionStateBuilder::with_expr_planners` instead of relying on [`register_all`].
pub fn kda_expr_planner() -> Arc<dyn ExprPlanner> {
    Arc::new(string::KdaExprPlanner)
}

/// Registers all KDA functions in `ctx` (upper-case names plus lower-case aliases) and puts
/// [`kda_expr_planner`] in front of the context's expression planners.
///
/// Note that this replaces DataFusion's `initcap` and `overlay` in this context with the KDA
/// versions (see [`string`]). Calling it twice is harmless.
pub fn register_all(ctx: &SessionContext) {
    install_expr_planner(ctx);
    for f in scalar_functions() {
        ctx.register_udf(f);
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f);
    }
}

/// DataFusion appends registered planners after its own, but the built-in planner already
/// plans `OVERLAY ... PLACING`; so the session state is rebuilt with ours first (same session
/// id, functions, catalogs and configuration).
fn install_expr_planner(ctx: &SessionContext) {
    let state_ref = ctx.state_ref();
    let mut state = state_ref.write();
    let already = state
        .expr_planners()
        .iter()
        .any(|p| format!("{p:?}") == format!("{:?}", string::KdaExprPlanner));
    if already {
        return;
    }
    let mut planners = vec![kda_expr_planner()];
    planners.extend(state.expr_planners().iter().cloned());
    let session_id = state.session_id().to_string();
    let rebuilt = SessionStateBuilder::new_from_existing(state.clone())
        .with_session_id(session_id)
        .with_expr_planners(planners)
        .build();
    *state = rebuilt;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_has_upper_name_and_lower_alias() {
        for f in scalar_functions() {
            assert_eq!(f.name(), f.name().to_ascii_uppercase());
            assert_eq!(f.aliases(), [f.name().to_ascii_lowercase()]);
        }
        for f in aggregate_functions() {
            assert_eq!(f.name(), f.name().to_ascii_uppercase());
            assert_eq!(f.aliases(), [f.name().to_ascii_lowercase()]);
        }
    }

    #[test]
    fn register_all_is_idempotent_and_keeps_the_session() {
        let ctx = SessionContext::new();
        let id = ctx.state().session_id().to_string();
        register_all(&ctx);
        register_all(&ctx);
        let state = ctx.state();
        assert_eq!(state.session_id(), id);
        let ours = state
            .expr_planners()
            .iter()
            .filter(|p| format!("{p:?}") == "KdaExprPlanner")
            .count();
        assert_eq!(ours, 1);
        assert!(state.scalar_functions().contains_key("STEP"));
        assert!(state.scalar_functions().contains_key("step"));
        assert!(state.aggregate_functions().contains_key("kda_avg"));
        // DataFusion's own functions survive the rebuild
        assert!(state.scalar_functions().contains_key("character_length"));
    }
}
