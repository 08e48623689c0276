//! Secrets sealed at rest: XChaCha20-Poly1305 under a keyring that rotates.
//!
//! A service stores each organisation's credentials (a Qonto API key or OAuth tokens, a
//! Microsoft refresh token) in its database. They are kept there only sealed:
//!
//! 1. [`Keyring`] holds one or more 256-bit keys, each under a short [`KeyId`]; the
//!    first is the current one, the one that seals. Keys come from the environment
//!    ([`SEALING_KEYS_VAR`], see [`Keyring::parse`]), never from the database.
//! 2. [`Keyring::seal`] encrypts with the current key and a fresh random 24-byte
//!    nonce (XChaCha20's nonce is long enough that random ones never meet in practice),
//!    and binds the result to its [`SealContext`] (organisation and purpose) as
//!    associated data: a value sealed for one organisation's Qonto key does not open as
//!    another organisation's, nor as the same organisation's Microsoft token.
//! 3. The [`SealedSecret`] names its key id in clear (the text form is
//!    `v1.<key id>.<base64url of nonce, ciphertext and tag>`), so that
//!    [`Keyring::open`] picks the right key and [`Keyring::reseal`] can move old values
//!    to the current key after a rotation.
//!
//! # Guarantees
//! - Neither a key nor a plaintext shows in any `Debug`, `Display` or error message;
//!   opened plaintext comes back as a [`SecretString`].
//! - A value changed in any byte, moved to another context, or relabelled with another
//!   key id does not open: [`Keyring::open`] fails with [`Error::Config`].
//! - Key bytes and intermediate plaintext buffers are wiped when dropped.
//!
//! # Assumptions
//! - Keys are random (see [`Keyring::generate_key_text`]), not passwords.
//! - A key id names one key for ever: a new key gets a new id.

use crate::auth::SecretString;
use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::common::Generate;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The environment variable [`Keyring::from_env`] reads.
pub const SEALING_KEYS_VAR: &str = "RECEIPT_SYNC_SEALING_KEYS";

/// The version tag of the sealed format; a later format gets another.
const FORMAT: &str = "v1";
/// Bytes of a key.
const KEY_LEN: usize = 32;
/// Bytes of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// The longest key id: it is stored with every sealed value.
const MAX_KEY_ID_LEN: usize = 32;

