//! Closed sets of wire strings as enums: project roles, owner types, and the
//! states of content versions and upload sessions.
//!
//! Each serialises as exactly the string the API has always used (`"owner"`,
//! `"project"`, `"complete"`, …); an unknown string is a deserialisation
//! error that names the accepted values. `FromStr`/`Display` convert at the
//! edges that keep plain text (database columns, CLI flags). With feature
//! `openapi` each is a `utoipa` string-enum schema; with feature `sqlx` each
//! reads from and binds as a text column on any sqlx backend.

use std::fmt;
use std::str::FromStr;

/// An unknown string where one of a closed set was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being read (`role`, `owner_type`, …).
    pub what: &'static str,
    /// The accepted values.
    pub expected: &'static [&'static str],
    pub got: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be one of {}; got {:?}",
            self.what,
            self.expected.join(", "),
            self.got
        )
    }
}

impl std::error::Error for UnknownName {}

/// Declares a wire enum: the variants with their strings, serde, `Display`,
/// `FromStr`, the `openapi` schema and the `sqlx` text mapping.
macro_rules! wire_names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        what: $what,
                        expected: &[$($text),+],
                        got: s.to_string(),
                    }),
                }
            }
        }

        /// Through `FromStr`, so an unknown string names the accepted ones.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<String as sqlx::Decode<'r, DB>>::decode(value)?.parse::<$name>()?)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut DB::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let text: &'q str = self.as_str();
                <&'q str as sqlx::Encode<'q, DB>>::encode_by_ref(&text, buf)
            }
        }
    };
}

wire_names! {
    /// A member's role in a project, most powerful first. Owners, admins and
    /// members write; viewers read; owners and admins manage members; only
    /// owners grant or take away `owner`.
    pub enum ProjectRole as "role" {
        Owner = "owner",
        Admin = "admin",
        Member = "member",
        Viewer = "viewer",
    }
}

impl ProjectRole {
    /// Owners, admins and members may change the project's assets.
    pub fn may_write(self) -> bool {
        matches!(
            self,
            ProjectRole::Owner | ProjectRole::Admin | ProjectRole::Member
        )
    }

    /// Owners and admins add, change and remove members.
    pub fn may_manage_members(self) -> bool {
        matches!(self, ProjectRole::Owner | ProjectRole::Admin)
    }
}

wire_names! {
    /// Who owns an asset: a user (personal assets) or a project.
    pub enum OwnerType as "owner_type" {
        User = "user",
        Project = "project",
    }
}

wire_names! {
    /// State of a content version.
    pub enum ContentStatus as "content status" {
        /// Its upload session is open.
        Pending = "pending",
        /// Verified and published.
        Complete = "complete",
        /// Its upload session was aborted.
        Aborted = "aborted",
    }
}

wire_names! {
    /// State of an upload session.
    pub enum UploadStatus as "upload status" {
        /// Accepting chunks.
        Open = "open",
        /// Verified and published as a content version.
        Complete = "complete",
        /// Aborted; its chunks are gone.
        Aborted = "aborted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + serde::Serialize,
        T: serde::de::DeserializeOwned,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in all {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::Value::String(v.to_string()));
            assert_eq!(serde_json::from_value::<T>(json).unwrap(), *v);
            assert_eq!(v.to_string().parse::<T>().unwrap(), *v);
        }
    }

    #[test]
    fn wire_strings_are_todays_strings() {
        round_trips(ProjectRole::ALL);
        round_trips(OwnerType::ALL);
        round_trips(ContentStatus::ALL);
        round_trips(UploadStatus::ALL);
        let roles: Vec<_> = ProjectRole::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, ["owner", "admin", "member", "viewer"]);
        assert_eq!(roles, crate::api::PROJECT_ROLES);
        assert_eq!(OwnerType::Project.as_str(), "project");
        assert_eq!(ContentStatus::Pending.as_str(), "pending");
        assert_eq!(UploadStatus::Open.as_str(), "open");
    }

    #[test]
    fn unknown_strings_are_refused_with_the_accepted_ones() {
        let e = "superuser".parse::<ProjectRole>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "role must be one of owner, admin, member, viewer; got \"superuser\""
        );
        let e = serde_json::from_str::<OwnerType>("\"group\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("owner_type must be one of user, project; got \"group\""),
            "{e}"
        );
        assert!(serde_json::from_str::<UploadStatus>("\"Open\"").is_err());
    }
}
