//! `secure-export`: Receive Azure Monitor Secure Webhook alerts and turn them into ITSM work items.
