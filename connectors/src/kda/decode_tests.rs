//! Tests of the record decoder: Example N's JSONPath cases, Example Q's ingest errors, CSV with
//! single and multi-character delimiters, ROWTIME fields, NOT NULL.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion_stream::errors::ErrorRecord;

use super::decode::{
    RecordDecoder, RecordMeta, RowtimeField, COERCION_ERROR, NULL_VALUE_ERROR, PARSE_ERROR,
    ROWTIME_ORDER_ERROR,
};
use super::input_schema::InputSchema;

/// Example N's record, corrected to valid JSON.
const EXAMPLE_N: &str = r#"{"customerName":"John Doe",
 "address":{"streetAddress":{"number":"123","street":"AnyStreet"},"city":"Anytown"},
 "orders":[{"orderId":"23284","itemName":"Widget","itemPrice":"33.99"},
           {"orderId":"63122","itemName":"Gadget","itemPrice":"22.50"},
           {"orderId":"77284","itemName":"Sprocket","itemPrice":"12.00"}]}"#;

fn rows(batch: &RecordBatch) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
        .collect();
    (0..batch.num_rows())
        .map(|r| {
            formatters
                .iter()
                .map(|f| f.value(r).to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

fn meta() -> RecordMeta<'static> {
    RecordMeta {
        origin: &"test",
        error_time: 42,
        rowtime: Some(7),
    }
}

/// Decodes the records with a JSON schema; returns the rows and the rejected records.
fn decode_json(
    columns: &[(&str, &str, &str)],
    records: &[&str],
) -> (Vec<String>, Vec<ErrorRecord>) {
    let schema = InputSchema::json("$", columns.iter().copied());
    let mut d = RecordDecoder::try_new(&schema).unwrap();
    let mut errors = Vec::new();
    let mut n = 0;
    for r in records {
        let out = d.decode(r.as_bytes(), &meta());
        n += out.rows;
        errors.extend(out.rejected);
    }
    assert_eq!(d.buffered_rows(), n);
    let batch = d.finish().unwrap();
    assert_eq!(d.buffered_rows(), 0);
    (rows(&batch), errors)
}

fn example_n(columns: &[(&str, &str, &str)]) -> Vec<String> {
    let (rows, errors) = decode_json(columns, &[EXAMPLE_N]);
    assert!(errors.is_empty(), "{errors:?}");
    rows
}

#[test]
fn example_n_plain_paths() {
    assert_eq!(
        example_n(&[("n", "VARCHAR(32)", "$.customerName")]),
        ["John Doe"]
    );
    // Paths are case-sensitive.
    assert_eq!(
        example_n(&[("n", "VARCHAR(32)", "$.customername")]),
        ["NULL"]
    );
    // Missing → NULL.
    assert_eq!(example_n(&[("n", "INTEGER", "$.customerId")]), ["NULL"]);
    assert_eq!(
        example_n(&[("c", "VARCHAR(32)", "$.address.city")]),
        ["Anytown"]
    );
    assert_eq!(
        example_n(&[("s", "VARCHAR(32)", "$.address.streetAddress.street")]),
        ["AnyStreet"]
    );
    // A value below a scalar is missing.
    assert_eq!(
        example_n(&[("s", "VARCHAR(32)", "$.customerName.first")]),
        ["NULL"]
    );
}

#[test]
fn example_n_whole_array_as_text() {
    assert_eq!(
        example_n(&[("o", "VARCHAR(512)", "$.orders[0:]")]),
        [
            r#"[{"orderId":"23284","itemName":"Widget","itemPrice":"33.99"},{"orderId":"63122","itemName":"Gadget","itemPrice":"22.50"},{"orderId":"77284","itemName":"Sprocket","itemPrice":"12.00"}]"#
        ]
    );
    // Truncated to the column length like any string.
    assert_eq!(
        example_n(&[("o", "VARCHAR(12)", "$.orders[0:]")]),
        [r#"[{"orderId":"#]
    );
    // An object read whole is its JSON text too.
    assert_eq!(
        example_n(&[("a", "VARCHAR(128)", "$.address.streetAddress")]),
        [r#"{"number":"123","street":"AnyStreet"}"#]
    );
}

#[test]
fn example_n_flattening() {
    assert_eq!(
        example_n(&[("id", "VARCHAR(8)", "$.orders[0:].orderId")]),
        ["23284", "63122", "77284"]
    );
    assert_eq!(
        example_n(&[
            ("n", "VARCHAR(16)", "$.customerName"),
            ("id", "INTEGER", "$.orders[0:].orderId"),
            ("price", "DECIMAL(5,2)", "$.orders[0:].itemPrice"),
        ]),
        [
            "John Doe|23284|33.99",
            "John Doe|63122|22.50",
            "John Doe|77284|12.00"
        ]
    );
    // No element has the field: one row of NULLs (an array always flattens to >= 1 row).
    assert_eq!(
        example_n(&[("i", "VARCHAR(8)", "$.orders[0:].itemId")]),
        ["NULL"]
    );
    assert_eq!(
        example_n(&[
            ("n", "VARCHAR(16)", "$.customerName"),
            ("i", "VARCHAR(8)", "$.orders[0:].itemId")
        ]),
        ["John Doe|NULL"]
    );
    // A field some elements lack is NULL in their rows; elements with none of the fields
    // (and non-object elements) give no row.
    let (rows, errors) = decode_json(
        &[
            ("id", "VARCHAR(8)", "$.orders[0:].orderId"),
            ("qty", "INTEGER", "$.orders[0:].qty"),
        ],
        &[r#"{"orders":[{"orderId":"1","qty":2},{"orderId":"2"},{"other":1},7,{"qty":null}]}"#],
    );
    assert!(errors.is_empty());
    assert_eq!(rows, ["1|2", "2|NULL", "NULL|NULL"]);
    // The same array flattened and read whole.
    assert_eq!(
        example_n(&[
            ("id", "VARCHAR(8)", "$.orders[0:].orderId"),
            ("all", "VARCHAR(10)", "$.orders[0:]"),
        ]),
        [
            r#"23284|[{"orderId"#,
            r#"63122|[{"orderId"#,
            r#"77284|[{"orderId"#
        ]
    );
}

#[test]
fn example_n_empty_and_missing_arrays_give_one_row_of_nulls() {
    let cols = [
        ("n", "VARCHAR(16)", "$.customerName"),
        ("id", "VARCHAR(8)", "$.orders[0:].orderId"),
    ];
    let (rows, errors) = decode_json(
        &cols,
        &[
            r#"{"customerName":"Empty","orders":[]}"#,
            r#"{"customerName":"Missing"}"#,
            r#"{"customerName":"Scalar","orders":5}"#,
        ],
    );
    assert!(errors.is_empty());
    assert_eq!(rows, ["Empty|NULL", "Missing|NULL", "Scalar|NULL"]);
}

#[test]
fn example_n_invalid_schemas_are_rejected_naming_the_mapping() {
    let e = RecordDecoder::try_new(&InputSchema::json(
        "$",
        [("c", "VARCHAR(8)", "$.a[0:].b[0:].c")],
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("'$.a[0:].b[0:].c'"), "{e}");
    let e = RecordDecoder::try_new(&InputSchema::json(
        "$",
        [
            ("id", "VARCHAR(8)", "$.orders[0:].orderId"),
            ("x", "VARCHAR(8)", "$.returns[0:].orderId"),
        ],
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("'$.returns[0:].orderId'"), "{e}");
    assert!(e.contains("only one array may be flattened"), "{e}");
}

#[test]
fn example_q_ingest_errors_reject_the_row_and_keep_the_bytes() {
    let cols = [
        ("TICKER_SYMBOL", "INTEGER", "$.TICKER_SYMBOL"),
        ("SECTOR", "VARCHAR(16)", "$.SECTOR"),
    ];
    let bad = r#"{"TICKER_SYMBOL":"AMZN","SECTOR":"TECHNOLOGY"}"#;
    let (rows, errors) = decode_json(&cols, &[bad, r#"{"TICKER_SYMBOL":12,"SECTOR":"X"}"#]);
    assert_eq!(rows, ["12|X"]);
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    assert_eq!(e.name, COERCION_ERROR);
    assert_eq!(e.level, "ERROR");
    assert_eq!(
        e.message,
        "test: column 'TICKER_SYMBOL' (mapping '$.TICKER_SYMBOL', INTEGER), value \"AMZN\": not a valid INTEGER"
    );
    assert_eq!(e.data_row, bad.as_bytes());
    assert_eq!(e.error_time, 42);
    assert_eq!(e.data_rowtime, Some(7));
    assert_eq!(e.pump_name, "");

    // Overflow: 180 into TINYINT is an error, 60 is accepted; truncation is not an error.
    let cols = [
        ("heartRate", "TINYINT", "$.heartRate"),
        ("SECTOR", "VARCHAR(16)", "$.SECTOR"),
    ];
    let (rows, errors) = decode_json(
        &cols,
        &[
            r#"{"heartRate":180}"#,
            r#"{"heartRate":60,"SECTOR":"INFORMATION TECHNOLOGY"}"#,
        ],
    );
    assert_eq!(rows, ["60|INFORMATION TECH"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].message,
        "test: column 'heartRate' (mapping '$.heartRate', TINYINT), value 180: out of range for TINYINT (-128..127)"
    );
    assert_eq!(errors[0].data_row, br#"{"heartRate":180}"#);
}

#[test]
fn parse_errors_reject_the_whole_record() {
    let cols = [("a", "INTEGER", "$.a")];
    let (rows, errors) = decode_json(
        &cols,
        &[
            r#"{"a":1"#,
            r#"[1,2]"#,
            "   ",
            r#"{"a":2} {"a":3}"#,
            r#"{"a":4} {"a":"x"}"#,
        ],
    );
    // An array of scalars: each element is a row that is not an object. Two documents in one
    // record: two rows; a bad one rejects only its own row.
    assert_eq!(rows, ["2", "3", "4"]);
    let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            PARSE_ERROR,
            PARSE_ERROR,
            PARSE_ERROR,
            PARSE_ERROR,
            COERCION_ERROR
        ]
    );
    assert!(errors[0]
        .message
        .starts_with("test: the record is not valid JSON: EOF"));
    assert_eq!(errors[0].data_row, br#"{"a":1"#);
    assert!(errors[1]
        .message
        .contains("a row must be a JSON object, but the record has a number (1)"));
    assert!(errors[2].message.contains("has a number (2)"));
    assert_eq!(errors[1].data_row, b"[1,2]");
    assert_eq!(errors[3].message, "test: the record is empty");
    // The bytes of the document concerned.
    assert_eq!(errors[4].data_row, br#"{"a":"x"}"#);
}

#[test]
fn record_row_path_selects_the_rows() {
    let schema = InputSchema::json(
        "$.records",
        [("id", "INTEGER", "$.id"), ("v", "VARCHAR(8)", "$.v")],
    );
    let mut d = RecordDecoder::try_new(&schema).unwrap();
    let out = d.decode(
        br#"{"records":[{"id":1,"v":"a"},{"id":2}], "other": 1}"#,
        &meta(),
    );
    assert_eq!(out.rows, 2);
    let out2 = d.decode(br#"{"records":{"id":3,"v":"c"}}"#, &meta());
    assert_eq!(out2.rows, 1);
    let out3 = d.decode(br#"{"nothing":1}"#, &meta());
    assert_eq!(out3.rows, 0);
    assert_eq!(out3.rejected[0].name, PARSE_ERROR);
    assert_eq!(
        out3.rejected[0].message,
        "test: the record has no rows at RecordRowPath '$.records'"
    );
    assert_eq!(rows(&d.finish().unwrap()), ["1|a", "2|NULL", "3|c"]);

    // '[0:]' on the row path: the elements are the rows; it must be an array.
    let schema = InputSchema::json("$.records[0:]", [("id", "INTEGER", "$.id")]);
    let mut d = RecordDecoder::try_new(&schema).unwrap();
    assert_eq!(
        d.decode(br#"{"records":[{"id":1},{"id":2}]}"#, &meta())
            .rows,
        2
    );
    let out = d.decode(br#"{"records":{"id":3}}"#, &meta());
    assert_eq!(out.rejected[0].name, PARSE_ERROR);
    // A top-level array with '$': one row per element.
    let mut d2 =
        RecordDecoder::try_new(&InputSchema::json("$", [("id", "INTEGER", "$.id")])).unwrap();
    assert_eq!(d2.decode(br#"[{"id":4},{"id":5}]"#, &meta()).rows, 2);
    assert_eq!(rows(&d.finish().unwrap()), ["1", "2"]);
    assert_eq!(rows(&d2.finish().unwrap()), ["4", "5"]);
}

#[test]
fn every_type_decodes_into_its_arrow_column() {
    let cols = [
        ("t", "TINYINT", "$.t"),
        ("s", "SMALLINT", "$.s"),
        ("i", "INTEGER", "$.i"),
        ("b", "BIGINT", "$.b"),
        ("d", "DECIMAL(5,2)", "$.d"),
        ("r", "REAL", "$.r"),
        ("f", "DOUBLE", "$.f"),
        ("ok", "BOOLEAN", "$.ok"),
        ("c", "CHAR(3)", "$.c"),
        ("v", "VARCHAR(3)", "$.v"),
        ("day", "DATE", "$.day"),
        ("tm", "TIME", "$.tm"),
        ("ts", "TIMESTAMP", "$.ts"),
        ("bin", "BINARY(2)", "$.bin"),
        ("vb", "VARBINARY(4)", "$.vb"),
    ];
    let (rows, errors) = decode_json(
        &cols,
        &[
            r#"{"t":true,"s":"-7","i":60.0,"b":5000000000,"d":"1.5","r":2.5,"f":"1e3","ok":"TRUE",
                "c":"x","v":12345,"day":"1992-02-14","tm":"18:35:44.123","ts":"1992-02-14 18:35:44.0",
                "bin":"X'3F'","vb":false}"#,
            "{}",
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        rows,
        [
            "1|-7|60|5000000000|1.50|2.5|1000.0|true|x  |123|1992-02-14|18:35:44.123|1992-02-14T18:35:44|3f00|00",
            "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"
        ]
    );
    let d = RecordDecoder::try_new(&InputSchema::json("$", cols)).unwrap();
    let types: Vec<String> = d
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "Int8",
            "Int16",
            "Int32",
            "Int64",
            "Decimal128(5, 2)",
            "Float32",
            "Float64",
            "Boolean",
            "Utf8",
            "Utf8",
            "Date32",
            "Time32(ms)",
            "Timestamp(ms)",
            "FixedSizeBinary(2)",
            "Binary"
        ]
    );
}

fn csv_decoder(row: &str, col: &str) -> RecordDecoder {
    RecordDecoder::try_new(&InputSchema::csv(
        row,
        col,
        [
            ("LastName", "VARCHAR(16)"),
            ("FirstName", "VARCHAR(16)"),
            ("CustomerId", "INTEGER"),
        ],
    ))
    .unwrap()
}

#[test]
fn csv_with_pipes() {
    let mut d = csv_decoder("\n", "|");
    let out = d.decode(b"Doe|John|7", &meta());
    assert_eq!((out.rows, out.rejected.len()), (1, 0));
    // Several rows in one record; a prefix of the fields is mapped, extra fields ignored.
    let out = d.decode(b"Roe|Jane|8|extra|fields\nPoe|Ed|x\n\nLee|Ann\n", &meta());
    assert_eq!(out.rows, 2);
    assert_eq!(out.rejected.len(), 1);
    let e = &out.rejected[0];
    assert_eq!(e.name, COERCION_ERROR);
    assert_eq!(
        e.message,
        "test: column 'CustomerId' (field 3, INTEGER), value \"x\": not a valid INTEGER"
    );
    // The bytes of the row concerned.
    assert_eq!(e.data_row, b"Poe|Ed|x");
    // Empty fields: NULL, except in character columns.
    d.decode(b"||", &meta());
    // Commas are data when the delimiter is '|'.
    d.decode(b"A,B|C|1", &meta());
    assert_eq!(
        rows(&d.finish().unwrap()),
        [
            "Doe|John|7",
            "Roe|Jane|8",
            "Lee|Ann|NULL",
            "||NULL",
            "A,B|C|1"
        ]
    );
}

#[test]
fn csv_with_multi_character_delimiters() {
    let mut d = csv_decoder("$$\r\n", "<|>");
    let out = d.decode(
        "Doe<|>John<|>7$$\r\nMüller<|>Zoë<|>-12$$\r\nLongLastNameOverSixteen<|>X<|>+3$$\r\n"
            .as_bytes(),
        &meta(),
    );
    assert_eq!((out.rows, out.rejected.len()), (3, 0));
    // A lone '|' or '<' is data.
    let out = d.decode(b"a|b<c<|>d<|>9", &meta());
    assert_eq!(out.rows, 1);
    let out = d.decode(b"a<|>b<|>99999999999", &meta());
    assert_eq!(out.rejected.len(), 1);
    assert!(out.rejected[0]
        .message
        .ends_with("value \"99999999999\": out of range for INTEGER (-2147483648..2147483647)"));
    assert_eq!(out.rejected[0].data_row, b"a<|>b<|>99999999999");
    assert_eq!(
        rows(&d.finish().unwrap()),
        [
            "Doe|John|7",
            "Müller|Zoë|-12",
            "LongLastNameOver|X|3",
            "a|b<c|d|9"
        ]
    );
    // Tabs.
    let mut d = csv_decoder("\n", "\t");
    d.decode(b"Doe\tJohn\t7", &meta());
    assert_eq!(rows(&d.finish().unwrap()), ["Doe|John|7"]);
    // Not UTF-8: the record is rejected whole.
    let out = csv_decoder("\n", ",").decode(b"a,\xff,1", &meta());
    assert_eq!(out.rejected[0].name, PARSE_ERROR);
    assert!(out.rejected[0].message.contains("not valid UTF-8"));
}

#[test]
fn rowtime_from_a_json_field() {
    let schema = InputSchema::json("$", [("k", "VARCHAR(4)", "$.k")]);
    let mut d = RecordDecoder::try_new(&schema)
        .unwrap()
        .with_rowtime_field(RowtimeField::JsonField("rt".into()))
        .unwrap();
    for r in [
        r#"{"k":"a","rt":"2024-01-02 09:30:00.120"}"#,
        r#"{"k":"b","rt":1704187800500}"#,
        r#"{"k":"c"}"#,
        r#"{"k":"d","rt":"2024-01-02 09:29:00"}"#,
        r#"{"k":"e","rt":"soon"}"#,
        r#"{"k":"f","rt":"2024-01-02T09:30:00.500Z"}"#,
    ] {
        d.decode(r.as_bytes(), &meta());
    }
    let mut d2 = RecordDecoder::try_new(&schema)
        .unwrap()
        .with_rowtime_field(RowtimeField::JsonField("rt".into()))
        .unwrap();
    let errs: Vec<ErrorRecord> = [
        r#"{"k":"a","rt":"2024-01-02 09:30:00.120"}"#,
        r#"{"k":"c"}"#,
        r#"{"k":"d","rt":"2024-01-02 09:29:00"}"#,
        r#"{"k":"e","rt":"soon"}"#,
    ]
    .iter()
    .flat_map(|r| d2.decode(r.as_bytes(), &meta()).rejected)
    .collect();
    assert_eq!(
        errs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        [PARSE_ERROR, ROWTIME_ORDER_ERROR, PARSE_ERROR]
    );
    assert_eq!(errs[0].message, "test: the rowtime field 'rt' is missing");
    assert_eq!(
        errs[1].message,
        "test: ROWTIME 2024-01-02 09:29:00.000 is before the previous row's 2024-01-02 09:30:00.120; ROWTIME must not decrease"
    );
    assert_eq!(errs[1].data_rowtime, Some(1_704_187_740_000));
    assert!(errs[2]
        .message
        .contains("'rt' is \"soon\", not a timestamp"));
    let (batch, rowtime) = d.finish_with_rowtime().unwrap();
    assert_eq!(rows(&batch), ["a", "b", "f"]);
    assert_eq!(
        rowtime.values().to_vec(),
        [1_704_187_800_120, 1_704_187_800_500, 1_704_187_800_500]
    );
    assert!(RecordDecoder::try_new(&schema)
        .unwrap()
        .with_rowtime_field(RowtimeField::CsvLeadingField)
        .is_err());
}

#[test]
fn rowtime_from_a_leading_csv_field_and_meta() {
    let mut d = csv_decoder("\n", ",")
        .with_rowtime_field(RowtimeField::CsvLeadingField)
        .unwrap();
    let out = d.decode(
        b"2024-01-02 09:30:00.120,Doe,John,7\n2024-01-02 09:30:01,Roe,Jane,x\n,Poe,Ed,1",
        &meta(),
    );
    assert_eq!(out.rows, 1);
    assert_eq!(
        out.rejected[0].message,
        "test: column 'CustomerId' (field 4, INTEGER), value \"x\": not a valid INTEGER"
    );
    assert_eq!(out.rejected[0].data_rowtime, Some(1_704_187_801_000));
    assert_eq!(
        out.rejected[1].message,
        "test: the rowtime (first field) is missing"
    );
    let (batch, rowtime) = d.finish_with_rowtime().unwrap();
    assert_eq!(rows(&batch), ["Doe|John|7"]);
    assert_eq!(rowtime.values().to_vec(), [1_704_187_800_120]);

    // Without a rowtime field, each row gets the record's ROWTIME from the meta.
    let mut d = csv_decoder("\n", ",");
    d.decode(b"a,b,1\nc,d,2", &meta());
    let (_, rowtime) = d.finish_with_rowtime().unwrap();
    assert_eq!(rowtime.values().to_vec(), [7, 7]);
}

#[test]
fn not_null_columns_reject_nulls() {
    let schema = InputSchema::json("$", [("k", "VARCHAR(4)", "$.k"), ("v", "INTEGER", "$.v")]);
    let mut d = RecordDecoder::try_new(&schema)
        .unwrap()
        .with_not_null("v")
        .unwrap();
    let out = d.decode(br#"{"k":"a"}"#, &meta());
    assert_eq!(out.rejected[0].name, NULL_VALUE_ERROR);
    assert_eq!(
        out.rejected[0].message,
        "test: column 'v' (mapping '$.v', INTEGER) is NOT NULL but the value is null or missing"
    );
    d.decode(br#"{"k":"b","v":1}"#, &meta());
    assert_eq!(rows(&d.finish().unwrap()), ["b|1"]);
    assert!(RecordDecoder::try_new(&schema)
        .unwrap()
        .with_not_null("nope")
        .is_err());
}
