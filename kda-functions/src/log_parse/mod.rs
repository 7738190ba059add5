//! Log parsing functions. Each returns a row-typed value: an Arrow `Struct` whose fields are
//! the parsed columns, so KDA's `t.REC.COLUMN1` becomes a struct field access
//! (`get_field(rec, 'COLUMN1')`, or `rec."COLUMN1"` / `t.rec."COLUMN1"` with a quoted field
//! name — see `tests/sql.rs`). Unless column descriptions are given, the fields are
//! `COLUMN1 .. COLUMNn`, upper case, `VARCHAR(1024)` (Arrow `Utf8`, values truncated to 1024
//! characters), as documented.
//!
//! Every argument after the first must be a constant: it decides the result type.
//! A NULL input string gives a NULL struct; so does an input that does not match
//! (`REGEX_LOG_PARSE`: "NULL on no match"; `FAST_REGEX_LOG_PARSE`: "returns no fields";
//! `W3C_LOG_PARSE` / `SYS_LOG_PARSE`: chosen the same way).
//!
//! | function | columns | matching |
//! |---|---|---|
//! | `FAST_REGEX_LOG_PARSE(str, pattern)` | one `COLUMNi` per parenthesised group | the KDA "Fast Regex" syntax ([`formats::fast_regex_to_regex`]); the whole string must be accounted for; quantifiers are lazy |
//! | `REGEX_LOG_PARSE(str, regex [, columns])` | one per capture group, or the column list | Java regex ([`crate::java_regex`]) matched against the **whole** string (Java `Matcher.matches()`) |
//! | `VARIABLE_COLUMN_LOG_PARSE(str, columns, delimiter [, escape [, quote]])` | `columns` is a count (`COLUMN1..n`) or a column list | split on the delimiter string, honouring escape and quote characters |
//! | `FIXED_COLUMN_LOG_PARSE(str, columns)` | the column list; each needs `START n [FOR m]` | fixed character positions |
//! | `W3C_LOG_PARSE(str, format)` | one `COLUMNi` per `%` directive | `COMMON`, `COMMON WITH VHOST`, `NCSA EXTENDED`, `REFERER`, `AGENT`, `IIS`, or a custom Apache format ([`formats::apache_format_to_regex`]) |
//! | `SYS_LOG_PARSE(str)` | `COLUMN1 TIMESTAMP`, `COLUMN2 VARCHAR` | `[<PRI>]Mmm dd HH:mm:ss rest` |
//!
//! Column lists (`'NAME [TYPE] datatype [NOT NULL] [''format''] [START n [FOR m]]', ...`,
//! [`columns::parse_column_specs`]): the types are VARCHAR(n), CHAR(n), TINYINT, SMALLINT,
//! INTEGER, BIGINT, REAL, DOUBLE, DECIMAL(p,s), BOOLEAN, DATE, TIME, TIMESTAMP; unquoted names
//! are upper-cased; `NAME TYPE start length` is accepted as a shorthand for
//! `NAME TYPE START start FOR length`; DATE/TIME/TIMESTAMP columns may carry a quoted
//! `SimpleDateFormat` pattern (without one, ISO `yyyy-MM-dd[ HH:mm:ss[.SSS]]` text is accepted).
//!
//! Choices where KDA's documentation is silent (tested in this module):
//! * A value that cannot be converted to its column type is NULL (KDA would route the row to
//!   the error stream; a NULL keeps the other columns). Non-text values are trimmed before
//!   conversion; text values are kept as they are. `NOT NULL` is accepted but not enforced.
//! * `REGEX_LOG_PARSE` with a column list: columns take the groups in order; extra columns are
//!   NULL, extra groups are ignored.
//! * `VARIABLE_COLUMN_LOG_PARSE`: extra fields beyond the declared columns are ignored; missing
//!   fields are NULL (SPEC §4 item 8). An empty field is the empty string (NULL for non-text
//!   columns). The escape character makes the next character literal and is removed. Quote
//!   characters are removed; a delimiter inside quotes is data. Only the first character of the
//!   escape string is used; an empty escape or quote string means none.
//! * `FIXED_COLUMN_LOG_PARSE`: `START` is 0-based (documented) and counts characters; without
//!   `FOR` the column runs to the end of the line; a column starting beyond the end of the line
//!   is NULL, one that is cut short gets the characters that exist.
//! * `W3C_LOG_PARSE`: all columns are VARCHAR and keep the raw text (`-` stays `-`); `%t` loses
//!   its square brackets; quoted directives lose their quotes. `IIS` is the comma-separated
//!   Microsoft IIS format with 15 fields.
//! * `SYS_LOG_PARSE`: the syslog timestamp has no year, and it is parsed with the
//!   `SimpleDateFormat` pattern `MMM d HH:mm:ss`, so the year is 1970 (Java's default); add the
//!   year in SQL if needed. `COLUMN2` is everything after the timestamp (host and message).
//! * `FAST_REGEX_LOG_PARSE`: KDA evaluates its decomposed pattern lazily *without
//!   backtracking*; here the pattern runs as one lazy regex, which finds the same columns
//!   whenever KDA finds a match, but may also match a few inputs KDA would reject.

