//! Fuzzes `Alert::from_slice` (the request-body parser), plus the resource-id and
//! timestamp parsers on the same bytes. Invariants: no panic; whatever parses serializes
//! and parses again, and from then on serialization is a fixpoint. (The first round may
//! normalise: with duplicate keys the typed decoder sees every occurrence while an
//! `Unknown` context keeps only the last one.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_export_schema::{Alert, ResourceId, parse_timestamp};

fuzz_target!(|data: &[u8]| {
    if let Ok(alert) = Alert::from_slice(data) {
        let _ = alert.target_resource_ids();
        let _ = alert.resource_dimensions();
        let _ = alert.event_time();
        let _ = alert.context_kind();
        let out = serde_json::to_vec(&alert).expect("a parsed alert serializes");
        let second = Alert::from_slice(&out).expect("a serialized alert parses again");
        assert_eq!(second.essentials, alert.essentials);
        let out2 = serde_json::to_vec(&second).expect("serializes again");
        let third = Alert::from_slice(&out2).expect("parses a third time");
        assert_eq!(third, second);
        assert_eq!(
            out2,
            serde_json::to_vec(&third).expect("serializes a third time")
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = ResourceId::parse(text) {
            assert_eq!(ResourceId::parse(id.normalized()).as_ref(), Ok(&id));
            let _ = (
                id.resource_type(),
                id.name(),
                id.provider(),
                id.resource_group(),
            );
        }
        let _ = parse_timestamp(text);
    }
});
