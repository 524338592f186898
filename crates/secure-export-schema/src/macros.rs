//! `json_object!`: declares a JSON object model whose fields are all optional, whose
//! unknown members are preserved in `extra`, and whose `Deserialize` reads members one by
//! one so that `serde_path_to_error` can name the exact failing member.

/// Declares a struct for a JSON object.
///
/// Each field is written `"jsonKey" | "alias" => name: Type` and is stored as
/// `Option<Type>`; JSON `null` and an absent member both give `None`. A field may add
/// `via Wrapper` to decode through `Wrapper: Deserialize + Into<Option<Type>>` (used for
/// tolerant timestamps). Members the model does not know are kept, in input order of keys,
/// in `pub extra: BTreeMap<String, serde_json::Value>` and serialized back.
macro_rules! json_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $key:literal $(| $alias:literal)* => $field:ident : $ty:ty $(as $via:ty)?,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: Option<$ty>,
            )*
            /// Members not modelled above, kept so that serializing gives them back.
            pub extra: std::collections::BTreeMap<String, serde_json::Value>,
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> Result<Self, D::Error>
            where
                D: serde::Deserializer<'de>,
            {
                struct ObjectVisitor;

                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                    }

                    fn visit_map<A>(self, mut map: A) -> Result<$name, A::Error>
                    where
                        A: serde::de::MapAccess<'de>,
                    {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<$crate::key::Key<'de>>()? {
                            match key.as_str() {
                                $(
                                    $key $(| $alias)* => {
                                        out.$field = json_object!(@read map, $ty $(, $via)?);
                                    }
                                )*
                                _ => {
                                    let value = map.next_value::<serde_json::Value>()?;
                                    out.extra.insert(key.into_string(), value);
                                }
                            }
                        }
                        Ok(out)
                    }
                }

                deserializer.deserialize_map(ObjectVisitor)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
            where
                S: serde::Serializer,
            {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                $(
                    if let Some(value) = &self.$field {
                        map.serialize_entry($key, value)?;
                    }
                )*
                for (key, value) in &self.extra {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    };
    (@read $map:ident, $ty:ty) => {
        $map.next_value::<Option<$ty>>()?
    };
    (@read $map:ident, $ty:ty, $via:ty) => {
        $map.next_value::<$via>()?.into()
    };
}