/// The name of one key of a [`Keyring`]: 1 to 32 ASCII letters, digits, `-` or `_`.
///
/// Stored in clear with every value the key sealed. Not secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Checks `id`.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty, too long, or oddly spelt id.
    pub fn new(id: &str) -> Result<Self> {
        let fine = !id.is_empty()
            && id.len() <= MAX_KEY_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if fine {
            Ok(Self(id.to_owned()))
        } else {
            Err(Error::Config(format!(
                "a sealing key id must be 1 to {MAX_KEY_ID_LEN} ASCII letters, digits, '-' or '_'"
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a sealed secret belongs to: its organisation, and what it is there (for
/// example `"qonto-api-key"`, `"qonto-oauth-tokens"`, `"microsoft-refresh-token"`).
///
/// Both are authenticated with the value and must be given again, identical, to open
/// it. Neither is secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SealContext {
    organisation: String,
    purpose: String,
}

impl SealContext {
    /// The context of `organisation`'s secret used as `purpose`.
    pub fn new(organisation: impl Into<String>, purpose: impl Into<String>) -> Self {
        Self {
            organisation: organisation.into(),
            purpose: purpose.into(),
        }
    }

    /// The organisation.
    pub fn organisation(&self) -> &str {
        &self.organisation
    }

    /// What the secret is.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The associated data: the format, the key id and the context, each
    /// length-prefixed so that no two different contexts give the same bytes.
    fn associated_data(&self, key: &KeyId) -> Vec<u8> {
        let mut data = Vec::new();
        for part in [
            FORMAT.as_bytes(),
            key.0.as_bytes(),
            self.organisation.as_bytes(),
            self.purpose.as_bytes(),
        ] {
            data.extend_from_slice(&(part.len() as u64).to_be_bytes());
            data.extend_from_slice(part);
        }
        data
    }
}

/// A secret sealed by a [`Keyring`]: its key id, nonce, ciphertext and tag.
///
/// Store [`as_str`](Self::as_str) (ASCII text) or [`as_bytes`](Self::as_bytes) in a
/// database column; read it back with [`str::parse`] or [`from_bytes`](Self::from_bytes).
/// It holds no plaintext, but `Debug` shows only the key id all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    key: KeyId,
    text: String,
}

impl SealedSecret {
    /// The id of the key that sealed it.
    pub fn key_id(&self) -> &KeyId {
        &self.key
    }

    /// The stored form: `v1.<key id>.<base64url of nonce, ciphertext and tag>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The stored form as bytes (for a `bytea` column).
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// Reads a stored form from bytes.
    ///
    /// # Errors
    /// [`Error::Config`] when the bytes are not a sealed value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        std::str::from_utf8(bytes)
            .map_err(|_| not_sealed("it is not text"))?
            .parse()
    }

    /// The nonce, ciphertext and tag.
    fn payload(&self) -> Result<Vec<u8>> {
        let encoded = self
            .text
            .rsplit_once('.')
            .map_or("", |(_, encoded)| encoded);
        URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| not_sealed("its payload is not base64url"))
    }
}

impl FromStr for SealedSecret {
    type Err = Error;

    /// Reads a stored form; checks its shape, not its contents (that is [`Keyring::open`]).
    fn from_str(text: &str) -> Result<Self> {
        let mut parts = text.split('.');
        let (Some(format), Some(key), Some(_payload), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(not_sealed(
                "it does not have the form v1.<key id>.<payload>",
            ));
        };
        if format != FORMAT {
            return Err(not_sealed("its format is not v1"));
        }
        let key = KeyId::new(key).map_err(|_| not_sealed("its key id is malformed"))?;
        let sealed = Self {
            key,
            text: text.to_owned(),
        };
        let len = sealed.payload()?.len();
        if len < NONCE_LEN + TAG_LEN {
            return Err(not_sealed("its payload is too short"));
        }
        Ok(sealed)
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key)
            .finish_non_exhaustive()
    }
}

fn not_sealed(why: &str) -> Error {
    Error::Config(format!(
        "a stored value is not a sealed secret ({why}); enter the credential again"
    ))
}

/// One key of the ring: its id and its cipher (which wipes the key when dropped).
#[derive(Clone)]
struct RingKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

/// The sealing keys, the first one current. Cheap to clone; shared by every worker task.
///
/// `Debug` shows the key ids only.
///
/// ```
/// use receipt_sync::fleet::seal::{Keyring, SealContext};
/// use receipt_sync::source::qonto::QontoAuth;
///
/// # fn main() -> receipt_sync::Result<()> {
/// // In a service: `Keyring::from_env()?`, with RECEIPT_SYNC_SEALING_KEYS set.
/// let new_key = Keyring::generate_key_text();
/// let keys = Keyring::parse(&format!("k1:{}", new_key.expose()))?;
///
/// // Registering an organisation: only the sealed text goes to the database.
/// let context = SealContext::new("org-42", "qonto-secret-key");
/// let column: String = keys.seal(&context, "the-secret-key")?.as_str().to_owned();
///
/// // Syncing it: read the column back, open it in the same context.
/// let secret = keys.open(&context, &column.parse()?)?;
/// let auth = QontoAuth::api_key("org-42-login", secret);
/// # let _ = auth;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<[RingKey]>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring")
            .field("current", &self.current().id.as_str())
            .field("keys", &ids)
            .finish()
    }
}

impl Keyring {
    /// Reads the keys from [`SEALING_KEYS_VAR`]; see [`Keyring::parse`].
    ///
    /// # Errors
    /// [`Error::Config`] when the variable is missing, not Unicode, or does not parse.
    pub fn from_env() -> Result<Self> {
        let value = std::env::var(SEALING_KEYS_VAR).map_err(|_| {
            Error::Config(format!(
                "{SEALING_KEYS_VAR} is not set: give it the sealing keys as \
                 `id:base64-key`, comma-separated, the current one first"
            ))
        })?;
        let value = Zeroizing::new(value);
        Self::parse(&value)
    }

    /// Reads keys written `id:base64-key`, comma-separated, the current one first:
    /// `k2:<44 base64 characters>,k1:<44 base64 characters>`. Each key is 32 random
    /// bytes in standard base64; spaces around entries are ignored.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty list, an entry without `:`, a bad or repeated key
    /// id, or a key that is not base64 of exactly 32 bytes. The message names the entry
    /// by its position and id, never its key.
    pub fn parse(keys: &str) -> Result<Self> {
        let mut ring: Vec<RingKey> = Vec::new();
        for (n, entry) in keys.split(',').map(str::trim).enumerate() {
            let position = n + 1;
            if entry.is_empty() {
                return Err(Error::Config(format!(
                    "sealing key entry {position} is empty; write `id:base64-key`, comma-separated"
                )));
            }
            let Some((id, key)) = entry.split_once(':') else {
                return Err(Error::Config(format!(
                    "sealing key entry {position} has no `:`; write `id:base64-key`"
                )));
            };
            let id = KeyId::new(id.trim()).map_err(|_| {
                Error::Config(format!(
                    "sealing key entry {position} has a bad id: use 1 to {MAX_KEY_ID_LEN} \
                     ASCII letters, digits, '-' or '_'"
                ))
            })?;
            if ring.iter().any(|k| k.id == id) {
                return Err(Error::Config(format!(
                    "sealing key id `{id}` is given twice; each key needs its own id"
                )));
            }
            let bytes = Zeroizing::new(STANDARD.decode(key.trim()).map_err(|_| {
                Error::Config(format!(
                    "sealing key `{id}` (entry {position}) is not standard base64"
                ))
            })?);
            if bytes.len() != KEY_LEN {
                return Err(Error::Config(format!(
                    "sealing key `{id}` (entry {position}) is {} bytes long; it must be \
                     {KEY_LEN} random bytes",
                    bytes.len()
                )));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| Error::Config(format!("sealing key `{id}` cannot be used")))?;
            ring.push(RingKey { id, cipher });
        }
        Ok(Self { keys: ring.into() })
    }

