//! Property tests: ARM resource ids, timestamps, and "no input panics".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use secure_export_schema::{Alert, ResourceId, parse_timestamp};

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._()-]{0,11}".prop_filter("not a keyword", |s| {
        !["providers", "subscriptions", "resourcegroups"].contains(&s.to_ascii_lowercase().as_str())
    })
}

fn random_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn resource_ids_parse_into_their_parts(
        sub in segment(),
        rg in proptest::option::of(segment()),
        provider in proptest::option::of((segment(), proptest::collection::vec((segment(), segment()), 1..4))),
        mask in any::<u64>(),
        trailing_slash in any::<bool>(),
    ) {
        let mut id = format!("/{}/{sub}", random_case("subscriptions", mask));
        if let Some(rg) = &rg {
            id.push_str(&format!("/{}/{rg}", random_case("resourceGroups", mask >> 3)));
        }
        if let Some((ns, chain)) = &provider {
            id.push_str(&format!("/{}/{ns}", random_case("providers", mask >> 5)));
            for (t, n) in chain {
                id.push_str(&format!("/{t}/{n}"));
            }
        }
        if trailing_slash {
            id.push('/');
        }
        let parsed = ResourceId::parse(&id).unwrap();
        prop_assert_eq!(parsed.to_string(), id.clone());
        prop_assert_eq!(parsed.subscription_id(), sub.as_str());
        prop_assert_eq!(parsed.resource_group(), rg.as_deref());
        prop_assert_eq!(parsed.is_subscription_only(), rg.is_none() && provider.is_none());
        match &provider {
            Some((ns, chain)) => {
                prop_assert_eq!(parsed.provider(), Some(ns.as_str()));
                let mut expected = ns.to_ascii_lowercase();
                for (t, _) in chain {
                    expected.push('/');
                    expected.push_str(&t.to_ascii_lowercase());
                }
                prop_assert_eq!(parsed.resource_type(), Some(expected));
                prop_assert_eq!(parsed.name(), chain.last().map(|(_, n)| n.as_str()));
            }
            None => {
                prop_assert_eq!(parsed.provider(), None);
                prop_assert_eq!(parsed.name(), None);
            }
        }
        // Case-insensitive identity.
        let normalized = ResourceId::parse(parsed.normalized()).unwrap();
        prop_assert_eq!(&normalized, &parsed);
        let upper = ResourceId::parse(&id.to_ascii_uppercase()).unwrap();
        prop_assert_eq!(&upper, &parsed);
        prop_assert_eq!(parsed.normalized(), id.trim_end_matches('/').to_ascii_lowercase());
    }

    #[test]
    fn resource_id_parser_never_panics(s in "\\PC{0,80}|(/[a-zA-Z/]{0,8}){0,10}") {
        if let Ok(id) = ResourceId::parse(&s) {
            prop_assert!(id.normalized().starts_with("/subscriptions/"));
            let _ = (id.resource_type(), id.name(), id.provider(), id.resource_group());
        }
    }

    #[test]
    fn timestamps_with_0_to_7_fraction_digits(
        secs in 0i64..4_102_444_800, // 1970..2100
        digits in 0usize..=7,
        fraction in 0u32..10_000_000,
        offset_minutes in prop_oneof![Just(None), Just(Some(0i32)), (-720i32..=840).prop_map(Some)],
    ) {
        let fraction = fraction % 10u32.pow(digits as u32);
        let nanos = if digits == 0 { 0 } else { fraction * 10u32.pow(9 - digits as u32) };
        let instant = Utc.timestamp_opt(secs, nanos).unwrap();
        let (local, suffix) = match offset_minutes {
            None => (instant, "Z".to_owned()),
            Some(m) => {
                let sign = if m < 0 { '-' } else { '+' };
                (instant + Duration::minutes(i64::from(m)), format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60))
            }
        };
        let mut text = local.format("%Y-%m-%dT%H:%M:%S").to_string();
        if digits > 0 {
            text.push_str(&format!(".{fraction:0digits$}"));
        }
        text.push_str(&suffix);
        prop_assert_eq!(parse_timestamp(&text), Some(instant), "{}", text);
    }

    #[test]
    fn timestamp_parser_never_panics(s in "\\PC{0,40}") {
        let _ = parse_timestamp(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Alert::from_slice(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        index in 0usize..64,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let all: Vec<Vec<u8>> = support::fixtures("")
            .into_iter()
            .chain(support::fixtures("legacy"))
            .map(|(_, b)| b)
            .collect();
        let mut bytes = all[index % all.len()].clone();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
        }
        if let Ok(alert) = Alert::from_slice(&bytes) {
            // Whatever parses must serialize and parse again.
            let out = serde_json::to_vec(&alert).unwrap();
            prop_assert!(Alert::from_slice(&out).is_ok());
        }
    }
}
