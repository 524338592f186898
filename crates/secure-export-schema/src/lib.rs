//! `secure-export-schema`: Serde model of Azure Monitor's common alert schema, every alert type and the legacy formats.
