//! A Java `java.text.SimpleDateFormat` work-alike (UTC, English names), used by
//! `CHAR_TO_TIMESTAMP` / `TIMESTAMP_TO_CHAR` and friends and by the log parsers.
//!
//! KDA documents its datetime conversion functions in terms of `SimpleDateFormat`
//! (SPEC §1.6, §2.8), so patterns are interpreted exactly as Java would, not translated to
//! `strftime`:
//!
//! | letter | meaning | format | parse |
//! |---|---|---|---|
//! | `G` | era | `AD` / `BC` | `AD`, `BC` (any case) |
//! | `y` | year | `yy`: 2 digits; otherwise zero-padded to the count | digits; a 2-digit value for `y`/`yy` is put in the century window *now − 80 … now + 20* (Java) |
//! | `M`, `L` | month | `M`/`MM` number, `MMM` `Jan`, `MMMM` `January` | number, or an English month name (full or short, any case) |
//! | `d` | day of month | number | number |
//! | `D` | day of year | number | number |
//! | `E` | day of week | `EEE` `Tue`, `EEEE` `Tuesday` | a day name; ignored |
//! | `u` | day number of week (1 = Monday) | number | number; ignored |
//! | `a` | AM/PM marker | `AM` / `PM` | `AM`, `PM` (any case) |
//! | `H` `k` `K` `h` | hour 0-23, 1-24, 0-11, 1-12 | number | number (`k` 24 and `h` 12 mean 0) |
//! | `m` `s` | minute, second | number | number |
//! | `S` | millisecond | number zero-padded to the count (Java: `SSS` → `007`) | number **of milliseconds** (Java: `.5` with `S` is 5 ms, `.123456` with `SSSSSS` is 123456 ms) |
//! | `z` | time zone | `UTC` (`zzzz`: `Coordinated Universal Time`) | `UTC`, `GMT`, `UT`, optionally followed by an offset, or an offset |
//! | `Z` | RFC 822 zone | `+0000` | `+hhmm`, `-hh:mm`, `+hh`, `Z`, or a `z` form |
//! | `X` | ISO 8601 zone | `Z` | `Z` or an offset |
//! | `'...'` | quoted literal; `''` is a single quote | | must match exactly |
//!
//! The week-based letters `Y`, `w`, `W` and `F` are rejected with an error naming the letter
//! (they depend on Java's locale week rules); any other ASCII letter is an illegal pattern
//! letter, as in Java. Everything else is literal text.
//!
//! Parsing follows Java's defaults:
//! * fields missing from the pattern default to 1970-01-01 00:00:00.000;
//! * **lenient** (Java's default): out-of-range values roll over (`2020-02-30` is
//!   2020-03-01, hour 25 is 01:00 the next day);
//! * spaces/tabs before a field are skipped; literal text must match exactly;
//! * when a numeric field is immediately followed by another numeric field
//!   (`yyyyMMdd`), it consumes at most its letter count in digits, otherwise all digits;
//! * text after the last pattern item is ignored (Java's `DateFormat.parse(String)`);
//! * a text that does not match returns `None` (the SQL functions return NULL; KDA's
//!   documentation says "no result").
//!
//! All formatting and parsing is in UTC: parsed zone offsets are applied, output zones are
//! always UTC.

use std::fmt::Write as _;

use crate::util::{
    civil_from_days, days_from_civil, normalize_year_month, weekday_sunday0, MS_PER_DAY,
};

const MONTHS_LONG: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_SHORT: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Indexed from Sunday = 0.
const DAYS_LONG: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const DAYS_SHORT: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Long then short month names, for parsing (index % 12 is the month).
const MONTH_NAMES: [&str; 24] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
];
/// Long then short day names, for parsing.
const DAY_NAMES: [&str; 14] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sun",
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
];

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    Field { letter: char, count: usize },
}

/// A compiled `SimpleDateFormat` pattern. See the [module docs](self) for the supported syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleDateFormat {
    items: Vec<Item>,
}

/// Whether a field is parsed as a number (this decides "abutting" numeric fields).
fn is_numeric_field(letter: char, count: usize) -> bool {
    match letter {
        'M' | 'L' => count <= 2,
        'y' | 'd' | 'D' | 'u' | 'H' | 'k' | 'K' | 'h' | 'm' | 's' | 'S' => true,
        _ => false,
    }
}

