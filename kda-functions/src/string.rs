//! String functions whose KDA semantics differ from DataFusion's built-ins.
//!
//! What DataFusion already provides with KDA semantics (verified by the SQL tests in
//! `tests/sql.rs`), so nothing is added for them:
//! * `CHAR_LENGTH` / `CHARACTER_LENGTH` — DataFusion's `character_length` (aliases
//!   `char_length`, `length`), counting characters.
//! * `POSITION(x IN y)` — planned to `strpos`: 1-based, 0 if absent, 1 for an empty search
//!   string.
//! * `SUBSTRING(s FROM a [FOR n])` / `SUBSTRING(s, a [, n])` — `substr`, SQL:2008 semantics
//!   that KDA documents (a start below 1 shortens the length, `FROM 17` of a shorter string is
//!   empty, a negative length is an error).
//! * `LOWER`, `UPPER`, `TRIM`, `||`, `LIKE`, `SIMILAR TO`.
//!
//! Added here:
//! * `REGEX_REPLACE(original, regex, replacement [, startPosition [, occurrence]])` — Java
//!   `String.replaceAll` semantics (Java regex syntax via [`crate::java_regex`], `$1` / `${name}`
//!   group references and `\` escapes in the replacement). `startPosition` (1-based, default 1)
//!   is the first character searched: the text before it is kept as is and the pattern is
//!   applied to the rest (so `^` matches at `startPosition`). `occurrence` 0 (default) replaces
//!   every match, `n > 0` only the n-th. NULL if any argument is NULL; `startPosition` greater
//!   than the length returns `original`; `startPosition < 1` or `occurrence < 0` is an error
//!   (KDA sends the row to the error stream). The two trailing arguments are optional here; the
//!   KDA syntax has all five.
//! * `INITCAP(s)` — KDA upper-cases the first character of each **whitespace-delimited** word
//!   and lower-cases every other character (`INITCAP('o''NEIL-smith')` is `O'neil-smith`);
//!   DataFusion's `initcap` also starts a word after any non-alphanumeric character. Registered
//!   as `INITCAP` / `initcap`, so it replaces DataFusion's `initcap` in the context.
//! * `OVERLAY(s PLACING r FROM start [FOR length])` — KDA: a start below 1 prepends
//!   `1 - start` characters of `r` before overlaying the rest (`OVERLAY('12345' PLACING 'foo'
//!   FROM 0)` is `foo345`), and a negative length is an error; DataFusion rejects starts below
//!   1 and accepts negative lengths. Registered as `OVERLAY` / `overlay`. Because DataFusion
//!   plans the `PLACING` syntax directly to its own function, [`KdaExprPlanner`] routes it to
//!   this one (installed by [`crate::register_all`]).
//! * `SUBSTRING(s FROM 'regex')` — KDA's regular-expression form returns the first match of a
//!   Java regex, NULL if none. DataFusion would try to cast the pattern to an integer;
//!   [`KdaExprPlanner`] routes a `FROM` argument that is a string literal to
//!   `SUBSTRING_REGEX(s, regex)`. (`SUBSTRING(s SIMILAR p ESCAPE e)` is not supported: the SQL
//!   parser does not accept it.)
//! * `rec['COLUMN1']` on a struct — [`KdaExprPlanner`] plans it as `get_field(rec, 'COLUMN1')`,
//!   so the log parsers' results can be subscripted without DataFusion's `nested_expressions`
//!   feature.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::DFSchema;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawFieldAccessExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, GetFieldAccess, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

use crate::java_regex::{self, JavaReplacement};
use crate::util::{
    check_arg_count, coerce_int64, coerce_string, expect_args, invoke_on_arrays, lower_alias,
    scalar_str, CompileCache,
};

/// Compiled regex for row `i` (constant or cached); `None` if the pattern is NULL there.
fn regex_for_row(
    func: &str,
    constant: &Option<Arc<Regex>>,
    cache: &CompileCache<Regex>,
    patterns: &StringArray,
    i: usize,
) -> Result<Option<Arc<Regex>>> {
    if patterns.is_null(i) {
        return Ok(None);
    }
    match constant {
        Some(r) => Ok(Some(Arc::clone(r))),
        None => cache
            .get_or_try_insert(patterns.value(i), |p| java_regex::compile(func, p))
            .map(Some),
    }
}

