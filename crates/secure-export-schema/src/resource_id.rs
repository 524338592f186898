//! Azure Resource Manager resource ids.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::str::FromStr;

/// A parsed ARM resource id such as
/// `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>`.
///
/// Covers subscription-only ids (`/subscriptions/<sub>`), resource-group ids, resources at
/// subscription or resource-group scope, child resources (`.../servers/s1/databases/db1`)
/// and extension resources (a second `/providers/` segment; the type and provider are the
/// innermost resource's). Keywords are matched ignoring ASCII case and one trailing `/` is
/// ignored.
///
/// Equality and hashing ignore ASCII case (ARM ids are case-insensitive); `Display` gives
/// the id as received.
///
/// ```
/// use secure_export_schema::ResourceId;
/// let id = ResourceId::parse(
///     "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Sql/servers/srv/databases/DB",
/// )?;
/// assert_eq!(id.subscription_id(), "s1");
/// assert_eq!(id.resource_group(), Some("RG"));
/// assert_eq!(id.provider(), Some("Microsoft.Sql"));
/// assert_eq!(id.resource_type().as_deref(), Some("microsoft.sql/servers/databases"));
/// assert_eq!(id.name(), Some("DB"));
/// assert_eq!(id, ResourceId::parse(&id.normalized().to_owned())?);
/// # Ok::<(), secure_export_schema::ResourceIdError>(())
/// ```
#[derive(Clone)]
pub struct ResourceId {
    raw: String,
    normalized: String,
    subscription: Range<usize>,
    resource_group: Option<Range<usize>>,
    provider: Option<Range<usize>>,
    /// Type segments of the innermost resource (after its provider namespace).
    types: Vec<Range<usize>>,
    name: Option<Range<usize>>,
}

/// Why a string is not a resource id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceIdError {
    /// The id does not start with `/subscriptions/<id>`.
    #[error("resource id must start with `/subscriptions/<subscription-id>`")]
    MissingSubscription,
    /// A segment between two `/` is empty.
    #[error("resource id has an empty segment at position {position}")]
    EmptySegment {
        /// 0-based segment index.
        position: usize,
    },
    /// A segment that should be a keyword is something else.
    #[error("expected `{expected}` in resource id, found `{found}`")]
    UnexpectedSegment {
        /// What the grammar expects here.
        expected: &'static str,
        /// What the id contains.
        found: String,
    },
    /// A keyword or type is not followed by its value.
    #[error("resource id ends after `{after}` without its value")]
    MissingValue {
        /// The segment that lacks a value.
        after: String,
    },
    /// The id contains control characters (such as a newline).
    #[error("resource id contains control characters")]
    InvalidCharacter,
}

impl ResourceId {
    /// Parses an ARM resource id.
    pub fn parse(input: &str) -> Result<Self, ResourceIdError> {
        if input.chars().any(char::is_control) {
            return Err(ResourceIdError::InvalidCharacter);
        }
        let body = input
            .strip_prefix('/')
            .ok_or(ResourceIdError::MissingSubscription)?;
        let body = body.strip_suffix('/').unwrap_or(body);
        // Split into segments with byte ranges relative to `input`.
        let mut segments: Vec<Range<usize>> = Vec::new();
        let mut start = 1;
        for part in body.split('/') {
            let end = start + part.len();
            if part.trim().is_empty() {
                return Err(ResourceIdError::EmptySegment {
                    position: segments.len(),
                });
            }
            segments.push(start..end);
            start = end + 1;
        }
        let seg = |r: &Range<usize>| input.get(r.clone()).unwrap_or_default();

        let mut iter = segments.iter();
        match iter.next() {
            Some(first) if seg(first).eq_ignore_ascii_case("subscriptions") => {}
            _ => return Err(ResourceIdError::MissingSubscription),
        }
        let subscription = iter
            .next()
            .cloned()
            .ok_or(ResourceIdError::MissingSubscription)?;

        let mut resource_group = None;
        let mut provider = None;
        let mut types = Vec::new();
        let mut name = None;
        while let Some(keyword) = iter.next() {
            let word = seg(keyword);
            if word.eq_ignore_ascii_case("resourceGroups")
                && resource_group.is_none()
                && provider.is_none()
            {
                let value = iter.next().ok_or_else(|| ResourceIdError::MissingValue {
                    after: word.to_owned(),
                })?;
                resource_group = Some(value.clone());
            } else if word.eq_ignore_ascii_case("providers") {
                let namespace = iter.next().ok_or_else(|| ResourceIdError::MissingValue {
                    after: word.to_owned(),
                })?;
                provider = Some(namespace.clone());
                types.clear();
                name = None;
                // Pairs of type/name until the next `providers` keyword or the end.
                loop {
                    let rest = iter.as_slice();
                    match rest.first() {
                        None => break,
                        Some(next) if seg(next).eq_ignore_ascii_case("providers") => break,
                        Some(_) => {}
                    }
                    let type_seg = iter.next().cloned().unwrap_or_default();
                    let type_name = seg(&type_seg).to_owned();
                    let value = iter
                        .next()
                        .ok_or(ResourceIdError::MissingValue { after: type_name })?;
                    types.push(type_seg);
                    name = Some(value.clone());
                }
            } else {
                let expected = if provider.is_some() || resource_group.is_some() {
                    "providers"
                } else {
                    "resourceGroups` or `providers"
                };
                return Err(ResourceIdError::UnexpectedSegment {
                    expected,
                    found: word.to_owned(),
                });
            }
        }

        let trimmed_len = 1 + body.len();
        let raw = input.to_owned();
        let normalized = input
            .get(..trimmed_len)
            .unwrap_or(input)
            .to_ascii_lowercase();
        Ok(Self {
            raw,
            normalized,
            subscription,
            resource_group,
            provider,
            types,
            name,
        })
    }

