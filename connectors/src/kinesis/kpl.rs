//! KPL (Kinesis Producer Library) record aggregation: several user records packed into one
//! Kinesis record, read back here with a minimal protobuf reader (no protobuf dependency).
//!
//! ```text
//!  Kinesis record data:
//!  ┌──────────────┬──────────────────────────────────────┬──────────────────────────┐
//!  │ F3 89 9A C2  │ protobuf AggregatedRecord             │ MD5(protobuf), 16 bytes  │
//!  └──────────────┴──────────────────────────────────────┴──────────────────────────┘
//!  AggregatedRecord { 1: repeated string partition_key_table,
//!                     2: repeated string explicit_hash_key_table,
//!                     3: repeated Record records }
//!  Record           { 1: uint64 partition_key_index, 2: uint64 explicit_hash_key_index,
//!                     3: bytes data, 4: repeated Tag tags (skipped) }
//!
//!  deaggregate ──► UserRecord { partition_key (from the table), explicit_hash_key, data }
//!                  in order; the i-th is the record's sub-sequence number i
//! ```
//!
//! A record that starts with the magic bytes but whose MD5 does not match, or whose protobuf
//! is malformed, is an error (the caller reports it to the error sink with the raw bytes):
//! such data cannot be a valid UTF-8 JSON or CSV record either (`C2` cannot follow `9A`).
//! [`aggregate`] writes the same format (for producers and tests).

use md5::{Digest, Md5};

/// The 4 magic bytes in front of an aggregated record.
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

const MD5_LEN: usize = 16;

/// One user record of an aggregated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's partition key.
    pub partition_key: String,
    /// Its explicit hash key, if it had one.
    pub explicit_hash_key: Option<String>,
    /// Its data.
    pub data: Vec<u8>,
}

/// True if `data` starts with the KPL magic (and is long enough to hold the MD5).
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() >= KPL_MAGIC.len() + MD5_LEN && data[..4] == KPL_MAGIC
}

/// A protobuf reader over a byte slice: varints, keys, length-delimited fields.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("truncated varint at byte {}", self.pos));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "field of {len} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next (field number, wire type).
    fn key(&mut self) -> Result<(u64, u8), String> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            w => Err(format!("unsupported wire type {w} at byte {}", self.pos)),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.pos + n > self.buf.len() {
            return Err(format!("truncated fixed-size field at byte {}", self.pos));
        }
        self.pos += n;
        Ok(())
    }
}

