//! Golden bytes of everything the store writes: every record version, the values that are not
//! records (`meta.schema_version`, the queue key a `pending_retry` row holds, the time an
//! `event_ingested` row holds) and every key layout. A change that would leave existing data
//! files unreadable fails one of these tests.
//!
//! Each golden is a fixed instance with every field set to a distinctive value (both `Some` and
//! `None` where a field is optional). A test encodes the instance and compares with the golden,
//! and decodes the golden and compares with the instance.
//!
//! Never edit an existing golden. When a record's layout changes, bump `RECORD_VERSION`, teach
//! `codec::decode` the old version, keep the old golden (it then only checks decoding: see
//! [`assert_record_golden`]) and add a new golden named after the new version (`tenant_v2`).
//! When a key or a non-record value changes layout, bump `SCHEMA_VERSION` with a migration and
//! add goldens for the new schema the same way.

use super::codec::{self, RECORD_VERSION};
use super::tables::{self, QueueKey};
use crate::model::destination::Destination;
use crate::model::event::{Attempt, AttemptStatus, DeliveryTask, Event};
use crate::model::tenant::Tenant;
use crate::model::StrMap;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length golden");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("golden is hex"))
        .collect()
}

/// Decodes `golden` and compares with `instance`; while the golden's version is the one this
/// binary writes, also encodes `instance` and compares with `golden`.
fn assert_record_golden<T>(table: &'static str, golden: &str, instance: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let golden = unhex(golden);
    let decoded: T = codec::decode(table, &golden).expect("golden decodes");
    assert_eq!(&decoded, instance, "decoding the golden");
    if golden.first() == Some(&RECORD_VERSION) {
        let encoded = codec::encode(table, instance).expect("instance encodes");
        assert_eq!(
            hex(&encoded),
            hex(&golden),
            "the encoding of a stored record changed: bump RECORD_VERSION and add a new golden"
        );
    }
}

