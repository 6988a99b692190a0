//! The age identity that every stored secret is sealed to, and the sealing itself.
//!
//! age does not bind a ciphertext to where it is stored, so the plaintext carries the connection name and the
//! field it belongs to; opening checks both, and a ciphertext copied onto another row fails loudly.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::x25519;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use thiserror::Error;
use zeroize::Zeroizing;

/// The secret fields a connection can hold. Each is a separate row, decrypted only when needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretField {
    ClientSecret,
    AccessToken,
    RefreshToken,
    IdToken,
    /// The token response's other credential fields (Slack's `authed_user.access_token`, a `*_secret`), as one
    /// JSON object of dotted field name to value: kept sealed, never as metadata.
    Credentials,
}

impl SecretField {
    pub const ALL: [SecretField; 5] =
        [Self::ClientSecret, Self::AccessToken, Self::RefreshToken, Self::IdToken, Self::Credentials];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
            Self::IdToken => "id_token",
            Self::Credentials => "credentials",
        }
    }

    /// The field a stored row or bundle entry names; `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// Tells what the binding prefix is for, and lets a later format change be recognised.
const SEAL_MAGIC: &str = "wasm-host-secret/1";

#[derive(Debug, Error)]
pub enum IdentityError {
    #[error(
        "cannot read the identity file {path}: {source}; check the path given with --identity or WASM_HOST_IDENTITY"
    )]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the identity file {path} can be read by other users (mode {mode:o}): run `chmod 600 {path}` and try again"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "the identity file {path} holds no age X25519 secret key (a line starting with AGE-SECRET-KEY-1); \
         point --identity at the file wasm-host created, or generate one with `age-keygen -o FILE`"
    )]
    Malformed { path: PathBuf },
    #[error(
        "WASM_HOST_IDENTITY_KEY is not an age X25519 secret key: it must be one line starting with AGE-SECRET-KEY-1"
    )]
    MalformedInline,
    #[error("cannot create the identity file {path}: {source}; check that its directory is writable")]
    Create { path: PathBuf, source: io::Error },
    /// Not a `source`: the message carries the problem, so it is printed once.
    #[error("cannot use the identity file {path}: {problem}")]
    UnsafeDirectory { path: PathBuf, problem: crate::DirError },
}

/// Why a stored secret could not be opened. None of these carries secret bytes.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error(
        "the {field} of connection `{name}` cannot be decrypted with this identity ({reason}); \
         use the store's identity: the one it was created with or last rekeyed to (--identity or WASM_HOST_IDENTITY)"
    )]
    Decrypt { name: String, field: &'static str, reason: String },
    #[error(
        "the stored {field} of connection `{name}` belongs to another record: the store file has been tampered with \
         or damaged; re-create the connection (`wasm-host authconnection delete {name}`, then `create`)"
    )]
    Misplaced { name: String, field: &'static str },
    #[error("cannot encrypt the {field} of connection `{name}`: {reason}")]
    Encrypt { name: String, field: &'static str, reason: String },
}

/// An age X25519 identity and its public recipient: seals secrets to the recipient, opens them with the identity.
pub struct Keys {
    identity: x25519::Identity,
    recipient: x25519::Recipient,
    /// The same key, for opening: keeps the public key instead of deriving it at every decrypt.
    opener: crate::x25519_unwrap::CachedX25519,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("recipient", &self.recipient.to_string()).finish_non_exhaustive()
    }
}

impl Keys {
    pub fn generate() -> Self {
        Self::from_identity(x25519::Identity::generate())
    }

    fn from_identity(identity: x25519::Identity) -> Self {
        let opener = crate::x25519_unwrap::CachedX25519::from_bech32(identity.to_string().expose_secret())
            .expect("age prints an X25519 identity as AGE-SECRET-KEY-1 bech32");
        // The public key is derived once, by the opener (a scalar multiplication: not twice at every start).
        let recipient = opener.recipient();
        Keys { identity, recipient, opener }
    }

    /// Parses an identity given inline (the `WASM_HOST_IDENTITY_KEY` form): one `AGE-SECRET-KEY-1...` line.
    pub fn from_inline(key: &SecretString) -> Result<Self, IdentityError> {
        parse_identity(key.expose_secret()).map(Self::from_identity).ok_or(IdentityError::MalformedInline)
    }

