//! The verification policy: clouds, token versions, and the well-known Azure Monitor ids.

use std::fmt;

/// App id of the "AzNS AAD Webhook" first-party app that Azure Monitor calls as (public cloud).
pub const AZURE_MONITOR_APP_ID: &str = "461e8683-5575-4561-ac7f-899cc907d62a";
/// App id of the same app in Azure Government.
pub const AZURE_MONITOR_APP_ID_US_GOV: &str = "f1f34126-d4ef-40e1-ad4b-bf5d47b4860d";
/// The app role the Secure Webhook setup script creates and assigns to Azure Monitor.
pub const DEFAULT_ROLE: &str = "ActionGroupsSecureWebhook";

/// An Entra ID cloud: decides the default authority (login host) and v1 issuer host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Cloud {
    /// Azure public cloud (`login.microsoftonline.com`).
    #[default]
    Public,
    /// Azure US Government (`login.microsoftonline.us`).
    UsGovernment,
    /// Azure China, operated by 21Vianet (`login.chinacloudapi.cn`).
    China,
}

impl Cloud {
    /// The authority base URL used for discovery.
    #[must_use]
    pub fn authority(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com",
            Self::UsGovernment => "https://login.microsoftonline.us",
            Self::China => "https://login.chinacloudapi.cn",
        }
    }

    /// The v1 (`sts`) issuer prefix; the v1 issuer is `{prefix}{tenant}/`.
    #[must_use]
    pub fn v1_issuer_prefix(self) -> &'static str {
        match self {
            Self::Public | Self::UsGovernment => "https://sts.windows.net/",
            Self::China => "https://sts.chinacloudapi.cn/",
        }
    }
}

/// The version of an Entra access token (`ver` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum TokenVersion {
    /// `ver: "1.0"`: issuer `https://sts.windows.net/{tid}/`, caller in `appid`.
    #[serde(rename = "1.0")]
    V1,
    /// `ver: "2.0"`: issuer `https://{login-host}/{tid}/v2.0`, caller in `azp`.
    #[serde(rename = "2.0")]
    V2,
}

impl TokenVersion {
    /// The `ver` claim value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "1.0",
            Self::V2 => "2.0",
        }
    }

    /// The claim naming the calling application (`appid` for v1, `azp` for v2).
    #[must_use]
    pub fn caller_claim(self) -> &'static str {
        match self {
            Self::V1 => "appid",
            Self::V2 => "azp",
        }
    }
}

impl fmt::Display for TokenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which token versions the verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenVersions {
    /// Only v1 tokens.
    V1Only,
    /// Only v2 tokens (what the Azure Monitor docs recommend configuring).
    V2Only,
    /// Both (the default).
    #[default]
    Both,
}

impl TokenVersions {
    /// Whether `v` is accepted.
    #[must_use]
    pub fn accepts(self, v: TokenVersion) -> bool {
        matches!(
            (self, v),
            (Self::Both, _) | (Self::V1Only, TokenVersion::V1) | (Self::V2Only, TokenVersion::V2)
        )
    }

    pub(crate) fn list(self) -> &'static [TokenVersion] {
        match self {
            Self::V1Only => &[TokenVersion::V1],
            Self::V2Only => &[TokenVersion::V2],
            Self::Both => &[TokenVersion::V1, TokenVersion::V2],
        }
    }
}

/// Whether `s` is a GUID in the 8-4-4-4-12 hex form.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Audience comparison rule: exact and case-sensitive, except that ONE trailing `/` is ignored on
/// either side (as Microsoft.IdentityModel does by default), so `api://x` and `api://x/` match but
/// `api://x//` does not.
pub(crate) fn audience_matches(configured: &str, presented: &str) -> bool {
    !presented.is_empty() && strip_one_slash(configured) == strip_one_slash(presented)
}

fn strip_one_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_check() {
        assert!(is_guid("461e8683-5575-4561-ac7f-899cc907d62a"));
        assert!(!is_guid("461e8683-5575-4561-ac7f-899cc907d62"));
        assert!(!is_guid("461e8683x5575-4561-ac7f-899cc907d62a"));
        assert!(!is_guid("common"));
    }

    #[test]
    fn trailing_slash_rule() {
        assert!(audience_matches("api://x", "api://x"));
        assert!(audience_matches("api://x", "api://x/"));
        assert!(audience_matches("api://x/", "api://x"));
        assert!(!audience_matches("api://x", "api://x//"));
        assert!(!audience_matches("api://x", "API://x"));
        assert!(!audience_matches("api://x", ""));
    }

    #[test]
    fn clouds() {
        assert_eq!(
            Cloud::Public.authority(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            Cloud::UsGovernment.v1_issuer_prefix(),
            "https://sts.windows.net/"
        );
        assert_eq!(
            Cloud::China.v1_issuer_prefix(),
            "https://sts.chinacloudapi.cn/"
        );
    }
}