pub mod columns;
pub mod formats;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use regex::Regex;

use crate::util::{check_arg_count, coerce_string, lower_alias, scalar_value_str, CompileCache};
use columns::{convert_column, default_columns, parse_column_specs, ColumnSpec, SqlType};

/// Which log parser a [`LogParse`] UDF is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogParserKind {
    /// `FAST_REGEX_LOG_PARSE`
    FastRegex,
    /// `REGEX_LOG_PARSE`
    Regex,
    /// `VARIABLE_COLUMN_LOG_PARSE`
    VariableColumn,
    /// `FIXED_COLUMN_LOG_PARSE`
    FixedColumn,
    /// `W3C_LOG_PARSE`
    W3c,
    /// `SYS_LOG_PARSE`
    SysLog,
}

impl LogParserKind {
    /// The KDA function name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FastRegex => "FAST_REGEX_LOG_PARSE",
            Self::Regex => "REGEX_LOG_PARSE",
            Self::VariableColumn => "VARIABLE_COLUMN_LOG_PARSE",
            Self::FixedColumn => "FIXED_COLUMN_LOG_PARSE",
            Self::W3c => "W3C_LOG_PARSE",
            Self::SysLog => "SYS_LOG_PARSE",
        }
    }

    fn arity(self) -> (std::ops::RangeInclusive<usize>, &'static str) {
        match self {
            Self::FastRegex => (2..=2, "FAST_REGEX_LOG_PARSE(string, 'fast regex')"),
            Self::Regex => (2..=3, "REGEX_LOG_PARSE(string, 'java regex' [, 'columns'])"),
            Self::VariableColumn => (
                3..=5,
                "VARIABLE_COLUMN_LOG_PARSE(string, columns, 'delimiter' [, 'escape' [, 'quote']])",
            ),
            Self::FixedColumn => (
                2..=2,
                "FIXED_COLUMN_LOG_PARSE(string, 'NAME TYPE type START n FOR m, ...')",
            ),
            Self::W3c => (
                2..=2,
                "W3C_LOG_PARSE(string, 'COMMON' | ... | 'apache format')",
            ),
            Self::SysLog => (1..=1, "SYS_LOG_PARSE(string)"),
        }
    }
}

/// How a compiled parser splits one line into raw column texts.
#[derive(Debug)]
enum Extractor {
    /// Capture group `i + 1` feeds column `i`.
    Regex(Regex),
    Variable {
        delimiter: String,
        escape: Option<char>,
        quote: Option<(char, char)>,
    },
    Fixed,
}

/// A parser compiled from the constant arguments.
#[derive(Debug)]
pub struct CompiledParser {
    columns: Vec<ColumnSpec>,
    extractor: Extractor,
}

impl CompiledParser {
    /// The struct fields of the result.
    pub fn fields(&self) -> Fields {
        self.columns.iter().map(|c| c.field()).collect()
    }