fn utf8(b: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

/// The user records of an aggregated record (see [`is_aggregated`]); an error says what is
/// wrong (MD5 mismatch, malformed protobuf, key index out of range).
pub fn deaggregate(data: &[u8]) -> Result<Vec<UserRecord>, String> {
    if !is_aggregated(data) {
        return Err("not a KPL aggregated record (no magic bytes)".to_string());
    }
    let body = &data[KPL_MAGIC.len()..data.len() - MD5_LEN];
    let digest = Md5::digest(body);
    if digest.as_slice() != &data[data.len() - MD5_LEN..] {
        return Err("KPL aggregated record: MD5 checksum mismatch".to_string());
    }
    let mut keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw = Vec::new();
    let mut r = Reader::new(body);
    while !r.done() {
        match r.key()? {
            (1, 2) => keys.push(utf8(r.bytes()?, "a partition key")?),
            (2, 2) => hash_keys.push(utf8(r.bytes()?, "an explicit hash key")?),
            (3, 2) => raw.push(r.bytes()?),
            (_, wire) => r.skip(wire)?,
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, rec) in raw.into_iter().enumerate() {
        let mut r = Reader::new(rec);
        let (mut pk, mut ehk, mut payload) = (None, None, None);
        while !r.done() {
            match r.key()? {
                (1, 0) => pk = Some(r.varint()?),
                (2, 0) => ehk = Some(r.varint()?),
                (3, 2) => payload = Some(r.bytes()?),
                (_, wire) => r.skip(wire)?,
            }
        }
        let pk = pk.ok_or_else(|| format!("user record {i} has no partition_key_index"))?;
        let partition_key = usize::try_from(pk)
            .ok()
            .and_then(|k| keys.get(k))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "user record {i}: partition_key_index {pk} is out of range ({} keys)",
                    keys.len()
                )
            })?;
        let explicit_hash_key = match ehk {
            None => None,
            Some(h) => Some(
                usize::try_from(h)
                    .ok()
                    .and_then(|k| hash_keys.get(k))
                    .cloned()
                    .ok_or_else(|| {
                        format!("user record {i}: explicit_hash_key_index {h} is out of range")
                    })?,
            ),
        };
        out.push(UserRecord {
            partition_key,
            explicit_hash_key,
            data: payload
                .ok_or_else(|| format!("user record {i} has no data"))?
                .to_vec(),
        });
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Packs user records (partition key, data) into one aggregated record, as the KPL does
/// (partition keys deduplicated in the key table).
pub fn aggregate<K: AsRef<str>, D: AsRef<[u8]>>(records: &[(K, D)]) -> Vec<u8> {
    let mut keys: Vec<&str> = Vec::new();
    let mut body = Vec::new();
    let mut recs = Vec::new();
    for (k, d) in records {
        let k = k.as_ref();
        let idx = match keys.iter().position(|x| *x == k) {
            Some(i) => i,
            None => {
                keys.push(k);
                keys.len() - 1
            }
        };
        let mut rec = Vec::new();
        put_varint(&mut rec, 1 << 3);
        put_varint(&mut rec, idx as u64);
        put_bytes(&mut rec, 3, d.as_ref());
        recs.push(rec);
    }
    for k in &keys {
        put_bytes(&mut body, 1, k.as_bytes());
    }
    for r in &recs {
        put_bytes(&mut body, 3, r);
    }
    let mut out = Vec::with_capacity(body.len() + 20);
    out.extend_from_slice(&KPL_MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(Md5::digest(&body).as_slice());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_order_and_keys() {
        let recs = vec![
            ("a", b"one".to_vec()),
            ("b", b"two".to_vec()),
            ("a", b"".to_vec()),
        ];
        let agg = aggregate(&recs);
        assert!(is_aggregated(&agg));
        let out = deaggregate(&agg).unwrap();
        let got: Vec<(String, Vec<u8>)> =
            out.into_iter().map(|u| (u.partition_key, u.data)).collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), b"one".to_vec()),
                ("b".to_string(), b"two".to_vec()),
                ("a".to_string(), Vec::new())
            ]
        );
    }

    #[test]
    fn rejects_a_bad_checksum_and_malformed_protobuf() {
        let mut agg = aggregate(&[("k", b"data".to_vec())]);
        let n = agg.len();
        agg[n - 1] ^= 1;
        assert!(deaggregate(&agg).unwrap_err().contains("MD5"));

        // A length prefix running past the end, with a valid checksum over it.
        let body = vec![0x1a, 0x7f, 0x01];
        let mut bad = KPL_MAGIC.to_vec();
        bad.extend_from_slice(&body);
        bad.extend_from_slice(Md5::digest(&body).as_slice());
        assert!(deaggregate(&bad).unwrap_err().contains("runs past the end"));

        // A key index out of range.
        let mut rec = Vec::new();
        put_varint(&mut rec, 1 << 3);
        put_varint(&mut rec, 3);
        put_bytes(&mut rec, 3, b"x");
        let mut body = Vec::new();
        put_bytes(&mut body, 1, b"only");
        put_bytes(&mut body, 3, &rec);
        let mut bad = KPL_MAGIC.to_vec();
        bad.extend_from_slice(&body);
        bad.extend_from_slice(Md5::digest(&body).as_slice());
        assert!(deaggregate(&bad).unwrap_err().contains("out of range"));
    }

    #[test]
    fn skips_unknown_fields_and_reads_explicit_hash_keys() {
        let mut rec = Vec::new();
        put_varint(&mut rec, 1 << 3);
        put_varint(&mut rec, 0);
        put_varint(&mut rec, 2 << 3);
        put_varint(&mut rec, 0);
        put_bytes(&mut rec, 3, b"payload");
        put_bytes(&mut rec, 4, b"\x0a\x01t"); // a tag
        let mut body = Vec::new();
        put_bytes(&mut body, 1, b"pk");
        put_bytes(&mut body, 2, b"123");
        put_varint(&mut body, (9 << 3) | 5); // unknown fixed32 field
        body.extend_from_slice(&[1, 2, 3, 4]);
        put_bytes(&mut body, 3, &rec);
        let mut data = KPL_MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(Md5::digest(&body).as_slice());
        let out = deaggregate(&data).unwrap();
        assert_eq!(
            out,
            vec![UserRecord {
                partition_key: "pk".into(),
                explicit_hash_key: Some("123".into()),
                data: b"payload".to_vec()
            }]
        );
        assert!(!is_aggregated(b"{\"a\":1}"));
    }
}