    /// Reads an identity file. `Ok(None)` when it does not exist, so the caller can decide whether a new one is
    /// right (a fresh store) or a mistake (a store that already holds secrets for another key).
    pub fn load(path: &Path) -> Result<Option<Self>, IdentityError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IdentityError::Read { path: path.into(), source }),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(IdentityError::TooOpen { path: path.into(), mode });
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        crate::check_private_dir(dir).map_err(|problem| IdentityError::UnsafeDirectory { path: path.into(), problem })?;
        let text = Zeroizing::new(
            fs::read_to_string(path).map_err(|source| IdentityError::Read { path: path.into(), source })?,
        );
        parse_identity(&text)
            .map(|id| Some(Self::from_identity(id)))
            .ok_or_else(|| IdentityError::Malformed { path: path.into() })
    }

    /// Creates a new identity file, 0600 in a 0700 directory. If another process created it first, that one is
    /// loaded instead, so two first runs at once agree on one key.
    pub fn create(path: &Path) -> Result<Self, IdentityError> {
        let create_err = |source| IdentityError::Create { path: path.into(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(create_err)?;
        }
        crate::check_private_dir(path.parent().unwrap_or(Path::new("")))
            .map_err(|problem| IdentityError::UnsafeDirectory { path: path.into(), problem })?;
        let keys = Self::generate();
        // Placed whole (crate::place); if another first run placed its key first, that one is loaded instead.
        match crate::place::create_whole(path, "tmp", |tmp| keys.write_new_file(tmp, "").map_err(create_err), create_err)? {
            crate::place::Placed::Ours => Ok(keys),
            crate::place::Placed::Theirs => {
                Self::load(path)?.ok_or_else(|| IdentityError::Malformed { path: path.into() })
            }
        }
    }

    /// Writes this identity to a file that must not exist yet: 0600, with `comment` lines after the public key,
    /// flushed to the disk before returning (the caller fsyncs the directory if the name must survive a crash).
    pub(crate) fn write_new_file(&self, path: &Path, comment: &str) -> io::Result<()> {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = Zeroizing::new(format!(
            "# created: {now}\n# public key: {}\n{comment}{}\n",
            self.recipient,
            self.identity.to_string().expose_secret()
        ));
        file.write_all(body.as_bytes())?;
        file.sync_all()
    }

    /// The age identity itself, for opening a bundle addressed to this host.
    pub(crate) fn age_identity(&self) -> &x25519::Identity {
        &self.identity
    }

    /// The public key secrets are sealed to, `age1...`; safe to show and to store.
    pub fn recipient(&self) -> String {
        self.recipient.to_string()
    }

    /// The HMAC-SHA256 tag of a connection as stored (see record_auth.rs).
    pub(crate) fn record_tag(&self, view: &crate::record_auth::RecordView<'_>) -> [u8; crate::record_auth::TAG_BYTES] {
        crate::record_auth::tag(self.opener.record_key(), view)
    }

    /// Whether `stored` is the tag of `view` under this identity (constant-time).
    pub(crate) fn record_tag_matches(&self, view: &crate::record_auth::RecordView<'_>, stored: &[u8]) -> bool {
        crate::record_auth::verify(self.opener.record_key(), view, stored)
    }

    /// The tag of an admin token's stored record under this identity.
    pub(crate) fn admin_token_tag(&self, record: &[u8]) -> [u8; crate::record_auth::TAG_BYTES] {
        crate::record_auth::admin_token_tag(self.opener.record_key(), record)
    }

    /// Whether `stored` is the tag of an admin token's `record` under this identity (constant-time).
    pub(crate) fn admin_token_tag_matches(&self, record: &[u8], stored: &[u8]) -> bool {
        crate::record_auth::admin_token_verify(self.opener.record_key(), record, stored)
    }

    /// The tag of a pending authorization's row (its key, record and sealed value) under this identity.
    pub(crate) fn authorization_request_tag(&self, key: &str, record: &[u8], sealed: &[u8]) -> [u8; crate::record_auth::TAG_BYTES] {
        crate::record_auth::authorization_request_tag(self.opener.record_key(), key, record, sealed)
    }

    /// Whether `stored` is the tag of a pending authorization's row under this identity (constant-time).
    pub(crate) fn authorization_request_tag_matches(&self, key: &str, record: &[u8], sealed: &[u8], stored: &[u8]) -> bool {
        crate::record_auth::authorization_request_verify(self.opener.record_key(), key, record, sealed, stored)
    }

    /// Encrypts `value` for the `field` of connection `name`, binding both into the plaintext.
    pub fn seal(&self, name: &str, field: SecretField, value: &[u8]) -> Result<Vec<u8>, SecretError> {
        self.seal_labeled(name, field.as_str(), value)
    }

    /// [`Keys::seal`] for a value that is not a connection's field (a pending authorization's nonce and verifier):
    /// bound to `name` and `field` the same way.
    pub(crate) fn seal_labeled(&self, name: &str, field: &'static str, value: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(SEAL_MAGIC.len() + name.len() + 24 + value.len()));
        plain.extend_from_slice(SEAL_MAGIC.as_bytes());
        plain.push(b'\n');
        plain.extend_from_slice(name.as_bytes());
        plain.push(b'\n');
        plain.extend_from_slice(field.as_bytes());
        plain.push(b'\n');
        plain.extend_from_slice(value);
        let encrypt_err = |e: &dyn std::fmt::Display| SecretError::Encrypt {
            name: name.into(),
            field,
            reason: crate::validate::one_line(&e.to_string(), 300),
        };
        // The local stanza first (what this host opens, without a scalar multiplication), then the standard X25519
        // one (what `age -d -i identity.txt` opens); see x25519_unwrap.rs.
        let local = self.opener.local_recipient();
        let recipients: [&dyn age::Recipient; 2] = [&local, &self.recipient];
        let encryptor = age::Encryptor::with_recipients(recipients.into_iter()).map_err(|e| encrypt_err(&e))?;
        let mut sealed = Vec::with_capacity(plain.len() + 320);
        let mut writer = encryptor.wrap_output(&mut sealed).map_err(|e| encrypt_err(&e))?;
        writer.write_all(&plain).map_err(|e| encrypt_err(&e))?;
        writer.finish().map_err(|e| encrypt_err(&e))?;
        Ok(sealed)
    }

    /// Decrypts a sealed value and checks that it was sealed for this connection and field.
    pub fn open(&self, name: &str, field: SecretField, sealed: &[u8]) -> Result<SecretBox<[u8]>, SecretError> {
        self.open_labeled(name, field.as_str(), sealed)
    }

    /// [`Keys::open`] for a value sealed with [`Keys::seal_labeled`].
    pub(crate) fn open_labeled(&self, name: &str, field: &'static str, sealed: &[u8]) -> Result<SecretBox<[u8]>, SecretError> {
        let plain = Zeroizing::new(age::decrypt(&self.opener, sealed).map_err(|e| SecretError::Decrypt {
            name: name.into(),
            field,
            reason: crate::validate::one_line(&e, 300),
        })?);
        let misplaced = || SecretError::Misplaced { name: name.into(), field };
        let mut parts = plain.splitn(4, |b| *b == b'\n');
        let (magic, stored_name, stored_field, value) =
            (parts.next(), parts.next(), parts.next(), parts.next());
        if magic != Some(SEAL_MAGIC.as_bytes())
            || stored_name != Some(name.as_bytes())
            || stored_field != Some(field.as_bytes())
        {
            return Err(misplaced());
        }
        Ok(SecretBox::new(value.unwrap_or_default().into()))
    }

    /// Like [`Keys::open`], for values that are text (tokens, client secrets).
    pub fn open_string(&self, name: &str, field: SecretField, sealed: &[u8]) -> Result<SecretString, SecretError> {
        let bytes = self.open(name, field, sealed)?;
        let text = std::str::from_utf8(bytes.expose_secret())
            .map_err(|_| SecretError::Misplaced { name: name.into(), field: field.as_str() })?;
        Ok(SecretString::from(text))
    }
}

