//! A KDA `SELECT STREAM` → a DataFusion query over the streaming engine.
//!
//! ```text
//!  tokens (see crate::tokens) ─► sqlparser AST ─► per SELECT (inner queries first):
//!     relations: streams, reference tables, subqueries (which carry a ROWTIME column)
//!     GROUP BY: the one ROWTIME-based key (STEP / FLOOR / the seconds trick / ROWTIME)
//!               → tumble_start(ROWTIME, size), tumble_end(ROWTIME, size)   [window end = ROWTIME]
//!               stagger_start/stagger_end (from WINDOWED BY STAGGER) likewise
//!     ROWTIME of the output row: window end | joined rows: GREATEST(a.ROWTIME, b.ROWTIME)
//!               | the input row's ROWTIME | `expr AS ROWTIME`     → one column named ROWTIME
//!     SELECT *: ROWTIME excluded;  a / b → a / kda_nonzero(b)  (KDA: x / 0 is an error)
//! ```
//!
//! The result is a statement DataFusion plans with the streaming rules of `datafusion-stream`;
//! [`Translated`] says which output column is ROWTIME and whether it is also a data column.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::common::{plan_datafusion_err, plan_err, Result};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, ExcludeSelectItem, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, Ident, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, TableWithJoins, Value,
    WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::ast::{SetOperator, SetQuantifier};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::tokens::{render, rewrite_query};

/// The name of the ROWTIME column in KDA applications.
pub const ROWTIME: &str = "ROWTIME";

/// What a name in FROM refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// An in-application stream (input or declared).
    Stream,
    /// A reference table.
    Table,
}

/// Names the translator can resolve (exact, already folded).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Stream and table names.
    pub relations: HashMap<String, RelationKind>,
}

/// A translated query.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The DataFusion statement.
    pub statement: Statement,
    /// Whether the top SELECT reads a stream (and so has a ROWTIME column).
    pub streaming: bool,
    /// True when the ROWTIME column was selected by the user (`SELECT ROWTIME, ...`, or an
    /// aggregate's `ROWTIME`) and is therefore also a data column; false when it was added
    /// or given as an `expr AS ROWTIME` override.
    pub rowtime_is_data: bool,
    /// True when the select list overrides ROWTIME (`expr AS ROWTIME`): the output's time is
    /// then unrelated to the input's progress.
    pub rowtime_overridden: bool,
}

/// Translates the tokens of one KDA query (after `AS INSERT INTO ... (cols)` was removed).
pub fn translate_query(tokens: Vec<Token>, catalog: &Catalog) -> Result<Translated> {
    let toks = rewrite_query(tokens)?;
    let sql = render(&toks);
    let dialect = GenericDialect {};
    let mut statements = Parser::parse_sql(&dialect, &sql)
        .map_err(|e| plan_datafusion_err!("SQL syntax error: {e}"))?;
    if statements.len() != 1 {
        return plan_err!("expected one query, found {} statements", statements.len());
    }
    let mut statement = statements.remove(0);
    let Statement::Query(query) = &mut statement else {
        return plan_err!("expected a SELECT query, found: {statement}");
    };
    let info = translate_query_ast(query, catalog)?;
    divide_checked(&mut statement);
    similar_to_regex(&mut statement)?;
    day_time_intervals(&mut statement)?;
    Ok(Translated {
        statement,
        streaming: info.streaming,
        rowtime_is_data: info.rowtime_is_data,
        rowtime_overridden: info.rowtime_overridden,
    })
}

#[derive(Debug, Clone, Copy, Default)]
struct SelectInfo {
    streaming: bool,
    rowtime_is_data: bool,
    rowtime_overridden: bool,
}

fn translate_query_ast(q: &mut Query, catalog: &Catalog) -> Result<SelectInfo> {
    let info = translate_set_expr(&mut q.body, catalog)?;
    if info.streaming && q.order_by.is_some() {
        translate_order_by(q, catalog)?;
    }
    Ok(info)
}

fn translate_set_expr(body: &mut SetExpr, catalog: &Catalog) -> Result<SelectInfo> {
    match body {
        SetExpr::Select(s) => translate_select(s, catalog),
        SetExpr::Query(q) => translate_query_ast(q, catalog),
        SetExpr::SetOperation {
            left,
            right,
            op,
            set_quantifier,
        } => {
            let l = translate_set_expr(left, catalog)?;
            let r = translate_set_expr(right, catalog)?;
            if l.streaming != r.streaming {
                return plan_err!("{op} of a stream and a table: both sides must be streams");
            }
            if l.streaming
                && !(matches!(op, SetOperator::Union)
                    && matches!(set_quantifier, SetQuantifier::All))
            {
                let q = match set_quantifier {
                    SetQuantifier::None => String::new(),
                    other => format!(" {other}"),
                };
                return plan_err!(
                    "{op}{q} of streams is not supported; streams are combined with UNION ALL"
                );
            }
            if l.rowtime_is_data != r.rowtime_is_data {
                return plan_err!("UNION ALL: select ROWTIME in both branches or in neither");
            }
            Ok(l)
        }
        _ => Ok(SelectInfo::default()),
    }
}

/// A relation of a FROM clause.
#[derive(Debug, Clone)]
struct Relation {
    /// The name it is referred to by (alias or name).
    qualifier: String,
    streaming: bool,
}

fn ident_value(id: &Ident) -> String {
    id.value.clone()
}