impl SimpleDateFormat {
    /// Compiles a Java `SimpleDateFormat` pattern. The error message names the offending
    /// letter or construct.
    pub fn compile(pattern: &str) -> Result<Self, String> {
        let mut items: Vec<Item> = Vec::new();
        let mut literal = String::new();
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                // quoted literal up to the next lone quote; '' inside is a quote
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            literal.push('\'');
                            i += 2;
                            continue;
                        }
                        closed = true;
                        i += 1;
                        break;
                    }
                    literal.push(chars[i]);
                    i += 1;
                }
                if !closed {
                    return Err(format!(
                        "unterminated quote in date format pattern '{pattern}'"
                    ));
                }
                continue;
            }
            if c.is_ascii_alphabetic() {
                let mut count = 1;
                while chars.get(i + count) == Some(&c) {
                    count += 1;
                }
                match c {
                    'G' | 'y' | 'M' | 'L' | 'D' | 'd' | 'E' | 'u' | 'a' | 'H' | 'k' | 'K'
                    | 'h' | 'm' | 's' | 'S' | 'z' | 'Z' | 'X' => {}
                    'Y' => {
                        return Err(format!(
                            "unsupported pattern letter 'Y' (week year) in date format '{pattern}'; use 'y' for the calendar year"
                        ))
                    }
                    'w' | 'W' | 'F' => {
                        let what = match c {
                            'w' => "week in year",
                            'W' => "week in month",
                            _ => "day of week in month",
                        };
                        return Err(format!(
                            "unsupported pattern letter '{c}' ({what}) in date format '{pattern}'"
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "illegal pattern letter '{c}' in date format '{pattern}'"
                        ))
                    }
                }
                if c == 'X' && count > 3 {
                    return Err(format!(
                        "invalid ISO 8601 zone pattern '{}' in date format '{pattern}' (at most XXX)",
                        "X".repeat(count)
                    ));
                }
                if !literal.is_empty() {
                    items.push(Item::Literal(std::mem::take(&mut literal)));
                }
                items.push(Item::Field { letter: c, count });
                i += count;
                continue;
            }
            literal.push(c);
            i += 1;
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        Ok(Self { items })
    }

    /// Formats epoch milliseconds (UTC) into `out`.
    pub fn format_millis(&self, ms: i64, out: &mut String) {
        let days = ms.div_euclid(MS_PER_DAY);
        let ms_of_day = ms.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let hour = (ms_of_day / 3_600_000) as u32;
        let minute = ((ms_of_day / 60_000) % 60) as u32;
        let second = ((ms_of_day / 1000) % 60) as u32;
        let milli = (ms_of_day % 1000) as u32;
        let (era_ad, year_of_era) = if year > 0 {
            (true, year)
        } else {
            (false, 1 - year)
        };
        for item in &self.items {
            match item {
                Item::Literal(text) => out.push_str(text),
                Item::Field { letter, count } => {
                    let count = *count;
                    let pad = |out: &mut String, v: i64| {
                        let _ = write!(out, "{v:0count$}");
                    };
                    match letter {
                        'G' => out.push_str(if era_ad { "AD" } else { "BC" }),
                        'y' => {
                            if count == 2 {
                                let _ = write!(out, "{:02}", year_of_era % 100);
                            } else {
                                pad(out, year_of_era);
                            }
                        }
                        'M' | 'L' => {
                            let idx = (month - 1) as usize;
                            if count >= 4 {
                                out.push_str(MONTHS_LONG[idx]);
                            } else if count == 3 {
                                out.push_str(MONTHS_SHORT[idx]);
                            } else {
                                pad(out, i64::from(month));
                            }
                        }
                        'd' => pad(out, i64::from(day)),
                        'D' => {
                            let doy = days - days_from_civil(year, 1, 1) + 1;
                            pad(out, doy);
                        }
                        'E' => {
                            let wd = weekday_sunday0(days) as usize;
                            out.push_str(if count >= 4 {
                                DAYS_LONG[wd]
                            } else {
                                DAYS_SHORT[wd]
                            });
                        }
                        'u' => {
                            let wd = weekday_sunday0(days);
                            pad(out, i64::from(if wd == 0 { 7 } else { wd }));
                        }
                        'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
                        'H' => pad(out, i64::from(hour)),
                        'k' => pad(out, i64::from(if hour == 0 { 24 } else { hour })),
                        'K' => pad(out, i64::from(hour % 12)),
                        'h' => {
                            let h = hour % 12;
                            pad(out, i64::from(if h == 0 { 12 } else { h }));
                        }
                        'm' => pad(out, i64::from(minute)),
                        's' => pad(out, i64::from(second)),
                        'S' => pad(out, i64::from(milli)),
                        'z' => out.push_str(if count >= 4 {
                            "Coordinated Universal Time"
                        } else {
                            "UTC"
                        }),
                        'Z' => out.push_str("+0000"),
                        'X' => out.push('Z'),
                        _ => {} // rejected by compile()
                    }
                }
            }
        }
    }

    /// Formats epoch milliseconds (UTC) into a new string.
    pub fn format(&self, ms: i64) -> String {
        let mut out = String::new();
        self.format_millis(ms, &mut out);
        out
    }

    /// Parses `text` into epoch milliseconds (UTC), or `None` if it does not match.
    pub fn parse_millis(&self, text: &str) -> Option<i64> {
        let mut p = Parsed::default();
        let mut rest = text;
        for (idx, item) in self.items.iter().enumerate() {
            match item {
                Item::Literal(lit) => {
                    rest = rest.strip_prefix(lit.as_str())?;
                }
                Item::Field { letter, count } => {
                    rest = rest.trim_start_matches([' ', '\t']);
                    let abutting = matches!(
                        self.items.get(idx + 1),
                        Some(Item::Field { letter: l, count: c }) if is_numeric_field(*l, *c)
                    );
                    rest = p.parse_field(*letter, *count, rest, abutting)?;
                }
            }
        }
        p.to_millis()
    }
}

