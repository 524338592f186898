//! Typed alert parsing versus an untyped `serde_json::Value` parse of the same bytes.
//!
//! ```text
//! cargo bench -p secure-export-schema --bench schema_parse -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Each complete common-schema fixture gets a group with two functions, `typed`
//! (`Alert::from_slice`) and `value` (`serde_json::from_slice::<Value>`), measured in the
//! same run so their ratio is meaningful on any machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secure_export_schema::Alert;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn parse(c: &mut Criterion) {
    for (name, bytes) in fixtures() {
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("typed", |b| {
            b.iter(|| Alert::from_slice(black_box(&bytes)).unwrap());
        });
        group.bench_function("value", |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).unwrap());
        });
        group.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