fn object_name(n: &ObjectName) -> String {
    n.0.iter()
        .map(|p| match p.as_ident() {
            Some(id) => ident_value(id),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn string_arg(arg: &FunctionArg) -> Option<String> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn relation_of(factor: &mut TableFactor, catalog: &Catalog, out: &mut Vec<Relation>) -> Result<()> {
    match factor {
        TableFactor::Table {
            name, alias, args, ..
        } if is_anomaly_call(&*name, &*args) => {
            // random_cut_forest(EXISTS (cursor), ...): the cursor is a query of its own.
            let Some(cursor) = anomaly_cursor(name, args) else {
                return plan_err!("internal: anomaly table function without a cursor");
            };
            let info = translate_query_ast(cursor, catalog)?;
            if alias.is_none() {
                *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', format!("__CURSOR_{}", out.len())),
                    columns: vec![],
                    at: None,
                });
            }
            let qualifier = alias
                .as_ref()
                .map(|a| ident_value(&a.name))
                .unwrap_or_default();
            out.push(Relation {
                qualifier,
                streaming: info.streaming,
            });
        }
        TableFactor::Table {
            name, alias, args, ..
        } => {
            let n = object_name(name);
            let streaming = match args {
                Some(a) => {
                    // stream_range('S', ...) / stream_rows('S', n): a stream with a join window.
                    let first = a.args.first().and_then(string_arg);
                    matches!(n.as_str(), "stream_range" | "stream_rows")
                        && first.is_some_and(|s| {
                            catalog.relations.get(&s) == Some(&RelationKind::Stream)
                        })
                }
                None => catalog.relations.get(&n) == Some(&RelationKind::Stream),
            };
            let qualifier = match alias {
                Some(a) => ident_value(&a.name),
                None => match args
                    .as_ref()
                    .and_then(|a| a.args.first())
                    .and_then(string_arg)
                {
                    Some(s) => s,
                    None => n,
                },
            };
            if args.is_some() && alias.is_none() && streaming {
                // `JOIN stream_range('S', ...) ON S.k = ...`: keep the stream's name usable.
                *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', qualifier.clone()),
                    columns: vec![],
                    at: None,
                });
            }
            out.push(Relation {
                qualifier,
                streaming,
            });
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let info = translate_query_ast(subquery, catalog)?;
            if alias.is_none() {
                // An unnamed subquery still needs a name for its ROWTIME.
                *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', format!("__SUBQUERY_{}", out.len())),
                    columns: vec![],
                    at: None,
                });
            }
            let qualifier = alias
                .as_ref()
                .map(|a| ident_value(&a.name))
                .unwrap_or_default();
            out.push(Relation {
                qualifier,
                streaming: info.streaming,
            });
        }
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => relations_of(table_with_joins, catalog, out)?,
        other => {
            return plan_err!("unsupported FROM item in a KDA query: {other}");
        }
    }
    Ok(())
}

fn is_anomaly_call(
    name: &ObjectName,
    args: &Option<datafusion::sql::sqlparser::ast::TableFunctionArgs>,
) -> bool {
    let n = object_name(name).to_ascii_lowercase();
    is_anomaly_function(&n)
        && matches!(
            args.as_ref().and_then(|a| a.args.first()),
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Exists {
                negated: false,
                ..
            })))
        )
}

/// The table functions of `datafusion_stream::anomaly` (lower-case name).
fn is_anomaly_function(n: &str) -> bool {
    matches!(
        n,
        "random_cut_forest" | "random_cut_forest_with_explanation" | "hotspots"
    )
}

/// The cursor query of `random_cut_forest[_with_explanation](EXISTS (q), ...)` (what
/// `tokens.rs` makes of KDA's `TABLE(RANDOM_CUT_FOREST(CURSOR(q), ...))`).
fn anomaly_cursor<'a>(
    name: &ObjectName,
    args: &'a mut Option<datafusion::sql::sqlparser::ast::TableFunctionArgs>,
) -> Option<&'a mut Query> {
    let n = object_name(name).to_ascii_lowercase();
    if !is_anomaly_function(&n) {
        return None;
    }
    match args.as_mut()?.args.first_mut()? {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Exists {
            subquery,
            negated: false,
        })) => Some(subquery.as_mut()),
        _ => None,
    }
}

fn relations_of(t: &mut TableWithJoins, catalog: &Catalog, out: &mut Vec<Relation>) -> Result<()> {
    relation_of(&mut t.relation, catalog, out)?;
    for j in t.joins.iter_mut() {
        relation_of(&mut j.relation, catalog, out)?;
    }
    Ok(())
}

fn parse_expr(sql: &str) -> Result<Expr> {
    let dialect = GenericDialect {};
    Parser::new(&dialect)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| plan_datafusion_err!("internal KDA rewrite produced invalid SQL '{sql}': {e}"))
}

/// `ROWTIME` or `<streaming relation>.ROWTIME`.
fn is_rowtime_ref(e: &Expr, rels: &[Relation]) -> bool {
    match e {
        Expr::Identifier(id) => id.value == ROWTIME,
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            parts[1].value == ROWTIME
                && rels
                    .iter()
                    .any(|r| r.streaming && r.qualifier == parts[0].value)
        }
        Expr::Nested(inner) => is_rowtime_ref(inner, rels),
        _ => false,
    }
}

fn is_unqualified_rowtime(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(id) if id.value == ROWTIME)
}