/// Field values collected while parsing (Java's lenient `Calendar` fields).
#[derive(Debug, Default)]
struct Parsed {
    bc: bool,
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    day_of_year: Option<i64>,
    hour_of_day: Option<i64>,
    hour: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    milli: i64,
    offset_ms: i64,
}

/// Splits off the leading ASCII digits (at most `max`), returning their value and the rest.
fn take_digits(s: &str, max: usize) -> Option<(i64, &str)> {
    let n = s
        .bytes()
        .take(max)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 {
        return None;
    }
    let value = s[..n].parse::<i64>().ok()?;
    Some((value, &s[n..]))
}

/// Case-insensitive match of one of `names` (longest first) at the start of `s`.
fn take_name<'a>(s: &'a str, names: &[&str]) -> Option<(usize, &'a str)> {
    let mut best: Option<(usize, usize)> = None;
    for (idx, name) in names.iter().enumerate() {
        let len = name.len();
        if s.len() >= len
            && s.is_char_boundary(len)
            && s[..len].eq_ignore_ascii_case(name)
            && best.is_none_or(|(_, l)| len > l)
        {
            best = Some((idx, len));
        }
    }
    best.map(|(idx, len)| (idx, &s[len..]))
}

/// Parses `+hh`, `+hhmm`, `+hh:mm` (or `-`), returning the offset in ms.
fn take_offset(s: &str) -> Option<(i64, &str)> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let s = &s[1..];
    let (hours, rest) = take_digits(s, 2)?;
    let (minutes, rest) = if let Some(r) = rest.strip_prefix(':') {
        take_digits(r, 2)?
    } else if let Some((m, r)) = take_digits(rest, 2) {
        (m, r)
    } else {
        (0, rest)
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 3_600_000 + minutes * 60_000), rest))
}

/// Parses a zone: `Z`, `UTC`/`GMT`/`UT` with an optional offset, or a bare offset.
fn take_zone(s: &str) -> Option<(i64, &str)> {
    if let Some((_, rest)) = take_name(s, &["UTC", "GMT", "UT"]) {
        return Some(take_offset(rest).unwrap_or((0, rest)));
    }
    if let Some(rest) = s.strip_prefix('Z') {
        return Some((0, rest));
    }
    take_offset(s)
}