fn parse_identity(text: &str) -> Option<x25519::Identity> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .and_then(|l| x25519::Identity::from_str(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip() {
        let keys = Keys::generate();
        let sealed = keys.seal("a", SecretField::AccessToken, b"tok").unwrap();
        assert!(!sealed.windows(3).any(|w| w == b"tok"));
        let opened = keys.open_string("a", SecretField::AccessToken, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "tok");
    }

    #[test]
    fn a_value_moved_to_another_row_is_refused() {
        let keys = Keys::generate();
        let sealed = keys.seal("a", SecretField::AccessToken, b"tok").unwrap();
        assert!(matches!(
            keys.open("b", SecretField::AccessToken, &sealed),
            Err(SecretError::Misplaced { .. })
        ));
        assert!(matches!(
            keys.open("a", SecretField::RefreshToken, &sealed),
            Err(SecretError::Misplaced { .. })
        ));
    }

    #[test]
    fn another_identity_cannot_open() {
        let sealed = Keys::generate().seal("a", SecretField::ClientSecret, b"s").unwrap();
        let err = Keys::generate().open("a", SecretField::ClientSecret, &sealed).unwrap_err();
        assert!(matches!(err, SecretError::Decrypt { .. }), "{err}");
    }

    /// Found by the `record` fuzz target: age's "Unknown age format" text spans two lines, and reached the
    /// one-line error message as it was.
    #[test]
    fn a_damaged_secret_is_described_on_one_line() {
        let damaged = b"age-encryption.org/v2\n-> X25519 abc\n";
        let e = Keys::generate().open("a", SecretField::AccessToken, damaged).unwrap_err();
        assert!(matches!(e, SecretError::Decrypt { .. }), "{e:?}");
        let e = e.to_string();
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert!(e.contains("Unknown age format. Have you tried"), "{e}");
    }

    #[test]
    fn identity_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/identity.txt");
        let keys = Keys::create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let again = Keys::load(&path).unwrap().unwrap();
        assert_eq!(again.recipient(), keys.recipient());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Keys::load(&path), Err(IdentityError::TooOpen { .. })));
    }

    /// Several first runs at once (and a first run killed half-way) must never leave, or read, a half-written
    /// identity file: whoever loses the race loads the winner's whole key.
    #[test]
    fn first_runs_at_once_agree_on_one_whole_identity() {
        for _ in 0..30 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cfg/identity.txt");
            let recipients: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6).map(|_| s.spawn(|| Keys::create(&path).map(|k| k.recipient()))).collect();
                handles.into_iter().map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e}"))).collect()
            });
            assert!(recipients.iter().all(|r| *r == recipients[0]), "{recipients:?}");
            assert_eq!(Keys::load(&path).unwrap().unwrap().recipient(), recipients[0]);
        }
    }
}