fn func_parts(e: &Expr) -> Option<(String, Vec<&Expr>)> {
    let Expr::Function(f) = e else {
        return None;
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    Some((object_name(&f.name).to_ascii_lowercase(), args))
}

fn unit_millis(unit: &str) -> Option<i64> {
    Some(match unit.to_ascii_uppercase().as_str() {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return None,
    })
}

fn string_value(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn number_value(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Milliseconds of an interval literal such as `INTERVAL '60' SECOND` or `'3 4' DAY TO HOUR`
/// (day-time intervals only).
fn interval_millis(e: &Expr) -> Result<i64> {
    let Expr::Interval(iv) = e else {
        return plan_err!("expected an interval literal such as INTERVAL '1' MINUTE, found {e}");
    };
    let text = string_value(&iv.value)
        .ok_or_else(|| plan_datafusion_err!("expected an interval literal, found {e}"))?;
    let lead = iv
        .leading_field
        .as_ref()
        .map(|f| f.to_string())
        .unwrap_or_else(|| "SECOND".into());
    let Some(lead_ms) = unit_millis(&lead) else {
        return plan_err!("interval {e}: only day-time intervals are allowed here");
    };
    let last = iv.last_field.as_ref().map(|f| f.to_string());
    match last {
        None => {
            let v: f64 = text
                .trim()
                .parse()
                .map_err(|_| plan_datafusion_err!("interval {e}: '{text}' is not a number"))?;
            Ok((v * lead_ms as f64).round() as i64)
        }
        Some(_) => {
            // 'd h', 'h:m', 'm:s.fff' style: split on space and ':' from the leading unit down.
            let parts: Vec<&str> = text.split([' ', ':']).filter(|s| !s.is_empty()).collect();
            let order = ["DAY", "HOUR", "MINUTE", "SECOND"];
            let start = order
                .iter()
                .position(|u| lead.eq_ignore_ascii_case(u))
                .unwrap_or(0);
            let mut total = 0f64;
            for (k, p) in parts.iter().enumerate() {
                let unit = order.get(start + k).copied().unwrap_or("SECOND");
                let v: f64 = p.parse().map_err(|_| {
                    plan_datafusion_err!("interval {e}: '{text}' is not a valid interval")
                })?;
                total += v * unit_millis(unit).unwrap_or(1) as f64;
            }
            Ok(total.round() as i64)
        }
    }
}

/// If `e` is a ROWTIME-based tumbling key, its width in milliseconds.
fn rowtime_window(e: &Expr, rels: &[Relation]) -> Result<Option<i64>> {
    if is_rowtime_ref(e, rels) {
        return Ok(Some(1));
    }
    let Some((name, args)) = func_parts(e) else {
        if let Expr::Nested(inner) = e {
            return rowtime_window(inner, rels);
        }
        return Ok(None);
    };
    match (name.as_str(), args.as_slice()) {
        ("step", [t, width]) if is_rowtime_ref(t, rels) => {
            let ms = interval_millis(width)?;
            if ms <= 0 {
                return plan_err!("STEP width must be positive, got {width}");
            }
            Ok(Some(ms))
        }
        ("floor_to", [t, unit]) if is_rowtime_ref(t, rels) => {
            let u = string_value(unit).unwrap_or_default();
            match unit_millis(&u) {
                Some(ms) => Ok(Some(ms)),
                None => plan_err!("FLOOR(ROWTIME TO {u}): the unit must be SECOND, MINUTE, HOUR or DAY (or use STEP)"),
            }
        }
        ("floor_to", [inner, unit]) => {
            // FLOOR((s.ROWTIME - TIMESTAMP '1970-01-01 00:00:00') SECOND / n TO SECOND)
            let inner = match inner {
                Expr::Nested(x) => x.as_ref(),
                x => x,
            };
            if let Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } = inner
            {
                if let (Some((f, fargs)), Some(n)) = (func_parts(left), number_value(right)) {
                    if f == "kda_units" && fargs.len() == 2 {
                        if let Expr::BinaryOp {
                            left: t,
                            op: BinaryOperator::Minus,
                            right: epoch,
                        } = fargs[0]
                        {
                            let epoch_ok = epoch.to_string().contains("1970-01-01 00:00:00");
                            let per = string_value(fargs[1]).and_then(|u| unit_millis(&u));
                            let to = string_value(unit).and_then(|u| unit_millis(&u));
                            if is_rowtime_ref(t, rels) && epoch_ok && n > 0 {
                                if let (Some(per), Some(to)) = (per, to) {
                                    if to <= per {
                                        return Ok(Some(per * n));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Ok(None)
        }
        ("monotonic", [inner]) => match rowtime_window(inner, rels)? {
            Some(ms) => Ok(Some(ms)),
            None => plan_err!("MONOTONIC({inner}) in GROUP BY: only ROWTIME-based expressions (STEP(s.ROWTIME BY ...), FLOOR(s.ROWTIME TO ...)) can define a streaming window here"),
        },
        _ => Ok(None),
    }
}

fn contains_window_marker(e: &Expr, prefix: &str) -> bool {
    func_parts(e).is_some_and(|(n, _)| n.starts_with(prefix))
}

fn group_exprs(select: &mut Select) -> Option<&mut Vec<Expr>> {
    match &mut select.group_by {
        GroupByExpr::Expressions(exprs, _) => Some(exprs),
        GroupByExpr::All(_) => None,
    }
}

/// An expression's text with identifier quotes dropped (`"ROWTIME"` and `ROWTIME` are the
/// same column once unquoted names are folded), for matching GROUP BY keys in the select list.
fn norm(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        match x {
            Expr::Identifier(id) => id.quote_style = None,
            Expr::CompoundIdentifier(parts) => {
                for p in parts.iter_mut() {
                    p.quote_style = None;
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

/// Replaces every sub-expression of `e` that matches a key of `from` (see [`norm`]) with its
/// replacement, and unqualified `ROWTIME` with `rowtime`.
fn replace_in(e: &mut Expr, from: &[(String, Expr)], rowtime: Option<&Expr>) {
    let _ = visit_expressions_mut(e, |x| {
        let text = norm(x);
        if let Some((_, to)) = from.iter().find(|(f, _)| *f == text) {
            *x = to.clone();
        } else if let Some(r) = rowtime {
            if is_unqualified_rowtime(x) {
                *x = r.clone();
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn is_aggregate_name(n: &str) -> bool {
    matches!(
        n,
        "count"
            | "sum"
            | "min"
            | "max"
            | "kda_avg"
            | "avg"
            | "stddev_pop"
            | "stddev_samp"
            | "stddev"
            | "var_pop"
            | "var_samp"
            | "variance"
            | "first_value"
            | "last_value"
            | "exp_avg"
            | "every"
            | "any"
            | "bool_and"
            | "bool_or"
    )
}

fn has_plain_aggregate(select: &Select) -> bool {
    let mut found = false;
    for item in &select.projection {
        let e = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let mut e = e.clone();
        let _ = visit_expressions_mut(&mut e, |x| {
            if let Expr::Function(f) = x {
                if f.over.is_none() && is_aggregate_name(&object_name(&f.name).to_ascii_lowercase())
                {
                    found = true;
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

fn translate_select(select: &mut Select, catalog: &Catalog) -> Result<SelectInfo> {
    let mut rels = Vec::new();
    for t in select.from.iter_mut() {
        relations_of(t, catalog, &mut rels)?;
    }
    let streams: Vec<&Relation> = rels.iter().filter(|r| r.streaming).collect();
    if streams.is_empty() {
        return Ok(SelectInfo::default());
    }
    let rowtime_ref = |r: &Relation| format!("\"{}\".{ROWTIME}", r.qualifier.replace('"', "\"\""));

    // The ROWTIME of output rows, and GROUP BY windows.
    let mut output_rowtime: Expr;
    let mut replacements: Vec<(String, Expr)> = Vec::new();
    let has_stagger = group_exprs(select)
        .map(|g| g.iter().any(|e| contains_window_marker(e, "stagger_")))
        .unwrap_or(false);
    let has_group = group_exprs(select).is_some_and(|g| !g.is_empty());
    if has_stagger {
        let Some(groups) = group_exprs(select) else {
            return plan_err!("GROUP BY ALL is not supported in a streaming query");
        };
        let end = groups
            .iter()
            .find(|e| contains_window_marker(e, "stagger_end"))
            .cloned()
            .ok_or_else(|| plan_datafusion_err!("internal: stagger window without its end"))?;
        if let Some(w) = groups
            .iter()
            .find(|e| rowtime_window(e, &rels).ok().flatten().is_some())
        {
            return plan_err!(
                "WINDOWED BY STAGGER replaces GROUP BY; a ROWTIME window ({w}) cannot be combined with it"
            );
        }
        output_rowtime = end;
    } else if has_group {
        let Some(groups) = group_exprs(select) else {
            return plan_err!("GROUP BY ALL is not supported in a streaming query");
        };
        let mut windows = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if let Some(ms) = rowtime_window(g, &rels)? {
                windows.push((i, ms));
            }
        }
        if windows.len() > 1 {
            let names: Vec<String> = windows
                .iter()
                .map(|(i, _)| groups[*i].to_string())
                .collect();
            return plan_err!(
                "a GROUP BY may name only one ROWTIME-based window; found {}",
                names.join(" and ")
            );
        }
        let Some(&(idx, ms)) = windows.first() else {
            let keys: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            return plan_err!(
                "a streaming GROUP BY needs a monotonic ROWTIME-based grouping expression such as STEP(s.ROWTIME BY INTERVAL '1' MINUTE) or FLOOR(s.ROWTIME TO MINUTE); GROUP BY {} has none",
                keys.join(", ")
            );
        };
        let key = groups[idx].clone();
        // The time column: the ROWTIME the key is based on.
        let mut time = None;
        let mut k = key.clone();
        let _ = visit_expressions_mut(&mut k, |x| {
            if time.is_none() && is_rowtime_ref(x, &rels) {
                time = Some(x.to_string());
            }
            ControlFlow::<()>::Continue(())
        });
        let time = time.unwrap_or_else(|| ROWTIME.to_string());
        let start = parse_expr(&format!(
            "tumble_start({time}, INTERVAL '{ms} milliseconds')"
        ))?;
        let end = parse_expr(&format!("tumble_end({time}, INTERVAL '{ms} milliseconds')"))?;
        groups[idx] = start.clone();
        groups.push(end.clone());
        replacements.push((norm(&key), start));
        output_rowtime = end;
    } else if has_plain_aggregate(select) {
        return plan_err!(
            "an aggregate over a stream needs a window: GROUP BY a ROWTIME-based expression such as STEP(s.ROWTIME BY INTERVAL '1' MINUTE), WINDOWED BY STAGGER, or OVER (...)"
        );
    } else if streams.len() >= 2 {
        let refs: Vec<String> = streams.iter().map(|r| rowtime_ref(r)).collect();
        output_rowtime = parse_expr(&format!("greatest({})", refs.join(", ")))?;
    } else {
        output_rowtime = parse_expr(&rowtime_ref(streams[0]))?;
    }
    if !has_stagger && !has_group {
        // Plain and sliding-window queries: unqualified ROWTIME is the input row's.
        if streams.len() == 1 {
            output_rowtime = parse_expr(&rowtime_ref(streams[0]))?;
        }
    }

    // Expressions that refer to the window key or to the output ROWTIME.
    let rowtime_subst = if has_group || has_stagger || streams.len() >= 2 {
        Some(output_rowtime.clone())
    } else {
        None
    };
    if let Some(h) = select.having.as_mut() {
        replace_in(h, &replacements, rowtime_subst.as_ref());
    }

    // Projection.
    let single_stream = if rels.len() == 1 {
        Some(&rels[0])
    } else {
        None
    };
    let mut items = Vec::with_capacity(select.projection.len() + 1);
    let mut rowtime_item = None;
    let mut rowtime_is_data = false;
    let mut rowtime_overridden = false;
    for item in std::mem::take(&mut select.projection) {
        match item {
            SelectItem::Wildcard(mut opts) => {
                if rels.len() == 1 {
                    if rels[0].streaming && opts.opt_exclude.is_none() {
                        opts.opt_exclude = Some(ExcludeSelectItem::Single(ObjectName::from(vec![
                            Ident::with_quote('"', ROWTIME),
                        ])));
                    }
                    items.push(SelectItem::Wildcard(opts));
                } else {
                    // Expand per relation so that each stream's ROWTIME can be excluded.
                    for r in &rels {
                        let name =
                            ObjectName::from(vec![Ident::with_quote('"', r.qualifier.clone())]);
                        let o = WildcardAdditionalOptions {
                            opt_exclude: r.streaming.then(|| {
                                ExcludeSelectItem::Single(ObjectName::from(vec![
                                    Ident::with_quote('"', ROWTIME),
                                ]))
                            }),
                            ..opts.clone()
                        };
                        items.push(SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(name),
                            o,
                        ));
                    }
                }
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(n),
                mut opts,
            ) => {
                let q = object_name(&n);
                if rels.iter().any(|r| r.streaming && r.qualifier == q)
                    && opts.opt_exclude.is_none()
                {
                    opts.opt_exclude = Some(ExcludeSelectItem::Single(ObjectName::from(vec![
                        Ident::with_quote('"', ROWTIME),
                    ])));
                }
                items.push(SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    opts,
                ));
            }
            SelectItem::ExprWithAlias { mut expr, alias }
                if alias.value.eq_ignore_ascii_case(ROWTIME)
                    && (alias.quote_style.is_none() || alias.value == ROWTIME) =>
            {
                // `expr AS ROWTIME`: overrides the output row's ROWTIME.
                replace_in(&mut expr, &replacements, rowtime_subst.as_ref());
                if rowtime_item.is_some() {
                    return plan_err!("ROWTIME is given twice in the select list");
                }
                rowtime_item = Some(items.len());
                rowtime_is_data = false;
                rowtime_overridden = true;
                items.push(SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::with_quote('"', ROWTIME),
                });
            }
            SelectItem::UnnamedExpr(expr)
                if rowtime_item.is_none()
                    && (is_unqualified_rowtime(&expr)
                        || (single_stream.is_some_and(|r| r.streaming)
                            && is_rowtime_ref(&expr, &rels))) =>
            {
                // The user selects the output ROWTIME: it is a data column and the ROWTIME.
                rowtime_item = Some(items.len());
                rowtime_is_data = true;
                items.push(SelectItem::ExprWithAlias {
                    expr: output_rowtime.clone(),
                    alias: Ident::with_quote('"', ROWTIME),
                });
            }
            SelectItem::UnnamedExpr(mut expr) => {
                let original = expr.clone();
                replace_in(&mut expr, &replacements, rowtime_subst.as_ref());
                if expr != original {
                    // Keep the user's text as the column name.
                    let name = match &original {
                        Expr::Identifier(id) => id.value.clone(),
                        Expr::CompoundIdentifier(p) => {
                            p.last().map(|i| i.value.clone()).unwrap_or_default()
                        }
                        other => other.to_string(),
                    };
                    let name = if name == ROWTIME {
                        format!("{ROWTIME}_{}", items.len())
                    } else {
                        name
                    };
                    items.push(SelectItem::ExprWithAlias {
                        expr,
                        alias: Ident::with_quote('"', name),
                    });
                } else if is_rowtime_ref(&expr, &rels) {
                    // `o.ROWTIME` of one side of a join: a data column with its own name.
                    items.push(SelectItem::ExprWithAlias {
                        expr,
                        alias: Ident::with_quote('"', format!("{ROWTIME}_{}", items.len())),
                    });
                } else {
                    items.push(SelectItem::UnnamedExpr(expr));
                }
            }
            SelectItem::ExprWithAlias { mut expr, alias } => {
                replace_in(&mut expr, &replacements, rowtime_subst.as_ref());
                items.push(SelectItem::ExprWithAlias { expr, alias });
            }
            other => items.push(other),
        }
    }
    if rowtime_item.is_none() {
        items.push(SelectItem::ExprWithAlias {
            expr: output_rowtime,
            alias: Ident::with_quote('"', ROWTIME),
        });
        rowtime_is_data = false;
    }
    select.projection = items;
    Ok(SelectInfo {
        streaming: true,
        rowtime_is_data,
        rowtime_overridden,
    })
}

/// SQL's `SIMILAR TO` pattern (`%`, `_`, and regular-expression operators; `.` is literal)
/// as an anchored regular expression.
pub fn similar_pattern_to_regex(p: &str) -> String {
    let mut out = String::from("^(?:");
    for c in p.chars() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '.' | '^' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out.push_str(")$");
    out
}

/// `x SIMILAR TO 'pattern'` → `regexp_like(x, '<regex>')` (DataFusion's SIMILAR TO takes a
/// plain regular expression; KDA follows the SQL standard).
fn similar_to_regex(statement: &mut Statement) -> Result<()> {
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::SimilarTo {
            negated,
            expr,
            pattern,
            escape_char,
        } = e
        {
            if escape_char.is_some() {
                failure = Some(format!("SIMILAR TO ... ESCAPE is not supported: {e}"));
                return ControlFlow::Break(());
            }
            let Some(p) = string_value(pattern) else {
                failure = Some(format!("SIMILAR TO needs a string literal pattern: {e}"));
                return ControlFlow::Break(());
            };
            let regex = similar_pattern_to_regex(&p).replace('\'', "''");
            let sql = format!(
                "{}regexp_like({expr}, '{regex}')",
                if *negated { "NOT " } else { "" }
            );
            match parse_expr(&sql) {
                Ok(x) => *e = x,
                Err(err) => {
                    failure = Some(err.to_string());
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    match failure {
        Some(f) => plan_err!("{f}"),
        None => Ok(()),
    }
}

/// Day-time interval literals with a range qualifier (`INTERVAL '3 4' DAY TO HOUR`,
/// `INTERVAL '59:59.999' MINUTE TO SECOND(3)`), which DataFusion does not parse, become the
/// same span in milliseconds.
fn day_time_intervals(statement: &mut Statement) -> Result<()> {
    let mut failure = None;
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Interval(iv) = e {
            if iv.last_field.is_some() {
                match interval_millis(e)
                    .and_then(|ms| parse_expr(&format!("INTERVAL '{ms} milliseconds'")))
                {
                    Ok(x) => *e = x,
                    Err(err) => {
                        failure = Some(err.to_string());
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    match failure {
        Some(f) => plan_err!("{f}"),
        None => Ok(()),
    }
}

/// `a / b` → `a / kda_nonzero(b)`: KDA fails a row that divides by zero (also for REAL and
/// DOUBLE, where IEEE would give infinity), and the failing row goes to the error stream.
fn divide_checked(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::BinaryOp {
            op: BinaryOperator::Divide,
            right,
            ..
        } = e
        {
            let already = func_parts(right).is_some_and(|(n, _)| n == "kda_nonzero");
            if !already {
                if let Ok(wrapped) = parse_expr(&format!("kda_nonzero({right})")) {
                    **right = wrapped;
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

// ---------------------------------------------------------------------------------------------
// Streaming ORDER BY (SPEC §1.3, §2.2 T-sort, Example I, Example R).
//
//  ORDER BY FLOOR(s.ROWTIME TO SECOND), x DESC   → ORDER BY tumble_start(s.ROWTIME, 1000 ms), x DESC
//      (also STEP / the seconds trick / MONOTONIC); the output ROWTIME becomes the same
//      tumble_start (the bucket start), so rows sorted inside a bucket keep ROWTIME in order
//  ORDER BY ROWTIME, x                           → unchanged (1 ms buckets; also on UNION ALL)
//  ORDER BY ts WITHIN INTERVAL '5' SECOND, x     → (tokens) ORDER BY tsort_within(ts, INTERVAL ...)
//      ts must be selected AS ROWTIME; no DESC; ROWTIME inside ts must be qualified
//  anything else on a stream                     → plan error (ORDER BY ticker fails)
// ---------------------------------------------------------------------------------------------

/// The relations of an already translated SELECT, for resolving `s.ROWTIME` in ORDER BY:
/// everything but a reference table may be a stream.
fn order_by_relations(select: &Select, catalog: &Catalog) -> Vec<Relation> {
    fn walk(f: &TableFactor, catalog: &Catalog, out: &mut Vec<Relation>) {
        match f {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                let n = object_name(name);
                let qualifier = match (alias, args.as_ref().and_then(|a| a.args.first())) {
                    (Some(a), _) => ident_value(&a.name),
                    (None, Some(first)) => string_arg(first).unwrap_or(n.clone()),
                    (None, None) => n.clone(),
                };
                out.push(Relation {
                    qualifier,
                    streaming: catalog.relations.get(&n) != Some(&RelationKind::Table),
                });
            }
            TableFactor::Derived { alias, .. } => out.push(Relation {
                qualifier: alias
                    .as_ref()
                    .map(|a| ident_value(&a.name))
                    .unwrap_or_default(),
                streaming: true,
            }),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                walk(&table_with_joins.relation, catalog, out);
                for j in &table_with_joins.joins {
                    walk(&j.relation, catalog, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for t in &select.from {
        walk(&t.relation, catalog, &mut out);
        for j in &t.joins {
            walk(&j.relation, catalog, &mut out);
        }
    }
    out
}

/// Checks and rewrites the ORDER BY of a streaming query (see the table above).
fn translate_order_by(q: &mut Query, catalog: &Catalog) -> Result<()> {
    use datafusion::sql::sqlparser::ast::OrderByKind;
    let Some(order_by) = q.order_by.as_mut() else {
        return Ok(());
    };
    let text = order_by.to_string();
    let OrderByKind::Expressions(keys) = &mut order_by.kind else {
        return plan_err!(
            "{text} is not supported on a stream; list the keys, the first one ROWTIME-based"
        );
    };
    let Some(first) = keys.first_mut() else {
        return Ok(());
    };
    let descending = first.options.asc == Some(false);
    let SetExpr::Select(select) = q.body.as_mut() else {
        // UNION ALL ... ORDER BY ROWTIME, ...: the union's ROWTIME column, 1 ms buckets.
        if is_unqualified_rowtime(&first.expr) && !descending {
            return Ok(());
        }
        return plan_err!(
            "{text}: the ORDER BY of a UNION ALL of streams must start with ROWTIME (ascending), e.g. ORDER BY ROWTIME, x"
        );
    };
    let rels = order_by_relations(select, catalog);
    if let Some(("tsort_within", args)) = func_parts(&first.expr)
        .as_ref()
        .map(|(n, a)| (n.as_str(), a.as_slice()))
    {
        // T-sort: ORDER BY ts WITHIN INTERVAL ... (rewritten by the tokens module).
        let (Some(ts), Some(within)) = (args.first().map(|e| (*e).clone()), args.get(1)) else {
            return plan_err!("ORDER BY ... WITHIN needs a timestamp expression before WITHIN and an interval after it");
        };
        // Errors show the KDA text.
        let text = text.replacen(&first.expr.to_string(), &format!("{ts} WITHIN {within}"), 1);
        if descending {
            return plan_err!("T-sort ({text}): the sort is ascending only; remove DESC");
        }
        let mut unqualified = false;
        let mut probe = ts.clone();
        let _ = visit_expressions_mut(&mut probe, |x| {
            unqualified |= is_unqualified_rowtime(x);
            ControlFlow::<()>::Continue(())
        });
        if unqualified {
            return plan_err!(
                "T-sort ({text}): the sorted expression {ts} must not use the ROWTIME of the output row; qualify it with its stream, e.g. FLOOR(s.ROWTIME TO MINUTE)"
            );
        }
        let aliased = select.projection.iter().any(|item| {
            matches!(item, SelectItem::ExprWithAlias { expr, alias }
                if alias.value == ROWTIME && norm(expr) == norm(&ts))
        });
        if !aliased {
            return plan_err!(
                "T-sort ({text}): the sorted expression must be in the select list with the alias ROWTIME, e.g. SELECT STREAM {ts} AS ROWTIME, ..."
            );
        }
        return Ok(());
    }
    let Some(ms) = rowtime_window(&first.expr, &rels)? else {
        return plan_err!(
            "ORDER BY on a stream needs a leading monotonic time key such as ROWTIME, FLOOR(s.ROWTIME TO MINUTE) or STEP(s.ROWTIME BY INTERVAL '10' SECOND), or a T-sort ORDER BY ts WITHIN INTERVAL '5' SECOND; {text} starts with {}, which is not ROWTIME-based",
            first.expr
        );
    };
    if descending {
        return plan_err!(
            "{text}: the leading time key {} of a stream must be ascending",
            first.expr
        );
    }
    if is_rowtime_ref(&first.expr, &rels) {
        return Ok(());
    }
    // A FLOOR / STEP bucket: sort per bucket; the output ROWTIME is the bucket start.
    let mut time = None;
    let mut k = first.expr.clone();
    let _ = visit_expressions_mut(&mut k, |x| {
        if time.is_none() && is_rowtime_ref(x, &rels) {
            time = Some(x.to_string());
        }
        ControlFlow::<()>::Continue(())
    });
    let time = time.unwrap_or_else(|| ROWTIME.to_string());
    let start = parse_expr(&format!(
        "tumble_start({time}, INTERVAL '{ms} milliseconds')"
    ))?;
    first.expr = start.clone();
    for item in select.projection.iter_mut() {
        if let SelectItem::ExprWithAlias { expr, alias } = item {
            if alias.value == ROWTIME && is_rowtime_ref(expr, &rels) {
                *expr = start.clone();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::tokenize;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        for s in [
            "WEATHERSTREAM",
            "SOURCE_SQL_STREAM_001",
            "ORDERS_STREAM",
            "SHIPMENTS_STREAM",
        ] {
            c.relations.insert(s.into(), RelationKind::Stream);
        }
        c.relations
            .insert("CompanyName".into(), RelationKind::Table);
        c
    }

    fn tr(sql: &str) -> String {
        let toks = tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect();
        translate_query(toks, &catalog())
            .unwrap()
            .statement
            .to_string()
    }

    fn err(sql: &str) -> String {
        let toks = tokenize(sql)
            .unwrap()
            .into_iter()
            .map(|t| t.token)
            .collect();
        translate_query(toks, &catalog()).unwrap_err().to_string()
    }

    #[test]
    fn tumbling_floor() {
        let s = tr("SELECT STREAM FLOOR(WEATHERSTREAM.ROWTIME to DAY) AS FLOOR_DAY, MIN(TEMP) AS MIN_TEMP FROM WEATHERSTREAM GROUP BY FLOOR(WEATHERSTREAM.ROWTIME TO DAY)");
        assert_eq!(
            s,
            "SELECT tumble_start(WEATHERSTREAM.ROWTIME, INTERVAL '86400000 milliseconds') AS FLOOR_DAY, min(TEMP) AS MIN_TEMP, tumble_end(WEATHERSTREAM.ROWTIME, INTERVAL '86400000 milliseconds') AS \"ROWTIME\" FROM WEATHERSTREAM GROUP BY tumble_start(WEATHERSTREAM.ROWTIME, INTERVAL '86400000 milliseconds'), tumble_end(WEATHERSTREAM.ROWTIME, INTERVAL '86400000 milliseconds')"
        );
    }

    #[test]
    fn seconds_trick_is_a_ten_second_window() {
        let s = tr("SELECT STREAM TICKER, COUNT(*) FROM SOURCE_SQL_STREAM_001 AS s GROUP BY TICKER, FLOOR((s.ROWTIME - TIMESTAMP '1970-01-01 00:00:00') SECOND / 10 TO SECOND)");
        assert!(
            s.contains("tumble_start(S.ROWTIME, INTERVAL '10000 milliseconds')"),
            "{s}"
        );
    }

    #[test]
    fn plain_query_gets_input_rowtime() {
        let s = tr("SELECT STREAM ticker, price / 2 FROM SOURCE_SQL_STREAM_001 WHERE price > 1");
        assert_eq!(
            s,
            "SELECT TICKER, PRICE / kda_nonzero(2), \"SOURCE_SQL_STREAM_001\".ROWTIME AS \"ROWTIME\" FROM SOURCE_SQL_STREAM_001 WHERE PRICE > 1"
        );
        let s = tr("SELECT STREAM * FROM SOURCE_SQL_STREAM_001");
        assert!(s.starts_with("SELECT * EXCLUDE \"ROWTIME\""), "{s}");
    }

    #[test]
    fn join_rowtime_is_the_later_one() {
        let s = tr("SELECT STREAM ROWTIME as \"resultrowtime\", s.\"orderid\", o.ROWTIME as \"ordertime\" FROM ORDERS_STREAM OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS o JOIN SHIPMENTS_STREAM AS s ON o.\"orderid\" = s.\"orderid\"");
        assert!(
            s.contains("greatest(\"O\".ROWTIME, \"S\".ROWTIME) AS \"resultrowtime\""),
            "{s}"
        );
        assert!(s.contains("AS \"ROWTIME\""), "{s}");
    }

    #[test]
    fn similar_to_follows_sql() {
        assert_eq!(similar_pattern_to_regex("%TECH%"), "^(?:.*TECH.*)$");
        assert_eq!(similar_pattern_to_regex("a.b_(c|d)"), "^(?:a\\.b.(c|d))$");
        let s = tr("SELECT STREAM * FROM SOURCE_SQL_STREAM_001 WHERE sector SIMILAR TO '%TECH%'");
        assert!(s.contains("regexp_like(SECTOR, '^(?:.*TECH.*)$')"), "{s}");
    }

    #[test]
    fn order_by_buckets_and_tsort() {
        // Example I: the FLOOR key becomes a 1-second bucket, which is also the output ROWTIME.
        let s = tr("SELECT STREAM * FROM WEATHERSTREAM ORDER BY FLOOR(WEATHERSTREAM.ROWTIME TO SECOND), ANOMALY_SCORE DESC");
        assert_eq!(
            s,
            "SELECT * EXCLUDE \"ROWTIME\", tumble_start(WEATHERSTREAM.ROWTIME, INTERVAL '1000 milliseconds') AS \"ROWTIME\" FROM WEATHERSTREAM ORDER BY tumble_start(WEATHERSTREAM.ROWTIME, INTERVAL '1000 milliseconds'), ANOMALY_SCORE DESC"
        );
        let s = tr("SELECT STREAM ticker FROM SOURCE_SQL_STREAM_001 ORDER BY ROWTIME, ticker");
        assert!(
            s.ends_with("AS \"ROWTIME\" FROM SOURCE_SQL_STREAM_001 ORDER BY ROWTIME, TICKER"),
            "{s}"
        );
        let s = tr("SELECT STREAM ts AS ROWTIME, ticker FROM SOURCE_SQL_STREAM_001 ORDER BY ts WITHIN INTERVAL '5' SECOND, ticker");
        assert_eq!(
            s,
            "SELECT TS AS \"ROWTIME\", TICKER FROM SOURCE_SQL_STREAM_001 ORDER BY tsort_within(TS, INTERVAL '5' SECOND), TICKER"
        );
        assert!(
            err("SELECT STREAM ticker FROM SOURCE_SQL_STREAM_001 ORDER BY ticker")
                .contains("needs a leading monotonic time key")
        );
        // A batch query over a reference table keeps its ORDER BY.
        let s = tr("SELECT * FROM \"CompanyName\" ORDER BY 1");
        assert!(s.ends_with("ORDER BY 1"), "{s}");
    }

    #[test]
    fn invalid_group_by() {
        assert!(
            err("SELECT STREAM CITY, COUNT(*) FROM WEATHERSTREAM GROUP BY CITY")
                .contains("monotonic ROWTIME-based")
        );
        assert!(err("SELECT STREAM COUNT(*) FROM WEATHERSTREAM AS w GROUP BY STEP(w.ROWTIME BY INTERVAL '1' MINUTE), FLOOR(w.ROWTIME TO HOUR)").contains("only one ROWTIME"));
        assert!(err("SELECT STREAM COUNT(*) FROM WEATHERSTREAM").contains("needs a window"));
    }
}
