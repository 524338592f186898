//! `secure-export-aad`: Azure AD (Entra ID) token verification for Azure Monitor Secure Webhook calls.