    fn slice(&self, range: &Range<usize>) -> &str {
        self.raw.get(range.clone()).unwrap_or_default()
    }

    /// The id as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The id in ASCII lowercase without a trailing `/`: the form to compare and store.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The subscription id, as received.
    pub fn subscription_id(&self) -> &str {
        self.slice(&self.subscription)
    }

    /// The resource group name, as received.
    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_ref().map(|r| self.slice(r))
    }

    /// The resource provider namespace (such as `Microsoft.Compute`), as received.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_ref().map(|r| self.slice(r))
    }

    /// The lowercase resource type, with child types joined by `/`
    /// (`microsoft.sql/servers/databases`). `None` for subscription and group ids.
    pub fn resource_type(&self) -> Option<String> {
        let provider = self.provider()?;
        if self.types.is_empty() {
            return None;
        }
        let mut out = provider.to_ascii_lowercase();
        for t in &self.types {
            out.push('/');
            out.push_str(&self.slice(t).to_ascii_lowercase());
        }
        Some(out)
    }

    /// The resource's own name (last segment), as received. `None` for subscription and
    /// resource-group ids.
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().map(|r| self.slice(r))
    }

    /// Whether the id is just `/subscriptions/<id>`.
    pub fn is_subscription_only(&self) -> bool {
        self.resource_group.is_none() && self.provider.is_none()
    }

    /// Whether the id names a resource group itself (`/subscriptions/<id>/resourceGroups/<rg>`).
    pub fn is_resource_group(&self) -> bool {
        self.resource_group.is_some() && self.provider.is_none()
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResourceId").field(&self.raw).finish()
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        self.normalized == other.normalized
    }
}

impl Eq for ResourceId {}

impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.normalized.hash(state);
    }
}

impl FromStr for ResourceId {
    type Err = ResourceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for ResourceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_vm_id() {
        let id = ResourceId::parse(
            "/subscriptions/SUB/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2",
        )
        .unwrap();
        assert_eq!(id.subscription_id(), "SUB");
        assert_eq!(id.resource_group(), Some("pipelinealertrg"));
        assert_eq!(id.provider(), Some("microsoft.compute"));
        assert_eq!(
            id.resource_type().as_deref(),
            Some("microsoft.compute/virtualmachines")
        );
        assert_eq!(id.name(), Some("wcus-r2-gen2"));
        assert!(!id.is_subscription_only());
    }

    #[test]
    fn parses_subscription_and_group_ids() {
        let sub = ResourceId::parse("/subscriptions/aaaa/").unwrap();
        assert!(sub.is_subscription_only());
        assert_eq!(sub.normalized(), "/subscriptions/aaaa");
        assert_eq!(sub.to_string(), "/subscriptions/aaaa/");
        assert_eq!(sub.name(), None);
        assert_eq!(sub.resource_type(), None);
        let rg = ResourceId::parse("/subscriptions/aaaa/resourceGroups/Rg1").unwrap();
        assert!(rg.is_resource_group());
        assert_eq!(rg.resource_group(), Some("Rg1"));
    }

    #[test]
    fn parses_subscription_scope_and_extension_resources() {
        let alert = ResourceId::parse(
            "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/aaaa0a0a-bb1b",
        )
        .unwrap();
        assert_eq!(alert.resource_group(), None);
        assert_eq!(
            alert.resource_type().as_deref(),
            Some("microsoft.alertsmanagement/alerts")
        );
        let ext = ResourceId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Insights/diagnosticSettings/d1",
        )
        .unwrap();
        assert_eq!(ext.provider(), Some("Microsoft.Insights"));
        assert_eq!(
            ext.resource_type().as_deref(),
            Some("microsoft.insights/diagnosticsettings")
        );
        assert_eq!(ext.name(), Some("d1"));
    }

    #[test]
    fn equality_ignores_case_and_trailing_slash() {
        use std::collections::HashSet;
        let a = ResourceId::parse("/subscriptions/S/resourceGroups/RG/providers/P.Q/t/N").unwrap();
        let b = ResourceId::parse("/SUBSCRIPTIONS/s/resourcegroups/rg/providers/p.q/T/n/").unwrap();
        assert_eq!(a, b);
        let set: HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn rejects_malformed_ids() {
        use ResourceIdError as E;
        let cases: &[(&str, fn(&E) -> bool)] = &[
            ("", |e| matches!(e, E::MissingSubscription)),
            ("subscriptions/s", |e| matches!(e, E::MissingSubscription)),
            ("/subscriptions", |e| matches!(e, E::MissingSubscription)),
            ("/tenants/t", |e| matches!(e, E::MissingSubscription)),
            ("/subscriptions//resourceGroups/rg", |e| {
                matches!(e, E::EmptySegment { position: 1 })
            }),
            ("/subscriptions/s/resourceGroups", |e| {
                matches!(e, E::MissingValue { .. })
            }),
            ("/subscriptions/s/providers/P.Q/type", |e| {
                matches!(e, E::MissingValue { .. })
            }),
            ("/subscriptions/s/foo/bar", |e| {
                matches!(e, E::UnexpectedSegment { .. })
            }),
            ("/subscriptions/s\n", |e| matches!(e, E::InvalidCharacter)),
        ];
        for (input, check) in cases {
            let err = ResourceId::parse(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
    }
}