    /// Raw texts for one line, or `None` if it does not match.
    fn extract(&self, line: &str) -> Option<Vec<Option<String>>> {
        let n = self.columns.len();
        match &self.extractor {
            Extractor::Regex(re) => {
                let caps = re.captures(line)?;
                Some(
                    (1..=n)
                        .map(|g| caps.get(g).map(|m| m.as_str().to_string()))
                        .collect(),
                )
            }
            Extractor::Variable {
                delimiter,
                escape,
                quote,
            } => {
                let mut fields = split_variable(line, delimiter, *escape, *quote);
                fields.truncate(n);
                let mut out: Vec<Option<String>> = fields.into_iter().map(Some).collect();
                out.resize(n, None);
                Some(out)
            }
            Extractor::Fixed => {
                let chars: Vec<char> = line.chars().collect();
                Some(
                    self.columns
                        .iter()
                        .map(|c| {
                            let start = c.start.unwrap_or(0);
                            if start >= chars.len() {
                                return None;
                            }
                            let end = match c.length {
                                Some(len) => start.saturating_add(len).min(chars.len()),
                                None => chars.len(),
                            };
                            Some(chars[start..end].iter().collect())
                        })
                        .collect(),
                )
            }
        }
    }
}

/// Splits `line` on `delimiter`; `escape` makes the next character literal, text between
/// `quote.0` and `quote.1` may contain delimiters. Escape and quote characters are removed.
pub fn split_variable(
    line: &str,
    delimiter: &str,
    escape: Option<char>,
    quote: Option<(char, char)>,
) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if escape == Some(c) {
            match after.chars().next() {
                Some(next) => {
                    current.push(next);
                    rest = &after[next.len_utf8()..];
                }
                None => rest = after,
            }
            continue;
        }
        if let Some((open, close)) = quote {
            if in_quote && c == close {
                in_quote = false;
                rest = after;
                continue;
            }
            if !in_quote && c == open {
                in_quote = true;
                rest = after;
                continue;
            }
        }
        if !in_quote && !delimiter.is_empty() && rest.starts_with(delimiter) {
            fields.push(std::mem::take(&mut current));
            rest = &rest[delimiter.len()..];
            continue;
        }
        current.push(c);
        rest = after;
    }
    fields.push(current);
    fields
}

/// A constant string argument (`None` for NULL), or a planning error naming the argument.
fn const_string(func: &str, what: &str, value: &ScalarValue) -> Result<Option<String>> {
    match scalar_value_str(value) {
        Some(v) => Ok(v.map(str::to_string)),
        None => plan_err!(
            "{func}: {what} must be a character string, got {}",
            value.data_type()
        ),
    }
}

fn required_string(func: &str, what: &str, value: &ScalarValue) -> Result<String> {
    match const_string(func, what, value)? {
        Some(s) => Ok(s),
        None => plan_err!("{func}: {what} must not be NULL"),
    }
}

fn single_char(func: &str, what: &str, value: Option<&ScalarValue>) -> Result<Option<char>> {
    match value {
        None => Ok(None),
        Some(v) => Ok(const_string(func, what, v)?.and_then(|s| s.chars().next())),
    }
}