impl Parsed {
    fn parse_field<'a>(
        &mut self,
        letter: char,
        count: usize,
        s: &'a str,
        abutting: bool,
    ) -> Option<&'a str> {
        // Java's calendar fields are 32-bit ints: at most 9 digits keeps all arithmetic in range.
        let max_digits = if abutting { count.min(9) } else { 9 };
        let number = |s: &'a str| take_digits(s, max_digits);
        match letter {
            'G' => {
                let (idx, rest) = take_name(s, &["AD", "BC"])?;
                self.bc = idx == 1;
                Some(rest)
            }
            'y' => {
                let (v, rest) = number(s)?;
                let digits = s.len() - rest.len();
                self.year = Some(if count <= 2 && digits == 2 {
                    two_digit_year(v)
                } else {
                    v
                });
                Some(rest)
            }
            'M' | 'L' if count >= 3 => {
                let (idx, rest) = take_name(s, &MONTH_NAMES)?;
                self.month = Some((idx % 12) as i64 + 1);
                Some(rest)
            }
            'M' | 'L' => {
                let (v, rest) = number(s)?;
                self.month = Some(v);
                Some(rest)
            }
            'd' => {
                let (v, rest) = number(s)?;
                self.day = Some(v);
                Some(rest)
            }
            'D' => {
                let (v, rest) = number(s)?;
                self.day_of_year = Some(v);
                Some(rest)
            }
            'E' => {
                let (_, rest) = take_name(s, &DAY_NAMES)?;
                Some(rest)
            }
            'u' => number(s).map(|(_, rest)| rest),
            'a' => {
                let (idx, rest) = take_name(s, &["AM", "PM"])?;
                self.pm = Some(idx == 1);
                Some(rest)
            }
            'H' => {
                let (v, rest) = number(s)?;
                self.hour_of_day = Some(v);
                Some(rest)
            }
            'k' => {
                let (v, rest) = number(s)?;
                self.hour_of_day = Some(if v == 24 { 0 } else { v });
                Some(rest)
            }
            'K' => {
                let (v, rest) = number(s)?;
                self.hour = Some(v);
                Some(rest)
            }
            'h' => {
                let (v, rest) = number(s)?;
                self.hour = Some(if v == 12 { 0 } else { v });
                Some(rest)
            }
            'm' => {
                let (v, rest) = number(s)?;
                self.minute = v;
                Some(rest)
            }
            's' => {
                let (v, rest) = number(s)?;
                self.second = v;
                Some(rest)
            }
            'S' => {
                let (v, rest) = number(s)?;
                self.milli = v;
                Some(rest)
            }
            'z' | 'Z' | 'X' => {
                let (offset, rest) = take_zone(s)?;
                self.offset_ms = offset;
                Some(rest)
            }
            _ => None,
        }
    }

    /// Combines the fields like Java's lenient `GregorianCalendar` (proleptic, UTC).
    fn to_millis(&self) -> Option<i64> {
        let mut year = self.year.unwrap_or(1970);
        if self.bc {
            year = 1 - year;
        }
        let days = match (self.day_of_year, self.month.is_none() && self.day.is_none()) {
            (Some(doy), true) => days_from_civil(year, 1, 1).checked_add(doy - 1)?,
            _ => {
                let (y, m) = normalize_year_month(year, self.month.unwrap_or(1));
                days_from_civil(y, m, self.day.unwrap_or(1))
            }
        };
        let hour = match self.hour_of_day {
            Some(h) => h,
            None => self.hour.unwrap_or(0) + if self.pm == Some(true) { 12 } else { 0 },
        };
        let time = hour
            .checked_mul(3_600_000)?
            .checked_add(self.minute.checked_mul(60_000)?)?
            .checked_add(self.second.checked_mul(1000)?)?
            .checked_add(self.milli)?;
        days.checked_mul(MS_PER_DAY)?
            .checked_add(time)?
            .checked_sub(self.offset_ms)
    }
}