    /// A new random key, as the base64 text [`Keyring::parse`] reads (prefix it with
    /// its id). For the operator who adds a key.
    pub fn generate_key_text() -> SecretString {
        let mut key = chacha20poly1305::Key::generate();
        let text = STANDARD.encode(key.as_slice());
        key.as_mut_slice().zeroize();
        SecretString::new(text)
    }

    fn current(&self) -> &RingKey {
        // `parse` never builds an empty ring: an empty string is one empty entry.
        &self.keys[0]
    }

    /// The id of the key that seals.
    pub fn current_key_id(&self) -> &KeyId {
        &self.current().id
    }

    /// Every key id, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|k| &k.id)
    }

    /// Seals `secret` for `context` with the current key.
    ///
    /// # Errors
    /// [`Error::Config`] if the cipher refuses the input (a secret over 256 GiB).
    pub fn seal(&self, context: &SealContext, secret: &str) -> Result<SealedSecret> {
        self.seal_bytes(context, secret.as_bytes())
    }

    fn seal_bytes(&self, context: &SealContext, secret: &[u8]) -> Result<SealedSecret> {
        let key = self.current();
        let nonce = XNonce::generate();
        let aad = context.associated_data(&key.id);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Config("a secret could not be sealed".to_owned()))?;
        let mut payload = Vec::with_capacity(NONCE_LEN + sealed.len());
        payload.extend_from_slice(nonce.as_slice());
        payload.extend_from_slice(&sealed);
        Ok(SealedSecret {
            key: key.id.clone(),
            text: format!("{FORMAT}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(&payload)),
        })
    }

    /// Opens `sealed`, which must have been sealed for `context` by a key of this ring.
    ///
    /// # Errors
    /// [`Error::Config`] when the ring lacks the value's key (add it back to the
    /// environment), or when the value does not open with it: it was altered, sealed for
    /// another context, or the key under that id changed (enter the credential again).
    pub fn open(&self, context: &SealContext, sealed: &SealedSecret) -> Result<SecretString> {
        let mut plain = self.open_bytes(context, sealed)?;
        match String::from_utf8(std::mem::take(&mut *plain)) {
            Ok(text) => Ok(SecretString::new(text)),
            Err(not_text) => {
                not_text.into_bytes().zeroize();
                Err(not_sealed("its plaintext is not text"))
            }
        }
    }

    /// The plaintext bytes, wiped when dropped.
    fn open_bytes(
        &self,
        context: &SealContext,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let Some(key) = self.keys.iter().find(|k| k.id == sealed.key) else {
            return Err(Error::Config(format!(
                "the {} secret of organisation `{}` is sealed with key `{}`, which \
                 {SEALING_KEYS_VAR} does not hold: add that key back",
                context.purpose, context.organisation, sealed.key
            )));
        };
        let payload = sealed.payload()?;
        if payload.len() < NONCE_LEN + TAG_LEN {
            return Err(not_sealed("its payload is too short"));
        }
        let (nonce, ciphertext) = payload.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| not_sealed("its nonce is malformed"))?;
        let aad = context.associated_data(&key.id);
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Config(format!(
                    "the {} secret of organisation `{}` does not open with key `{}`: it was \
                     altered or sealed for another organisation or purpose; enter the \
                     credential again",
                    context.purpose, context.organisation, key.id
                ))
            })
    }

    /// Whether `sealed` was sealed with another key than the current one.
    pub fn needs_reseal(&self, sealed: &SealedSecret) -> bool {
        sealed.key != self.current().id
    }

    /// Opens `sealed` and seals it again with the current key (with a fresh nonce):
    /// the step of a key rotation that moves a stored value to the new key.
    ///
    /// # Errors
    /// Those of [`Keyring::open`] and [`Keyring::seal`].
    pub fn reseal(&self, context: &SealContext, sealed: &SealedSecret) -> Result<SealedSecret> {
        let plain = self.open_bytes(context, sealed)?;
        self.seal_bytes(context, &plain)
    }
}