/// Compiles a parser from the constant arguments (everything after the input string).
pub fn compile_parser(kind: LogParserKind, consts: &[ScalarValue]) -> Result<CompiledParser> {
    let f = kind.name();
    let (arity, usage) = kind.arity();
    if !arity.contains(&(consts.len() + 1)) {
        return plan_err!(
            "{f}: wrong number of arguments ({}); usage: {usage}",
            consts.len() + 1
        );
    }
    let compile_regex = |re: &str| -> Result<Regex> {
        Regex::new(re).map_err(|e| {
            datafusion::common::DataFusionError::Plan(format!("{f}: invalid pattern: {e}"))
        })
    };
    match kind {
        LogParserKind::FastRegex => {
            let pattern = required_string(f, "the pattern (argument 2)", &consts[0])?;
            let re = compile_regex(&formats::fast_regex_to_regex(f, &pattern)?)?;
            Ok(CompiledParser {
                columns: default_columns(re.captures_len() - 1),
                extractor: Extractor::Regex(re),
            })
        }
        LogParserKind::Regex => {
            let pattern = required_string(f, "the regex (argument 2)", &consts[0])?;
            let java = crate::java_regex::translate(&pattern).map_err(|e| {
                datafusion::common::DataFusionError::Plan(format!(
                    "{f}: invalid regular expression '{pattern}': {e}"
                ))
            })?;
            let re = compile_regex(&format!("^(?:{java})$"))?;
            let groups = re.captures_len() - 1;
            let columns = match consts.get(1) {
                Some(spec) => parse_column_specs(
                    f,
                    &required_string(f, "the column list (argument 3)", spec)?,
                )?,
                None => default_columns(groups),
            };
            if columns.is_empty() {
                return plan_err!("{f}: the regex '{pattern}' has no capture groups");
            }
            Ok(CompiledParser {
                columns,
                extractor: Extractor::Regex(re),
            })
        }
        LogParserKind::VariableColumn => {
            let columns = match &consts[0] {
                ScalarValue::Int8(Some(_))
                | ScalarValue::Int16(Some(_))
                | ScalarValue::Int32(Some(_))
                | ScalarValue::Int64(Some(_))
                | ScalarValue::UInt8(Some(_))
                | ScalarValue::UInt16(Some(_))
                | ScalarValue::UInt32(Some(_))
                | ScalarValue::UInt64(Some(_)) => {
                    let n = consts[0]
                        .cast_to(&DataType::Int64)
                        .ok()
                        .and_then(|v| match v {
                            ScalarValue::Int64(Some(n)) => usize::try_from(n).ok(),
                            _ => None,
                        })
                        .filter(|n| (1..=10_000).contains(n));
                    match n {
                        Some(n) => default_columns(n),
                        None => {
                            return plan_err!(
                                "{f}: the number of columns must be between 1 and 10000, got {}",
                                consts[0]
                            )
                        }
                    }
                }
                other => parse_column_specs(
                    f,
                    &required_string(
                        f,
                        "the columns (argument 2: a count or a column list)",
                        other,
                    )?,
                )?,
            };
            let delimiter = required_string(f, "the delimiter (argument 3)", &consts[1])?;
            if delimiter.is_empty() {
                return plan_err!("{f}: the delimiter must not be empty");
            }
            let escape = single_char(f, "the escape string (argument 4)", consts.get(2))?;
            let quote = match consts.get(3) {
                None => None,
                Some(q) => const_string(f, "the quote string (argument 5)", q)?.and_then(|q| {
                    let mut chars = q.chars();
                    let open = chars.next()?;
                    Some((open, chars.next().unwrap_or(open)))
                }),
            };
            Ok(CompiledParser {
                columns,
                extractor: Extractor::Variable {
                    delimiter,
                    escape,
                    quote,
                },
            })
        }
        LogParserKind::FixedColumn => {
            let spec = required_string(f, "the column list (argument 2)", &consts[0])?;
            let columns = parse_column_specs(f, &spec)?;
            if let Some(c) = columns.iter().find(|c| c.start.is_none()) {
                return plan_err!(
                    "{f}: column {} needs a position: NAME TYPE type START n [FOR length]",
                    c.name
                );
            }
            Ok(CompiledParser {
                columns,
                extractor: Extractor::Fixed,
            })
        }
        LogParserKind::W3c => {
            let format = required_string(f, "the format (argument 2)", &consts[0])?;
            let (re, groups) = if formats::is_iis(&format) {
                (formats::iis_regex(), 15)
            } else {
                let apache = formats::predefined_w3c_format(&format).unwrap_or(format.as_str());
                formats::apache_format_to_regex(f, apache)?
            };
            Ok(CompiledParser {
                columns: default_columns(groups),
                extractor: Extractor::Regex(compile_regex(&re)?),
            })
        }
        LogParserKind::SysLog => {
            let mut time = ColumnSpec::named("COLUMN1", SqlType::Timestamp);
            time.format = Some(formats::SYSLOG_TIME_FORMAT.to_string());
            Ok(CompiledParser {
                columns: vec![time, ColumnSpec::named("COLUMN2", SqlType::Varchar(None))],
                extractor: Extractor::Regex(compile_regex(formats::SYSLOG_REGEX)?),
            })
        }
    }
}

