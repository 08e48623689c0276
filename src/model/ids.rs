//! Identifier newtypes, so an account id can never be passed where a receipt id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier as the service gave it.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }
    };
}

id_newtype!(
    /// A receipt (one attachment of a bank transaction), as the source identifies it.
    ReceiptId
);
id_newtype!(
    /// A bank account, as the source identifies it.
    AccountId
);
id_newtype!(
    /// A bank transaction, as the source identifies it.
    TransactionId
);
id_newtype!(
    /// A file or folder in the archive, as the sink identifies it.
    ///
    /// Sinks with stable ids (OneDrive) keep an item's id across renames and moves;
    /// sinks without them (a local folder) use the item's path, so a rename is a new id.
    SinkItemId
);