/// `REGEX_REPLACE` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexReplace {
    signature: Signature,
    aliases: Vec<String>,
    cache: CompileCache<Regex>,
}

impl Default for RegexReplace {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("REGEX_REPLACE"),
            cache: CompileCache::new(),
        }
    }
}

impl ScalarUDFImpl for RegexReplace {
    fn name(&self) -> &str {
        "REGEX_REPLACE"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const F: &str = "REGEX_REPLACE";
        check_arg_count(
            F,
            arg_types,
            3..=5,
            "REGEX_REPLACE(original, regex, replacement, startPosition, occurrence)",
        )?;
        let names = ["1 (original)", "2 (regex)", "3 (replacement)"];
        let mut out = Vec::with_capacity(arg_types.len());
        for (i, t) in arg_types.iter().enumerate() {
            out.push(match i {
                0..=2 => coerce_string(F, names[i], t)?,
                3 => coerce_int64(F, "4 (startPosition)", t)?,
                _ => coerce_int64(F, "5 (occurrence)", t)?,
            });
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        const F: &str = "REGEX_REPLACE";
        let mut args = args.args;
        if !(3..=5).contains(&args.len()) {
            return exec_err!("{F}: expected 3 to 5 arguments, got {}", args.len());
        }
        if args.len() < 4 {
            args.push(ColumnarValue::Scalar(ScalarValue::Int64(Some(1))));
        }
        if args.len() < 5 {
            args.push(ColumnarValue::Scalar(ScalarValue::Int64(Some(0))));
        }
        let constant_regex = match scalar_str(&args[1]) {
            Some(Some(p)) => Some(
                self.cache
                    .get_or_try_insert(p, |p| java_regex::compile(F, p))?,
            ),
            _ => None,
        };
        let constant_replacement =
            match (&constant_regex, scalar_str(&args[2])) {
                (Some(re), Some(Some(r))) => Some(JavaReplacement::parse(r, re).map_err(|e| {
                    exec_datafusion_err(F, &format!("invalid replacement '{r}': {e}"))
                })?),
                _ => None,
            };
        invoke_on_arrays(&args, |arrays| {
            let originals = arrays[0].as_string::<i32>();
            let patterns = arrays[1].as_string::<i32>();
            let replacements = arrays[2].as_string::<i32>();
            let starts = arrays[3].as_primitive::<Int64Type>();
            let occurrences = arrays[4].as_primitive::<Int64Type>();
            let mut out =
                StringBuilder::with_capacity(originals.len(), originals.value_data().len());
            let mut buf = String::new();
            for i in 0..originals.len() {
                if originals.is_null(i)
                    || replacements.is_null(i)
                    || starts.is_null(i)
                    || occurrences.is_null(i)
                {
                    out.append_null();
                    continue;
                }
                let Some(regex) = regex_for_row(F, &constant_regex, &self.cache, patterns, i)?
                else {
                    out.append_null();
                    continue;
                };
                let start = starts.value(i);
                if start < 1 {
                    return exec_err!("{F}: startPosition must be at least 1, got {start}");
                }
                let occurrence = occurrences.value(i);
                if occurrence < 0 {
                    return exec_err!("{F}: occurrence must not be negative, got {occurrence}");
                }
                let per_row;
                let replacement = match &constant_replacement {
                    Some(r) => r,
                    None => {
                        let r = replacements.value(i);
                        per_row = JavaReplacement::parse(r, &regex).map_err(|e| {
                            exec_datafusion_err(F, &format!("invalid replacement '{r}': {e}"))
                        })?;
                        &per_row
                    }
                };
                let original = originals.value(i);
                let offset = usize::try_from(start - 1)
                    .ok()
                    .and_then(|skip| original.char_indices().nth(skip))
                    .map(|(byte, _)| byte);
                let Some(offset) = offset else {
                    out.append_value(original);
                    continue;
                };
                let (head, tail) = original.split_at(offset);
                buf.clear();
                buf.push_str(head);
                let mut last = 0;
                for (n, caps) in regex.captures_iter(tail).enumerate() {
                    let Some(m) = caps.get(0) else { continue };
                    if occurrence == 0 || n as i64 + 1 == occurrence {
                        buf.push_str(&tail[last..m.start()]);
                        replacement.expand(&caps, &mut buf);
                        last = m.end();
                        if occurrence != 0 {
                            break;
                        }
                    }
                }
                buf.push_str(&tail[last..]);
                out.append_value(&buf);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

fn exec_datafusion_err(func: &str, msg: &str) -> datafusion::common::DataFusionError {
    datafusion::common::DataFusionError::Execution(format!("{func}: {msg}"))
}

/// Applies a per-row string → string function over a single `Utf8` argument.
fn map_strings(arg: &ArrayRef, mut f: impl FnMut(&str, &mut String)) -> ArrayRef {
    let strings = arg.as_string::<i32>();
    let mut out = StringBuilder::with_capacity(strings.len(), strings.value_data().len());
    let mut buf = String::new();
    for v in strings.iter() {
        match v {
            Some(s) => {
                buf.clear();
                f(s, &mut buf);
                out.append_value(&buf);
            }
            None => out.append_null(),
        }
    }
    Arc::new(out.finish())
}

/// KDA `INITCAP`: see the [module docs](self).
pub fn kda_initcap(s: &str, out: &mut String) {
    let mut word_start = true;
    for ch in s.chars() {
        if ch.is_whitespace() {
            out.push(ch);
            word_start = true;
        } else if word_start {
            out.extend(ch.to_uppercase());
            word_start = false;
        } else {
            out.extend(ch.to_lowercase());
        }
    }
}

/// `INITCAP` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Initcap {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for Initcap {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("INITCAP"),
        }
    }
}

impl ScalarUDFImpl for Initcap {
    fn name(&self) -> &str {
        "INITCAP"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arg_count("INITCAP", arg_types, 1..=1, "INITCAP(string)")?;
        Ok(vec![coerce_string("INITCAP", "1", &arg_types[0])?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        expect_args("INITCAP", &args.args, 1..=1)?;
        invoke_on_arrays(&args.args, |arrays| {
            Ok(map_strings(&arrays[0], kda_initcap))
        })
    }
}

/// KDA `OVERLAY` on characters; `None` means a negative length (an error).
pub fn kda_overlay(
    original: &str,
    replacement: &str,
    start: i64,
    length: Option<i64>,
) -> Option<String> {
    let length = match length {
        Some(l) if l < 0 => return None,
        Some(l) => l,
        None => replacement.chars().count() as i64,
    };
    let chars: Vec<char> = original.chars().collect();
    let n = chars.len() as i64;
    let prefix_end = (start - 1).clamp(0, n) as usize;
    let suffix_start = (start - 1).saturating_add(length).clamp(0, n) as usize;
    let mut out = String::with_capacity(original.len() + replacement.len());
    out.extend(&chars[..prefix_end]);
    out.push_str(replacement);
    out.extend(&chars[suffix_start..]);
    Some(out)
}

/// `OVERLAY` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Overlay {
    signature: Signature,
    aliases: Vec<String>,
}

impl Default for Overlay {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("OVERLAY"),
        }
    }
}

impl ScalarUDFImpl for Overlay {
    fn name(&self) -> &str {
        "OVERLAY"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const F: &str = "OVERLAY";
        check_arg_count(
            F,
            arg_types,
            3..=4,
            "OVERLAY(original PLACING replacement FROM start [FOR length])",
        )?;
        let mut out = vec![
            coerce_string(F, "1 (original)", &arg_types[0])?,
            coerce_string(F, "2 (replacement)", &arg_types[1])?,
            coerce_int64(F, "3 (start position)", &arg_types[2])?,
        ];
        if let Some(t) = arg_types.get(3) {
            out.push(coerce_int64(F, "4 (length)", t)?);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        expect_args("OVERLAY", &args.args, 3..=4)?;
        invoke_on_arrays(&args.args, |arrays| {
            let originals = arrays[0].as_string::<i32>();
            let replacements = arrays[1].as_string::<i32>();
            let starts = arrays[2].as_primitive::<Int64Type>();
            let lengths = arrays.get(3).map(|a| a.as_primitive::<Int64Type>());
            let mut out =
                StringBuilder::with_capacity(originals.len(), originals.value_data().len());
            for i in 0..originals.len() {
                let length_null = lengths.is_some_and(|l| l.is_null(i));
                if originals.is_null(i)
                    || replacements.is_null(i)
                    || starts.is_null(i)
                    || length_null
                {
                    out.append_null();
                    continue;
                }
                let length = lengths.map(|l| l.value(i));
                match kda_overlay(
                    originals.value(i),
                    replacements.value(i),
                    starts.value(i),
                    length,
                ) {
                    Some(s) => out.append_value(s),
                    None => {
                        return exec_err!(
                            "OVERLAY: the string length must not be negative, got {}",
                            length.unwrap_or_default()
                        )
                    }
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// `SUBSTRING_REGEX(s, regex)`: KDA's `SUBSTRING(s FROM 'regex')` — see the [module docs](self).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SubstringRegex {
    signature: Signature,
    aliases: Vec<String>,
    cache: CompileCache<Regex>,
}

impl Default for SubstringRegex {
    fn default() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: lower_alias("SUBSTRING_REGEX"),
            cache: CompileCache::new(),
        }
    }
}

impl ScalarUDFImpl for SubstringRegex {
    fn name(&self) -> &str {
        "SUBSTRING_REGEX"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const F: &str = "SUBSTRING_REGEX";
        check_arg_count(F, arg_types, 2..=2, "SUBSTRING(string FROM 'regex')")?;
        Ok(vec![
            coerce_string(F, "1 (string)", &arg_types[0])?,
            coerce_string(F, "2 (regex)", &arg_types[1])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        const F: &str = "SUBSTRING_REGEX";
        expect_args(F, &args.args, 2..=2)?;
        let constant = match args.args.get(1).and_then(scalar_str) {
            Some(Some(p)) => Some(
                self.cache
                    .get_or_try_insert(p, |p| java_regex::compile(F, p))?,
            ),
            _ => None,
        };
        invoke_on_arrays(&args.args, |arrays| {
            let strings = arrays[0].as_string::<i32>();
            let patterns = arrays[1].as_string::<i32>();
            let mut out = StringBuilder::with_capacity(strings.len(), 16 * strings.len());
            for i in 0..strings.len() {
                let regex = regex_for_row(F, &constant, &self.cache, patterns, i)?;
                match (strings.is_null(i), regex) {
                    (false, Some(re)) => match re.find(strings.value(i)) {
                        Some(m) => out.append_value(m.as_str()),
                        None => out.append_null(),
                    },
                    _ => out.append_null(),
                }
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }
}

/// Routes `OVERLAY(... PLACING ...)` and `SUBSTRING(s FROM 'regex')` to the KDA functions,
/// and plans `rec['NAME']` on a struct (a log parser's result) as `get_field(rec, 'NAME')`,
/// which DataFusion only does when its `nested_expressions` feature is enabled (this workspace
/// disables it). It must run before DataFusion's own planners (see [`crate::register_all`]).
#[derive(Debug, Default)]
pub struct KdaExprPlanner;

impl ExprPlanner for KdaExprPlanner {
    fn plan_overlay(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(overlay()), args),
        )))
    }

    fn plan_field_access(
        &self,
        expr: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        let RawFieldAccessExpr { field_access, expr } = expr;
        if let GetFieldAccess::NamedStructField { name } = &field_access {
            if matches!(expr.get_type(schema), Ok(DataType::Struct(_))) {
                return Ok(PlannerResult::Planned(get_field(expr, name.clone())));
            }
        }
        Ok(PlannerResult::Original(RawFieldAccessExpr {
            field_access,
            expr,
        }))
    }

    fn plan_substring(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        let from_is_string = matches!(
            args.get(1),
            Some(Expr::Literal(
                ScalarValue::Utf8(_) | ScalarValue::LargeUtf8(_) | ScalarValue::Utf8View(_),
                _
            ))
        );
        if args.len() == 2 && from_is_string {
            return Ok(PlannerResult::Planned(Expr::ScalarFunction(
                ScalarFunction::new_udf(Arc::new(substring_regex()), args),
            )));
        }
        Ok(PlannerResult::Original(args))
    }
}

/// `REGEX_REPLACE`.
pub fn regex_replace() -> ScalarUDF {
    ScalarUDF::new_from_impl(RegexReplace::default())
}

/// `INITCAP` (KDA semantics).
pub fn initcap() -> ScalarUDF {
    ScalarUDF::new_from_impl(Initcap::default())
}

/// `OVERLAY` (KDA semantics).
pub fn overlay() -> ScalarUDF {
    ScalarUDF::new_from_impl(Overlay::default())
}

/// `SUBSTRING_REGEX` (KDA `SUBSTRING(s FROM 'regex')`).
pub fn substring_regex() -> ScalarUDF {
    ScalarUDF::new_from_impl(SubstringRegex::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    fn s(v: &str) -> ColumnarValue {
        scalar(ScalarValue::Utf8(Some(v.to_string())))
    }
    fn i(v: i64) -> ColumnarValue {
        scalar(ScalarValue::Int64(Some(v)))
    }
    fn text(v: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(v.to_string()))
    }

    #[test]
    fn regex_replace_all_and_groups() {
        let f = regex_replace();
        assert_eq!(
            invoke_scalar(
                &f,
                vec![
                    s("TECHNOLOGY"),
                    s("TECHNOLOGY"),
                    s("INFORMATION TECHNOLOGY"),
                    i(1),
                    i(0)
                ]
            ),
            text("INFORMATION TECHNOLOGY")
        );
        assert_eq!(
            invoke_scalar(
                &f,
                vec![
                    s("2018-06-13"),
                    s(r"(\d+)-(\d+)-(\d+)"),
                    s("$3/$2/$1"),
                    i(1),
                    i(0)
                ]
            ),
            text("13/06/2018")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("a.b.c"), s(r"\."), s("-")]),
            text("a-b-c")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("abc"), s(""), s("x")]),
            text("xaxbxcx")
        );
    }

    #[test]
    fn regex_replace_start_and_occurrence() {
        let f = regex_replace();
        assert_eq!(
            invoke_scalar(&f, vec![s("aaaa"), s("a"), s("b"), i(3), i(0)]),
            text("aabb")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("aaaa"), s("a"), s("b"), i(1), i(2)]),
            text("abaa")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("aaaa"), s("a"), s("b"), i(2), i(2)]),
            text("aaba")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("aaaa"), s("a"), s("b"), i(1), i(9)]),
            text("aaaa")
        );
        // start beyond the length: original
        assert_eq!(
            invoke_scalar(&f, vec![s("abc"), s("a"), s("b"), i(4), i(0)]),
            text("abc")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("abc"), s("^b"), s("X"), i(2), i(0)]),
            text("aXc")
        );
        // multibyte characters count as one position
        assert_eq!(
            invoke_scalar(&f, vec![s("ééé"), s("é"), s("e"), i(2), i(0)]),
            text("éee")
        );
    }

    #[test]
    fn regex_replace_nulls_and_errors() {
        let f = regex_replace();
        let null = || scalar(ScalarValue::Utf8(None));
        assert_eq!(
            invoke_scalar(&f, vec![null(), s("a"), s("b"), i(1), i(0)]),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("a"), null(), s("b"), i(1), i(0)]),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("a"), s("a"), null(), i(1), i(0)]),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(
                &f,
                vec![
                    s("a"),
                    s("a"),
                    s("b"),
                    scalar(ScalarValue::Int64(None)),
                    i(0)
                ]
            ),
            ScalarValue::Utf8(None)
        );
        let err = invoke(&f, vec![s("a"), s("a"), s("b"), i(0), i(0)], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_REPLACE: startPosition must be at least 1"),
            "{err}"
        );
        let err = invoke(&f, vec![s("a"), s("a"), s("b"), i(1), i(-1)], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_REPLACE: occurrence must not be negative"),
            "{err}"
        );
        let err = invoke(&f, vec![s("a"), s("(a"), s("b")], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_REPLACE: invalid regular expression"),
            "{err}"
        );
        let err = invoke(&f, vec![s("a"), s("(a)"), s("$2")], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_REPLACE: invalid replacement '$2': No group 2"),
            "{err}"
        );
        let err = RegexReplace::default()
            .coerce_types(&[DataType::Utf8, DataType::Utf8, DataType::Int32])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("REGEX_REPLACE: argument 3 (replacement) must be a character string"),
            "{err}"
        );
    }

    #[test]
    fn regex_replace_per_row_patterns() {
        let originals = Arc::new(StringArray::from(vec!["abc", "abc", "abc"]));
        let patterns = Arc::new(StringArray::from(vec![Some("b"), Some("c"), None]));
        let out = invoke(
            &regex_replace(),
            vec![
                ColumnarValue::Array(originals),
                ColumnarValue::Array(patterns),
                s("_"),
            ],
            3,
        )
        .unwrap()
        .to_array(3)
        .unwrap();
        let got: Vec<Option<&str>> = out.as_string::<i32>().iter().collect();
        assert_eq!(got, vec![Some("a_c"), Some("ab_"), None]);
    }

    #[test]
    fn initcap_kda() {
        let f = initcap();
        assert_eq!(
            invoke_scalar(&f, vec![s("Each FIRST lEtTeR is cAPITALIZED")]),
            text("Each First Letter Is Capitalized")
        );
        assert_eq!(
            invoke_scalar(&f, vec![s("o'NEIL-smith  x")]),
            text("O'neil-smith  X")
        );
        assert_eq!(invoke_scalar(&f, vec![s("")]), text(""));
        assert_eq!(
            invoke_scalar(&f, vec![scalar(ScalarValue::Utf8(None))]),
            ScalarValue::Utf8(None)
        );
        assert!(Initcap::default()
            .coerce_types(&[DataType::Int32])
            .unwrap_err()
            .to_string()
            .contains("INITCAP"));
    }

    #[test]
    fn overlay_documented_examples() {
        // KDA SQL reference, OVERLAY examples
        let cases = [
            (1, None, "foo45"),
            (0, None, "foo345"),
            (-2, None, "foo12345"),
            (4, None, "123foo"),
            (17, None, "12345foo"),
            (2, Some(0), "1foo2345"),
            (2, Some(2), "1foo45"),
            (2, Some(9), "1foo"),
        ];
        for (start, len, expected) in cases {
            let mut args = vec![s("12345"), s("foo"), i(start)];
            if let Some(l) = len {
                args.push(i(l));
            }
            assert_eq!(
                invoke_scalar(&overlay(), args),
                text(expected),
                "FROM {start} FOR {len:?}"
            );
        }
    }

    #[test]
    fn overlay_nulls_and_errors() {
        assert_eq!(
            invoke_scalar(
                &overlay(),
                vec![s("abc"), scalar(ScalarValue::Utf8(None)), i(1)]
            ),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(
                &overlay(),
                vec![s("abc"), s("x"), i(1), scalar(ScalarValue::Int64(None))]
            ),
            ScalarValue::Utf8(None)
        );
        let err = invoke(&overlay(), vec![s("abc"), s("x"), i(1), i(-1)], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("OVERLAY: the string length must not be negative"),
            "{err}"
        );
        assert_eq!(
            kda_overlay("ñañu", "X", 2, Some(1)),
            Some("ñXñu".to_string())
        );
    }

    #[test]
    fn substring_regex_first_match() {
        assert_eq!(
            invoke_scalar(&substring_regex(), vec![s("TECHNOLOGY"), s("L[A-Z]*")]),
            text("LOGY")
        );
        assert_eq!(
            invoke_scalar(&substring_regex(), vec![s("TECHNOLOGY"), s(r"\d+")]),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(
                &substring_regex(),
                vec![scalar(ScalarValue::Utf8(None)), s("a")]
            ),
            ScalarValue::Utf8(None)
        );
        assert_eq!(
            invoke_scalar(
                &substring_regex(),
                vec![s("abc"), scalar(ScalarValue::Utf8(None))]
            ),
            ScalarValue::Utf8(None)
        );
        let err = invoke(&substring_regex(), vec![s("abc"), s("(?=a)")], 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SUBSTRING_REGEX: invalid regular expression"),
            "{err}"
        );
    }
}