fn map(entries: &[(&str, &str)]) -> StrMap {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tenant() -> Tenant {
    Tenant {
        id: "tnt_golden".into(),
        metadata: map(&[("plan", "pro"), ("région", "eu-west")]),
        created_at_ms: 1_717_230_216_123,
        updated_at_ms: 1_717_230_999_456,
    }
}

/// Every optional field set.
fn destination() -> Destination {
    Destination {
        id: "des_golden".into(),
        tenant_id: "tnt_golden".into(),
        kind: "webhook".into(),
        topics: vec!["user.created".into(), "order.*".into()],
        filter: Some(r#"{"data":{"amount":{"$gte":100}}}"#.into()),
        config: map(&[("url", "https://example.com/hook")]),
        credentials: map(&[("secret", "whsec_abc"), ("previous_secret", "whsec_old")]),
        delivery_metadata: map(&[("source", "outpost")]),
        metadata: map(&[("team", "billing")]),
        created_at_ms: 1_717_230_216_123,
        updated_at_ms: 1_717_230_300_000,
        disabled_at_ms: Some(1_717_230_400_000),
        stored_at_nanos: 1_717_230_216_123_456_789,
    }
}

/// Every optional field and map empty.
fn destination_bare() -> Destination {
    Destination {
        id: "d".into(),
        tenant_id: "t".into(),
        kind: "aws_sqs".into(),
        topics: vec!["*".into()],
        filter: None,
        config: StrMap::new(),
        credentials: StrMap::new(),
        delivery_metadata: StrMap::new(),
        metadata: StrMap::new(),
        created_at_ms: 0,
        updated_at_ms: -1,
        disabled_at_ms: None,
        stored_at_nanos: -2,
    }
}

fn event() -> Event {
    Event {
        id: "evt_golden".into(),
        tenant_id: "tnt_golden".into(),
        destination_id: "des_golden".into(),
        matched_destination_ids: vec!["des_golden".into(), "des_other".into()],
        topic: "user.created".into(),
        time_nanos: 1_717_230_216_123_456_789,
        time_offset_seconds: -18_000,
        eligible_for_retry: true,
        metadata: map(&[("trace", "abc123")]),
        data: r#"{"amount":150,"note":"\u003cb\u003e"}"#.into(),
        idempotency_expires_ms: 1_717_233_816_123,
    }
}

/// A successful attempt with a captured response.
fn attempt_success() -> Attempt {
    Attempt {
        id: "atm_golden".into(),
        tenant_id: "tnt_golden".into(),
        event_id: "evt_golden".into(),
        destination_id: "des_golden".into(),
        destination_type: "webhook".into(),
        attempt_number: 3,
        manual: true,
        status: AttemptStatus::Success,
        time_nanos: 1_717_230_217_000_000_001,
        code: "200".into(),
        response_data: Some(r#"{"body":"ok","status":200}"#.into()),
        topic: "user.created".into(),
    }
}

/// A failed attempt without a response.
fn attempt_failed() -> Attempt {
    Attempt {
        id: "atm_failed".into(),
        tenant_id: "tnt_golden".into(),
        event_id: "evt_golden".into(),
        destination_id: "des_golden".into(),
        destination_type: "webhook".into(),
        attempt_number: 1,
        manual: false,
        status: AttemptStatus::Failed,
        time_nanos: -1,
        code: "ECONNREFUSED".into(),
        response_data: None,
        topic: "order.paid".into(),
    }
}

fn delivery_task() -> DeliveryTask {
    DeliveryTask {
        event_id: "evt_golden".into(),
        tenant_id: "tnt_golden".into(),
        destination_id: "des_golden".into(),
        attempt_number: 300,
        manual: true,
    }
}

// Record version 1 goldens. Never edit these: add new ones for a new version.

const TENANT_V1: &str = concat!(
    "010a746e745f676f6c64656e0204706c616e0370726f0772c3a967696f6e0765752d77657374f68e",
    "adaefa63c0de8caffa63",
);
const DESTINATION_V1: &str = concat!(
    "010a6465735f676f6c64656e0a746e745f676f6c64656e07776562686f6f6b020c757365722e6372",
    "6561746564076f726465722e2a01207b2264617461223a7b22616d6f756e74223a7b222467746522",
    "3a3130307d7d7d010375726c1868747470733a2f2f6578616d706c652e636f6d2f686f6f6b020f70",
    "726576696f75735f7365637265740977687365635f6f6c64067365637265740977687365635f6162",
    "630106736f75726365076f7574706f737401047465616d0762696c6c696e67f68eadaefa63c0adb7",
    "aefa630180c8c3aefa63aaf4d8d990f2e9d42f",
);
const DESTINATION_V1_BARE: &str = "0101640174076177735f73717301012a000000000000010003";
const EVENT_V1: &str = concat!(
    "010a6576745f676f6c64656e0a746e745f676f6c64656e0a6465735f676f6c64656e020a6465735f",
    "676f6c64656e096465735f6f746865720c757365722e63726561746564aaf4d8d990f2e9d42f9f99",
    "02010105747261636506616263313233257b22616d6f756e74223a3135302c226e6f7465223a225c",
    "7530303363625c7530303365227df6c8e4b1fa63",
);
const ATTEMPT_V1_SUCCESS: &str = concat!(
    "010a61746d5f676f6c64656e0a746e745f676f6c64656e0a6576745f676f6c64656e0a6465735f67",
    "6f6c64656e07776562686f6f6b03010082e8d09d97f2e9d42f03323030011a7b22626f6479223a22",
    "6f6b222c22737461747573223a3230307d0c757365722e63726561746564",
);
const ATTEMPT_V1_FAILED: &str = concat!(
    "010a61746d5f6661696c65640a746e745f676f6c64656e0a6576745f676f6c64656e0a6465735f67",
    "6f6c64656e07776562686f6f6b010001010c45434f4e4e52454655534544000a6f726465722e7061",
    "6964",
);
const DELIVERY_TASK_V1: &str =
    "010a6576745f676f6c64656e0a746e745f676f6c64656e0a6465735f676f6c64656eac0201";

#[test]
fn tenant_v1() {
    assert_record_golden("tenants", TENANT_V1, &tenant());
}

/// A version-2 destination row: `destination()` sealed with the secret `golden-secret` under
/// its own row key (the nonce was random when it was made; the golden fixes it).
const DESTINATION_V2_SEALED: &str = concat!(
    "020a6465735f676f6c64656e0a746e745f676f6c64656e07776562686f6f6b020c757365722e6372",
    "6561746564076f726465722e2a01207b2264617461223a7b22616d6f756e74223a7b222467746522",
    "3a3130307d7d7d010375726c1868747470733a2f2f6578616d706c652e636f6d2f686f6f6b010474",
    "65616d0762696c6c696e67f68eadaefa63c0adb7aefa630180c8c3aefa63aaf4d8d990f2e9d42f58",
    "16b5243d3958d1a10be9fd0b5305b632a60528bb5d3049c75066994e2504d31076e20fe6581ba4d3",
    "1ce5d3b00052d72c3f92ab1eaac9335743f2e2b8472683393f5d26d3a9b6d60be43817471e944ba0",
    "d1ffae61cb23edb0",
);

#[test]
fn destination_v1() {
    assert_record_golden("destinations", DESTINATION_V1, &destination());
    assert_record_golden("destinations", DESTINATION_V1_BARE, &destination_bare());
}

#[test]
fn destination_v2_sealed() {
    let bytes = unhex(DESTINATION_V2_SEALED);
    let d = destination();
    let key = tables::destination_key(&d.tenant_id, &d.id);
    let cipher = super::secrets::SecretBox::new("golden-secret").expect("key");
    assert_eq!(
        super::destination_record::decode(&bytes, &key, Some(&cipher)).expect("decode"),
        d
    );
    assert_eq!(
        super::destination_record::owner(&bytes).expect("owner"),
        (d.id.clone(), d.tenant_id.clone())
    );
    // Neither secret is in the clear.
    assert!(!d.credentials.is_empty() && !d.delivery_metadata.is_empty());
    for secret in d.credentials.values().chain(d.delivery_metadata.values()) {
        assert!(!hex(&bytes).contains(&hex(secret.as_bytes())), "{secret}");
    }
}

#[test]
fn event_v1() {
    assert_record_golden("events", EVENT_V1, &event());
}

#[test]
fn attempt_v1() {
    assert_record_golden("attempts", ATTEMPT_V1_SUCCESS, &attempt_success());
    assert_record_golden("attempts", ATTEMPT_V1_FAILED, &attempt_failed());
}

#[test]
fn delivery_task_v1() {
    assert_record_golden("queue", DELIVERY_TASK_V1, &delivery_task());
}

// Schema version 1: values that are not records, and keys.

#[test]
fn meta_schema_version_v1() {
    // A schema-1 stamp is still read as version 1 (and upgraded).
    let dir = tempfile::tempdir().expect("temp dir");
    let db = redb::Database::create(dir.path().join(super::STORE_FILE)).expect("create");
    let txn = db.begin_write().expect("write");
    txn.open_table(tables::META)
        .expect("meta")
        .insert("schema_version", unhex("00000001").as_slice())
        .expect("stamp");
    txn.commit().expect("commit");
    assert_eq!(super::migrate::stamped_version(&db).expect("read"), Some(1));
}

#[test]
fn meta_schema_version_v2() {
    assert_eq!(tables::SCHEMA_VERSION, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _thread) = super::Store::open(dir.path()).expect("open");
    let txn = store.db.begin_read().expect("read");
    let meta = txn.open_table(tables::META).expect("meta");
    let value = meta.get("schema_version").expect("get").expect("stamped");
    assert_eq!(hex(value.value()), "00000002");
}

#[test]
fn queue_key_and_pending_retry_value_v1() {
    // The queue's key, and the value of a `pending_retry` row: due ms, then sequence, both u64
    // big-endian.
    let key = QueueKey {
        due_ms: 1_717_230_216_123,
        seq: 0x0102_0304_0506_0708,
    };
    let golden = "0000018fd2e5a3bb0102030405060708";
    assert_eq!(hex(&key.to_bytes()), golden);
    assert_eq!(QueueKey::from_bytes(&unhex(golden)), Some(key));
}

#[test]
fn event_ingested_value_v1() {
    // The value of an `event_ingested` row: the ingestion time in unix ms, u64 big-endian.
    let golden = "0000018fd2e5a3bb";
    assert_eq!(hex(&1_717_230_216_123u64.to_be_bytes()), golden);
    assert_eq!(
        tables::ingested_ms_of(&unhex(golden)),
        Some(1_717_230_216_123)
    );
}

#[test]
fn key_layouts_v1() {
    let cases: [(&str, Vec<u8>, &str); 8] = [
        (
            "tenants_by_created",
            tables::tenant_created_key(1_717_230_216_123, "tnt"),
            "0000018fd2e5a3bb746e74",
        ),
        (
            "destinations",
            tables::destination_key("tnt", "des"),
            "00000003746e74646573",
        ),
        (
            "events_by_time / attempts_by_time",
            tables::time_key(1_717_230_216_123_456_789, "evt"),
            "97d4d3c8859b1d15657674",
        ),
        (
            "events_by_time before 1970",
            tables::time_key(-1, "evt"),
            "7fffffffffffffff657674",
        ),
        (
            "events_by_tenant / attempts_by_tenant",
            tables::tenant_time_key("tnt", 1_717_230_216_123_456_789, "evt"),
            "00000003746e7497d4d3c8859b1d15657674",
        ),
        (
            "attempts_by_event",
            tables::attempt_by_event_key("evt", "des", 258),
            "000000036576740000000364657300000102",
        ),
        (
            "events_by_ingestion",
            tables::ingestion_key(1_717_230_216_123, "evt"),
            "0000018fd2e5a3bb657674",
        ),
        (
            "pending_retry",
            tables::pending_retry_key("evt", "des"),
            "0000000365767400000003646573",
        ),
    ];
    for (table, key, golden) in cases {
        assert_eq!(hex(&key), golden, "key layout of {table}");
    }
}

// Schema version 2: the two logs and the attempt position.

#[test]
fn key_layouts_v2() {
    let cases: [(&str, Vec<u8>, &str); 2] = [
        (
            "event_log, and the value of event_ingested (ingestion ms u64 BE ++ sequence u64 BE)",
            tables::log_position(1_717_230_216_123, 0x0102_0304_0506_0708).to_vec(),
            "0000018fd2e5a3bb0102030405060708",
        ),
        (
            "attempt_log (time ++ attempt id)",
            tables::time_key(1_717_230_216_123_456_789, "att"),
            "97d4d3c8859b1d15617474",
        ),
    ];
    for (table, key, golden) in cases {
        assert_eq!(hex(&key), golden, "key layout of {table}");
    }
}

#[test]
fn attempt_time_value_v2() {
    // The value of an `attempt_time` row: the attempt's time in unix ns as an order-preserving
    // i64 (sign bit flipped), big-endian.
    let golden = "97d4d3c8859b1d15";
    assert_eq!(hex(&tables::ordered_i64(1_717_230_216_123_456_789)), golden);
    assert_eq!(
        tables::decode_ordered_i64(&unhex(golden)),
        Some(1_717_230_216_123_456_789)
    );
}

// The metrics counters (tables added to schema 2 without a version bump).

#[test]
fn counter_keys_v2() {
    use super::counters::{counter_keys, AttemptTuple, EventTuple};
    use crate::model::event::AttemptStatus;
    // 2024-06-01T08:23:36.123456789Z: level byte (2 day, 1 hour, 0 minute) ++ the bucket's
    // start in unix seconds as an order-preserving i64 ++ the tuple.
    let time = 1_717_230_216_123_456_789;
    let buckets = [
        "0280000000665a6480",
        "0180000000665ad500",
        "0080000000665ada64",
    ];
    let attempt = AttemptTuple {
        tenant_id: "tnt",
        destination_id: "des",
        destination_type: "webhook",
        topic: "a.b",
        status: AttemptStatus::Failed,
        code: "500",
        manual: true,
        attempt_number: 258,
    };
    let attempt_golden = "00000003746e740000000364657300000007776562686f6f6b00000003612e62\
                          00000000033530300100000102";
    let event = EventTuple {
        tenant_id: "tnt",
        topic: "a.b",
        destination_ids: vec!["d1", "d2"],
    };
    let event_golden = "00000003746e7400000003612e6200000002000000026431000000026432";
    for (tuple, golden) in [
        (attempt.encode(), attempt_golden),
        (event.encode(), event_golden),
    ] {
        let keys = counter_keys(time, &tuple);
        for (key, bucket) in keys.iter().zip(buckets) {
            assert_eq!(hex(key), format!("{bucket}{golden}"), "counter key layout");
        }
    }
    assert_eq!(AttemptTuple::decode(&unhex(attempt_golden)), Some(attempt));
    assert_eq!(EventTuple::decode(&unhex(event_golden)), Some(event));
}