/// Java's two-digit-year rule: the year within 80 years before and 20 years after now.
fn two_digit_year(two_digits: i64) -> i64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (now_year, _, _) = civil_from_days(now_ms.div_euclid(MS_PER_DAY));
    let start = now_year - 80;
    let mut year = start - start.rem_euclid(100) + two_digits;
    if year < start {
        year += 100;
    }
    year
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::is_leap_year;

    fn ms(y: i64, mo: u32, d: i64, h: i64, mi: i64, s: i64, milli: i64) -> i64 {
        days_from_civil(y, mo, d) * MS_PER_DAY + h * 3_600_000 + mi * 60_000 + s * 1000 + milli
    }

    fn days_in_month(year: i64, month: u32) -> u32 {
        match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            _ if is_leap_year(year) => 29,
            _ => 28,
        }
    }

    fn fmt(p: &str, v: i64) -> String {
        SimpleDateFormat::compile(p).unwrap().format(v)
    }

    fn parse(p: &str, s: &str) -> Option<i64> {
        SimpleDateFormat::compile(p).unwrap().parse_millis(s)
    }

    #[test]
    fn format_basic_and_12_hour_clock() {
        let t = ms(2018, 6, 13, 14, 11, 5, 766);
        assert_eq!(fmt("yyyy-MM-dd HH:mm:ss.SSS", t), "2018-06-13 14:11:05.766");
        // SPEC §2.8: hh is a 12-hour clock
        assert_eq!(fmt("yyyy-MM-dd hh:mm:ss", t), "2018-06-13 02:11:05");
        assert_eq!(fmt("h:mm a", t), "2:11 PM");
        assert_eq!(fmt("K k H", ms(2018, 1, 1, 0, 0, 0, 0)), "0 24 0");
        assert_eq!(fmt("hh a", ms(2018, 1, 1, 0, 0, 0, 0)), "12 AM");
        assert_eq!(fmt("hh a", ms(2018, 1, 1, 12, 0, 0, 0)), "12 PM");
    }

    #[test]
    fn format_text_fields_and_quotes() {
        let t = ms(2018, 6, 13, 14, 11, 5, 7);
        assert_eq!(fmt("EEE, d MMM yy", t), "Wed, 13 Jun 18");
        assert_eq!(fmt("EEEE MMMM", t), "Wednesday June");
        assert_eq!(
            fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", t),
            "2018-06-13T14:11:05.007Z"
        );
        assert_eq!(fmt("'o''clock' h", t), "o'clock 2");
        assert_eq!(fmt("''", t), "'");
        assert_eq!(
            fmt("Z z zzzz G", t),
            "+0000 UTC Coordinated Universal Time AD"
        );
        assert_eq!(fmt("D DDD u", ms(2018, 2, 1, 0, 0, 0, 0)), "32 032 4");
        assert_eq!(fmt("y yyyyy", t), "2018 02018");
        assert_eq!(fmt("S SSSSSS", t), "7 000007");
    }

    #[test]
    fn format_before_epoch() {
        assert_eq!(
            fmt("yyyy-MM-dd HH:mm:ss.SSS", -1),
            "1969-12-31 23:59:59.999"
        );
        assert_eq!(fmt("yyyy G", ms(0, 1, 1, 0, 0, 0, 0)), "0001 BC");
    }

    #[test]
    fn parse_basic() {
        assert_eq!(
            parse("yyyy-MM-dd HH:mm:ss", "2018-11-01 01:00:00"),
            Some(ms(2018, 11, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            parse("dd/MMM/yyyy:HH:mm:ss Z", "10/Oct/2000:13:55:36 -0700"),
            Some(ms(2000, 10, 10, 20, 55, 36, 0))
        );
        assert_eq!(
            parse(
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                "2018-06-13T14:11:05.766+02:00"
            ),
            Some(ms(2018, 6, 13, 12, 11, 5, 766))
        );
        assert_eq!(
            parse("yyyy-MM-dd'T'HH:mm:ssX", "2018-06-13T14:11:05Z"),
            Some(ms(2018, 6, 13, 14, 11, 5, 0))
        );
    }

    #[test]
    fn parse_defaults_to_epoch_fields() {
        assert_eq!(parse("HH:mm", "10:30"), Some(ms(1970, 1, 1, 10, 30, 0, 0)));
        assert_eq!(parse("yyyy", "2020"), Some(ms(2020, 1, 1, 0, 0, 0, 0)));
        assert_eq!(parse("MMM", "mar"), Some(ms(1970, 3, 1, 0, 0, 0, 0)));
        assert_eq!(parse("", "anything"), Some(0));
    }

    #[test]
    fn parse_12_hour_clock() {
        assert_eq!(
            parse("hh:mm a", "12:15 AM"),
            Some(ms(1970, 1, 1, 0, 15, 0, 0))
        );
        assert_eq!(
            parse("hh:mm a", "12:15 PM"),
            Some(ms(1970, 1, 1, 12, 15, 0, 0))
        );
        assert_eq!(
            parse("hh:mm a", "02:11 pm"),
            Some(ms(1970, 1, 1, 14, 11, 0, 0))
        );
        assert_eq!(parse("hh:mm", "02:11"), Some(ms(1970, 1, 1, 2, 11, 0, 0)));
        assert_eq!(parse("kk", "24"), Some(0));
    }

    #[test]
    fn parse_abutting_numeric_fields() {
        assert_eq!(
            parse("yyyyMMddHHmmss", "20181101013005"),
            Some(ms(2018, 11, 1, 1, 30, 5, 0))
        );
        assert_eq!(
            parse("yyyyMMdd", "2018110"),
            Some(ms(2018, 11, 0, 0, 0, 0, 0))
        );
    }

    #[test]
    fn parse_is_lenient_like_java() {
        assert_eq!(
            parse("yyyy-MM-dd", "2020-02-30"),
            Some(ms(2020, 3, 1, 0, 0, 0, 0))
        );
        assert_eq!(
            parse("yyyy-MM-dd", "2020-13-01"),
            Some(ms(2021, 1, 1, 0, 0, 0, 0))
        );
        assert_eq!(parse("HH:mm", "25:00"), Some(ms(1970, 1, 2, 1, 0, 0, 0)));
        // Java's S is a count of milliseconds, not a fraction
        assert_eq!(parse("ss.S", "01.5"), Some(1005));
        assert_eq!(parse("ss.SSS", "01.500"), Some(1500));
    }

    #[test]
    fn parse_whitespace_and_trailing_text() {
        // syslog-style space-padded day
        assert_eq!(
            parse("MMM d HH:mm:ss", "Feb  5 17:32:18"),
            Some(ms(1970, 2, 5, 17, 32, 18, 0))
        );
        // Java's parse(String) ignores text after the pattern
        assert_eq!(
            parse("yyyy-MM-dd", "2018-11-01 12:00:00"),
            Some(ms(2018, 11, 1, 0, 0, 0, 0))
        );
    }

    #[test]
    fn parse_failures_are_none() {
        assert_eq!(parse("yyyy-MM-dd", "2018/11/01"), None);
        assert_eq!(parse("yyyy-MM-dd", "abc"), None);
        assert_eq!(parse("yyyy-MM-dd", ""), None);
        assert_eq!(parse("MMM", "Foo"), None);
        assert_eq!(parse("HH:mm 'Z'", "10:30 X"), None);
        assert_eq!(parse("HH:mm Z", "10:30 +2500"), None);
    }

    #[test]
    fn parse_era_day_of_year_and_day_names() {
        assert_eq!(parse("yyyy G", "0001 BC"), Some(ms(0, 1, 1, 0, 0, 0, 0)));
        assert_eq!(
            parse("yyyy DDD", "2018 032"),
            Some(ms(2018, 2, 1, 0, 0, 0, 0))
        );
        assert_eq!(
            parse("EEE, dd MMM yyyy", "Tuesday, 13 jun 2018"),
            Some(ms(2018, 6, 13, 0, 0, 0, 0))
        );
        assert_eq!(
            parse("dd MMMM yyyy z", "13 June 2018 GMT+01:00"),
            Some(ms(2018, 6, 12, 23, 0, 0, 0))
        );
    }

    #[test]
    fn two_digit_years_use_the_java_window() {
        let y = parse("yy", "99").unwrap();
        let (year, _, _) = civil_from_days(y.div_euclid(MS_PER_DAY));
        assert_eq!(year % 100, 99);
        assert!(year > 1900 && year < 2100);
        // more than 2 digits is taken literally
        assert_eq!(parse("yy", "2018"), Some(ms(2018, 1, 1, 0, 0, 0, 0)));
    }

    #[test]
    fn round_trip() {
        let p = SimpleDateFormat::compile("yyyy-MM-dd HH:mm:ss.SSS").unwrap();
        for t in [0, 1, -1, 1_541_034_000_123, -62_135_596_800_000] {
            assert_eq!(p.parse_millis(&p.format(t)), Some(t), "{t}");
        }
    }

    #[test]
    fn bad_patterns_name_the_letter() {
        let e = SimpleDateFormat::compile("YYYY-MM-dd").unwrap_err();
        assert!(e.contains("'Y'"), "{e}");
        let e = SimpleDateFormat::compile("yyyy-ww").unwrap_err();
        assert!(e.contains("'w'"), "{e}");
        let e = SimpleDateFormat::compile("yyyy-qq").unwrap_err();
        assert!(e.contains("illegal pattern letter 'q'"), "{e}");
        let e = SimpleDateFormat::compile("yyyy 'open").unwrap_err();
        assert!(e.contains("unterminated quote"), "{e}");
        let e = SimpleDateFormat::compile("XXXX").unwrap_err();
        assert!(e.contains("XXXX"), "{e}");
    }

    #[test]
    fn month_lengths() {
        assert_eq!(days_in_month(2020, 2), 29);
        assert_eq!(days_in_month(2021, 2), 28);
        assert_eq!(days_in_month(2021, 4), 30);
    }
}