/// One of the KDA log parsing functions — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LogParse {
    kind: LogParserKind,
    signature: Signature,
    aliases: Vec<String>,
    cache: CompileCache<CompiledParser>,
}

impl LogParse {
    /// The parser of the given kind.
    pub fn new(kind: LogParserKind) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias(kind.name()),
            cache: CompileCache::new(),
        }
    }

    fn compiled(&self, consts: &[ScalarValue]) -> Result<Arc<CompiledParser>> {
        let key = format!("{consts:?}");
        self.cache
            .get_or_try_insert(&key, |_| compile_parser(self.kind, consts))
    }
}

impl ScalarUDFImpl for LogParse {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let f = self.kind.name();
        let (arity, usage) = self.kind.arity();
        check_arg_count(f, arg_types, arity, usage)?;
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if self.kind == LogParserKind::VariableColumn && i == 1 && t.is_integer() {
                    Ok(DataType::Int64)
                } else if i == 0 {
                    coerce_string(f, "1 (the string to parse)", t)
                } else {
                    coerce_string(f, &format!("{}", i + 1), t)
                }
            })
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!(
            "{}: the result type depends on the constant arguments (return_field_from_args)",
            self.kind.name()
        )
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<Arc<Field>> {
        let f = self.kind.name();
        let mut consts = Vec::with_capacity(args.scalar_arguments.len().saturating_sub(1));
        for (i, value) in args.scalar_arguments.iter().enumerate().skip(1) {
            match value {
                Some(v) => consts.push((*v).clone()),
                None => return plan_err!("{f}: argument {} must be a constant", i + 1),
            }
        }
        let parser = self.compiled(&consts)?;
        Ok(Arc::new(Field::new(
            f,
            DataType::Struct(parser.fields()),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let f = self.kind.name();
        let mut consts = Vec::with_capacity(args.args.len().saturating_sub(1));
        for (i, value) in args.args.iter().enumerate().skip(1) {
            match value {
                ColumnarValue::Scalar(v) => consts.push(v.clone()),
                ColumnarValue::Array(_) => {
                    return exec_err!("{f}: argument {} must be a constant", i + 1)
                }
            }
        }
        let parser = self.compiled(&consts)?;
        let Some(input) = args.args.first() else {
            return exec_err!("{f}: missing the string argument");
        };
        let is_scalar = matches!(input, ColumnarValue::Scalar(_));
        let input = input.to_array(if is_scalar { 1 } else { args.number_rows })?;
        let strings = input.as_string::<i32>();
        let n_cols = parser.columns.len();
        let mut raw: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(strings.len()); n_cols];
        let mut valid = Vec::with_capacity(strings.len());
        for line in strings.iter() {
            let values = line.and_then(|l| parser.extract(l));
            valid.push(values.is_some());
            match values {
                Some(values) => {
                    for (col, v) in raw.iter_mut().zip(values) {
                        col.push(v);
                    }
                }
                None => raw.iter_mut().for_each(|col| col.push(None)),
            }
        }
        let arrays = parser
            .columns
            .iter()
            .zip(raw)
            .map(|(spec, values)| convert_column(spec, values))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let result = StructArray::try_new(parser.fields(), arrays, Some(NullBuffer::from(valid)))?;
        if is_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(Arc::new(result)))
        }
    }
}

/// `FAST_REGEX_LOG_PARSE`.
pub fn fast_regex_log_parse() -> ScalarUDF {
    ScalarUDF::new_from_impl(LogParse::new(LogParserKind::FastRegex))
}

/// `REGEX_LOG_PARSE`.
pub fn regex_log_parse() -> ScalarUDF {
    ScalarUDF::new_from_impl(LogParse::new(LogParserKind::Regex))
}

/// `VARIABLE_COLUMN_LOG_PARSE`.
pub fn variable_column_log_parse() -> ScalarUDF {
    ScalarUDF::new_from_impl(LogParse::new(LogParserKind::VariableColumn))
}

/// `FIXED_COLUMN_LOG_PARSE`.
pub fn fixed_column_log_parse() -> ScalarUDF {
    ScalarUDF::new_from_impl(LogParse::new(LogParserKind::FixedColumn))
}

/// `W3C_LOG_PARSE`.
pub fn w3c_log_parse() -> ScalarUDF {
    ScalarUDF::new_from_impl(LogParse::new(LogParserKind::W3c))
}

/// `SYS_LOG_PARSE`.
pub fn sys_log_parse() -> ScalarUDF {
    ScalarUDF::new_from_impl(LogParse::new(LogParserKind::SysLog))
}

/// The value of field `name` in a struct array (tests and callers inspecting results).
pub fn struct_field<'a>(value: &'a StructArray, name: &str) -> Option<&'a ArrayRef> {
    value.column_by_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{Int32Type, TimestampMillisecondType};

    fn s(v: &str) -> ColumnarValue {
        scalar(ScalarValue::Utf8(Some(v.to_string())))
    }

    /// Runs a parser over `lines` and returns the struct.
    fn parse(udf: &ScalarUDF, lines: &[Option<&str>], consts: Vec<ColumnarValue>) -> StructArray {
        let input = Arc::new(StringArray::from(lines.to_vec()));
        let mut args = vec![ColumnarValue::Array(input)];
        args.extend(consts);
        let out = invoke(udf, args, lines.len())
            .unwrap()
            .to_array(lines.len())
            .unwrap();
        out.as_struct().clone()
    }

    fn text(a: &StructArray, col: &str, row: usize) -> Option<String> {
        let c = struct_field(a, col).unwrap().as_string::<i32>();
        (!c.is_null(row)).then(|| c.value(row).to_string())
    }

    fn names(a: &StructArray) -> Vec<String> {
        a.fields().iter().map(|f| f.name().clone()).collect()
    }

    #[test]
    fn fast_regex_columns_and_no_match() {
        let a = parse(
            &fast_regex_log_parse(),
            &[Some("Mary_had_a_little_lamb"), Some("nounderscore"), None],
            vec![s("(.*)_(._.*)_.*")],
        );
        assert_eq!(names(&a), ["COLUMN1", "COLUMN2"]);
        // the SQL reference's example: lazy groups, yet the whole string must be consumed
        assert_eq!(text(&a, "COLUMN1", 0).as_deref(), Some("Mary_had"));
        assert_eq!(text(&a, "COLUMN2", 0).as_deref(), Some("a_little"));
        assert!(a.is_null(1) && a.is_null(2));
        assert!(struct_field(&a, "COLUMN1").unwrap().is_null(1));
    }

    #[test]
    fn regex_log_parse_default_and_typed_columns() {
        let a = parse(
            &regex_log_parse(),
            &[Some("ENERGY"), Some("xyz")],
            vec![s(".*([E].).*([R].*)")],
        );
        // greedy: the last E that still leaves an R after it
        assert_eq!(text(&a, "COLUMN1", 0).as_deref(), Some("EN"));
        assert_eq!(text(&a, "COLUMN2", 0).as_deref(), Some("RGY"));
        assert!(a.is_null(1));
        // whole-string match (Java Matcher.matches)
        let a = parse(
            &regex_log_parse(),
            &[Some("ab1"), Some("1")],
            vec![s(r"(\d)")],
        );
        assert!(a.is_null(0));
        assert_eq!(text(&a, "COLUMN1", 1).as_deref(), Some("1"));
        let a = parse(
            &regex_log_parse(),
            &[Some("id=42 name=bob"), Some("id=x name=al")],
            vec![
                s(r"id=(\w+) name=(\w+)"),
                s("ID INTEGER, NAME VARCHAR(2), EXTRA VARCHAR(5)"),
            ],
        );
        assert_eq!(names(&a), ["ID", "NAME", "EXTRA"]);
        let ids = struct_field(&a, "ID").unwrap().as_primitive::<Int32Type>();
        assert_eq!(ids.value(0), 42);
        assert!(ids.is_null(1)); // not an integer: NULL field, row kept
        assert!(!a.is_null(1));
        assert_eq!(text(&a, "NAME", 0).as_deref(), Some("bo")); // VARCHAR(2) truncation
        assert_eq!(text(&a, "EXTRA", 0), None);
    }

    #[test]
    fn variable_column_count_delimiter_escape_quote() {
        let a = parse(
            &variable_column_log_parse(),
            &[
                Some("a,b,c,d"),
                Some("a\\,b,c"),
                Some("\"x,y\",z"),
                Some("only"),
                Some(""),
            ],
            vec![
                scalar(ScalarValue::Int64(Some(3))),
                s(","),
                s("\\"),
                s("\""),
            ],
        );
        assert_eq!(names(&a), ["COLUMN1", "COLUMN2", "COLUMN3"]);
        assert_eq!(text(&a, "COLUMN3", 0).as_deref(), Some("c")); // extra field ignored
        assert_eq!(text(&a, "COLUMN1", 1).as_deref(), Some("a,b"));
        assert_eq!(text(&a, "COLUMN1", 2).as_deref(), Some("x,y"));
        assert_eq!(text(&a, "COLUMN2", 2).as_deref(), Some("z"));
        assert_eq!(text(&a, "COLUMN2", 3), None); // missing fields are NULL
        assert_eq!(text(&a, "COLUMN1", 4).as_deref(), Some(""));
    }

    #[test]
    fn variable_column_spec_and_multichar_delimiter() {
        let a = parse(
            &variable_column_log_parse(),
            &[Some("7||2018-11-01 01:00:00||ok")],
            vec![s("N INTEGER, T TIMESTAMP, S VARCHAR(10)"), s("||")],
        );
        assert_eq!(names(&a), ["N", "T", "S"]);
        assert_eq!(
            struct_field(&a, "N")
                .unwrap()
                .as_primitive::<Int32Type>()
                .value(0),
            7
        );
        assert_eq!(
            struct_field(&a, "T")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            ts_ms("2018-11-01 01:00:00")
        );
        assert_eq!(
            split_variable("a[b,c]d,e", ",", None, Some(('[', ']'))),
            vec!["ab,cd", "e"]
        );
        assert_eq!(split_variable("\ta\t", "\t", None, None), vec!["", "a", ""]);
    }

    #[test]
    fn fixed_column_positions_and_types() {
        let spec = "TS TYPE TIMESTAMP 'dd/MMM/yyyy:HH:mm:ss' START 0 FOR 20, CODE TYPE INTEGER START 21 FOR 3, MSG TYPE VARCHAR(100) START 25";
        let a = parse(
            &fixed_column_log_parse(),
            &[Some("10/Oct/2000:13:55:36 200 all good"), Some("short")],
            vec![s(spec)],
        );
        assert_eq!(names(&a), ["TS", "CODE", "MSG"]);
        let ts = struct_field(&a, "TS")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.value(0), ts_ms("2000-10-10 13:55:36"));
        assert_eq!(
            struct_field(&a, "CODE")
                .unwrap()
                .as_primitive::<Int32Type>()
                .value(0),
            200
        );
        assert_eq!(text(&a, "MSG", 0).as_deref(), Some("all good"));
        assert!(ts.is_null(1)); // "short" does not parse as a timestamp
        assert_eq!(text(&a, "MSG", 1), None); // starts beyond the end
                                              // the NAME TYPE start length shorthand
        let a = parse(
            &fixed_column_log_parse(),
            &[Some("abcdef")],
            vec![s("X VARCHAR(3) 1 2, Y CHAR(2) 4 9")],
        );
        assert_eq!(text(&a, "X", 0).as_deref(), Some("bc"));
        assert_eq!(text(&a, "Y", 0).as_deref(), Some("ef"));
    }

    #[test]
    fn w3c_common_and_iis() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let a = parse(
            &w3c_log_parse(),
            &[Some(line), Some("garbage")],
            vec![s("COMMON")],
        );
        assert_eq!(a.num_columns(), 7);
        assert_eq!(text(&a, "COLUMN1", 0).as_deref(), Some("127.0.0.1"));
        assert_eq!(
            text(&a, "COLUMN4", 0).as_deref(),
            Some("10/Oct/2000:13:55:36 -0700")
        );
        assert_eq!(
            text(&a, "COLUMN5", 0).as_deref(),
            Some("GET /apache_pb.gif HTTP/1.0")
        );
        assert_eq!(text(&a, "COLUMN7", 0).as_deref(), Some("2326"));
        assert!(a.is_null(1));
        let vhost = format!("www.example.com {line}");
        let a = parse(
            &w3c_log_parse(),
            &[Some(&vhost)],
            vec![s("common with vhost")],
        );
        assert_eq!(text(&a, "COLUMN1", 0).as_deref(), Some("www.example.com"));
        let a = parse(
            &w3c_log_parse(),
            &[Some("Mozilla/4.08 [en] (Win98; I ;Nav)")],
            vec![s("AGENT")],
        );
        assert_eq!(a.num_columns(), 1);
        // a directive at the end of the format takes the rest of the line
        assert_eq!(
            text(&a, "COLUMN1", 0).as_deref(),
            Some("Mozilla/4.08 [en] (Win98; I ;Nav)")
        );
        let iis = "192.168.114.201, -, 03/20/98, 7:55:20, W3SVC2, SALES1, 172.21.13.45, 4502, 163, 3223, 200, 0, GET, /DeptLogo.gif, -,";
        let a = parse(&w3c_log_parse(), &[Some(iis)], vec![s("IIS")]);
        assert_eq!(a.num_columns(), 15);
        assert_eq!(text(&a, "COLUMN13", 0).as_deref(), Some("GET"));
    }

    #[test]
    fn sys_log_parse_columns() {
        let a = parse(
            &sys_log_parse(),
            &[
                Some("Feb  5 17:32:18 host1 sshd[42]: Accepted"),
                Some("bad line"),
            ],
            vec![],
        );
        assert_eq!(names(&a), ["COLUMN1", "COLUMN2"]);
        assert_eq!(
            struct_field(&a, "COLUMN1").unwrap().data_type(),
            &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None)
        );
        let ts = struct_field(&a, "COLUMN1")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(ts.value(0), ts_ms("1970-02-05 17:32:18"));
        assert_eq!(
            text(&a, "COLUMN2", 0).as_deref(),
            Some("host1 sshd[42]: Accepted")
        );
        assert!(a.is_null(1));
    }

    #[test]
    fn scalar_input_gives_scalar_struct() {
        let out = invoke(&sys_log_parse(), vec![s("Jan 1 00:00:01 h m")], 1).unwrap();
        let ColumnarValue::Scalar(ScalarValue::Struct(st)) = out else {
            panic!("expected a struct scalar");
        };
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn constant_arguments_are_required_and_checked() {
        let udf = regex_log_parse();
        let patterns = Arc::new(StringArray::from(vec!["(a)"]));
        let err = invoke(&udf, vec![s("a"), ColumnarValue::Array(patterns)], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_LOG_PARSE: argument 2 must be a constant"),
            "{err}"
        );
        let err = invoke(&udf, vec![s("a"), s("a(?=b)")], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_LOG_PARSE: invalid regular expression"),
            "{err}"
        );
        let err = invoke(&udf, vec![s("a"), s("abc")], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no capture groups"), "{err}");
        let err = invoke(&udf, vec![s("a"), scalar(ScalarValue::Utf8(None))], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not be NULL"), "{err}");
        let err = invoke(
            &variable_column_log_parse(),
            vec![s("a"), scalar(ScalarValue::Int64(Some(0))), s(",")],
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("VARIABLE_COLUMN_LOG_PARSE: the number of columns"),
            "{err}"
        );
        let err = invoke(&fixed_column_log_parse(), vec![s("a"), s("A INTEGER")], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FIXED_COLUMN_LOG_PARSE: column A needs a position"),
            "{err}"
        );
        let err = LogParse::new(LogParserKind::SysLog)
            .coerce_types(&[DataType::Int32])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "SYS_LOG_PARSE: argument 1 (the string to parse) must be a character string"
            ),
            "{err}"
        );
        let err = LogParse::new(LogParserKind::W3c)
            .coerce_types(&[DataType::Utf8])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("W3C_LOG_PARSE: wrong number of arguments"),
            "{err}"
        );
    }
}
