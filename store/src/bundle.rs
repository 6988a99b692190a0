//! `store export` and `store import`: every connection with its secrets, as one file encrypted with age to one
//! recipient, another host's identity. Nothing in the file is readable without that identity, names included.
//!
//! Inside the encryption, the plaintext is a header line of JSON,
//! `{"format":"wasm-host-bundle","version":1,"exported_at":"...","connections":N}`, then the body,
//! `{"connections":[{"connection":{...the record list shows...},"secrets":{"client_secret":"...",...}}]}`.
//! The header is read on its own first, so a bundle of a later version is refused by its number.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::backend::{ImportOutcome, SealedConnection};
use crate::store::Store;
use crate::error::{ReadError, WriteError};
use crate::keys::{Keys, SecretError, SecretField};
use crate::record::{now_unix, rfc3339, Connection, CONNECTION_TYPES};

pub const BUNDLE_FORMAT: &str = "wasm-host-bundle";
/// The layout this build writes and the newest it reads.
pub const BUNDLE_VERSION: u64 = 1;
/// A bundle's plaintext is read whole (into memory that is wiped afterwards); this bounds it.
const MAX_PLAINTEXT: usize = 256 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum BundleError {
    #[error(
        "`{0}` is not an age X25519 public key (age1...); run `wasm-host store recipient` on the host that will \
         import the bundle and pass what it prints"
    )]
    BadRecipient(String),
    #[error("this is not a wasm-host bundle ({0}); pass the file `wasm-host store export` wrote")]
    NotABundle(String),
    #[error(
        "the bundle is not encrypted to this host's identity ({recipient}); ask whoever exported it to run \
         `wasm-host store export --recipient {recipient}` and send the new file"
    )]
    NotForThisIdentity { recipient: String },
    #[error("the bundle is damaged or truncated ({0}); export it again")]
    Damaged(String),
    #[error("the bundle has format version {found}, and this wasm-host reads up to {supported}; upgrade wasm-host")]
    NewerVersion { found: u64, supported: u64 },
    #[error(
        "the store already has {}; nothing was imported: pass --replace to overwrite them with the bundle's, or \
         delete them first (`wasm-host authconnection delete NAME`)",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    )]
    Conflict { names: Vec<String> },
    #[error("cannot write the bundle: {0}")]
    Output(io::Error),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u64,
    exported_at: String,
    connections: usize,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    connections: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    connection: &'a Connection,
    secrets: BTreeMap<&'static str, Exposed<'a>>,
}

/// Serializes a secret's text: used only for the plaintext that goes straight into the age encryptor.
struct Exposed<'a>(&'a SecretString);

impl Serialize for Exposed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

#[derive(Deserialize)]
struct BodyIn {
    connections: Vec<EntryIn>,
}

#[derive(Deserialize)]
struct EntryIn {
    connection: Connection,
    secrets: BTreeMap<String, SecretString>,
}

/// One connection read from a bundle, its secrets opened.
pub struct BundleConnection {
    pub connection: Connection,
    pub secrets: Vec<(SecretField, SecretString)>,
}

impl std::fmt::Debug for BundleConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields: Vec<&str> = self.secrets.iter().map(|(f, _)| f.as_str()).collect();
        f.debug_struct("BundleConnection")
            .field("connection", &self.connection)
            .field("secrets", &fields)
            .finish()
    }
}

/// A decrypted bundle.
#[derive(Debug)]
pub struct Bundle {
    pub exported_at: String,
    pub connections: Vec<BundleConnection>,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: Vec<String>,
    /// The subset that replaced connections of the same name (only with `replace`).
    pub replaced: Vec<String>,
}

pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient, BundleError> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|_| BundleError::BadRecipient(crate::printable(text)))
}

/// Writes every connection of `store` with its secrets (opened with `keys`) to `out`, encrypted to `recipient`
/// only. Reads one consistent snapshot. Returns how many connections were written.
pub fn export(store: &Store, keys: &Keys, recipient: &str, out: impl Write) -> Result<usize, BundleError> {
    let recipient = parse_recipient(recipient)?;
    let mut opened = Vec::new();
    for (connection, sealed) in store.sealed_connections(keys)? {
        let mut secrets = Vec::with_capacity(sealed.len());
        for (field, value) in &sealed {
            secrets.push((field.as_str(), keys.open_string(&connection.name, *field, value)?));
        }
        opened.push((connection, secrets));
    }
    let body = BodyOut {
        connections: opened
            .iter()
            .map(|(connection, secrets)| EntryOut {
                connection,
                secrets: secrets.iter().map(|(f, s)| (*f, Exposed(s))).collect(),
            })
            .collect(),
    };
    let header = Header {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        exported_at: rfc3339(now_unix()),
        connections: opened.len(),
    };
    let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .map_err(|e| BundleError::BadRecipient(e.to_string()))?;
    let mut writer = encryptor.wrap_output(out).map_err(BundleError::Output)?;
    let json = |e: serde_json::Error| BundleError::Output(io::Error::other(e));
    serde_json::to_writer(&mut writer, &header).map_err(json)?;
    writer.write_all(b"\n").map_err(BundleError::Output)?;
    serde_json::to_writer(&mut writer, &body).map_err(json)?;
    writer.finish().map_err(BundleError::Output)?.flush().map_err(BundleError::Output)?;
    Ok(opened.len())
}

/// Decrypts a bundle with this host's identity and checks what it holds.
pub fn read_bundle(keys: &Keys, input: impl Read) -> Result<Bundle, BundleError> {
    let decryptor = age::Decryptor::new_buffered(io::BufReader::new(input))
        .map_err(|e| BundleError::NotABundle(format!("not an age-encrypted file: {e}")))?;
    let reader = decryptor
        .decrypt(std::iter::once(keys.age_identity() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => BundleError::NotForThisIdentity { recipient: keys.recipient() },
            other => BundleError::Damaged(other.to_string()),
        })?;
    let plain = read_wiped(reader, MAX_PLAINTEXT).map_err(|e| BundleError::Damaged(e.to_string()))?;
    let newline = plain.iter().position(|b| *b == b'\n').ok_or_else(|| BundleError::NotABundle("no header".into()))?;
    let header: Header = serde_json::from_slice(&plain[..newline])
        .map_err(|e| BundleError::NotABundle(format!("unreadable header: {e}")))?;
    if header.format != BUNDLE_FORMAT {
        return Err(BundleError::NotABundle(format!("its format is `{}`", crate::printable(&header.format))));
    }
    if header.version > BUNDLE_VERSION {
        return Err(BundleError::NewerVersion { found: header.version, supported: BUNDLE_VERSION });
    }
    // serde_json's messages name a position and an expected type, never the text of a value.
    let body: BodyIn = serde_json::from_slice(&plain[newline + 1..]).map_err(|e| BundleError::Damaged(e.to_string()))?;
    if body.connections.len() != header.connections {
        return Err(BundleError::Damaged(format!(
            "the header counts {} connections, the body holds {}",
            header.connections,
            body.connections.len()
        )));
    }
    let mut names = BTreeSet::new();
    let mut connections = Vec::with_capacity(body.connections.len());
    for entry in body.connections {
        let conn = entry.connection;
        crate::validate_name(&conn.name).map_err(|e| BundleError::Damaged(e.to_string()))?;
        if !names.insert(conn.name.clone()) {
            return Err(BundleError::Damaged(format!("connection `{}` appears twice", conn.name)));
        }
        if !CONNECTION_TYPES.contains(&conn.kind.as_str()) {
            return Err(BundleError::Damaged(format!(
                "connection `{}` has the unknown type `{}`",
                conn.name,
                crate::printable(&conn.kind)
            )));
        }
        let mut secrets = Vec::with_capacity(entry.secrets.len());
        for (field, value) in entry.secrets {
            let field = SecretField::parse(&field).ok_or_else(|| {
                BundleError::Damaged(format!("connection `{}` has an unknown secret `{}`", conn.name, crate::printable(&field)))
            })?;
            secrets.push((field, value));
        }
        if !secrets.iter().any(|(f, _)| *f == SecretField::ClientSecret) {
            return Err(BundleError::Damaged(format!("connection `{}` has no client secret", conn.name)));
        }
        connections.push(BundleConnection { connection: conn, secrets });
    }
    Ok(Bundle { exported_at: header.exported_at, connections })
}

/// Seals a bundle's secrets with `keys` and writes its connections into `store` in one transaction (see
/// [`Backend::import_sealed`](crate::Backend::import_sealed)): a name that exists already refuses the whole import unless `replace`.
pub fn import(store: &Store, keys: &Keys, bundle: Bundle, replace: bool) -> Result<ImportReport, BundleError> {
    let mut entries: Vec<SealedConnection> = Vec::with_capacity(bundle.connections.len());
    for BundleConnection { connection, secrets } in bundle.connections {
        let mut sealed = Vec::with_capacity(secrets.len());
        for (field, value) in &secrets {
            sealed.push((*field, keys.seal(&connection.name, *field, value.expose_secret().as_bytes())?));
        }
        entries.push((connection, sealed));
    }
    let imported = entries.iter().map(|(c, _)| c.name.clone()).collect();
    match store.import_sealed(entries, keys, replace)? {
        ImportOutcome::Imported { replaced } => Ok(ImportReport { imported, replaced }),
        ImportOutcome::Conflicts(names) => Err(BundleError::Conflict { names }),
    }
}

/// Reads everything into one buffer that is wiped when dropped, growing it by hand so that no copy of the
/// plaintext is left behind in memory a reallocation gave back.
fn read_wiped(mut reader: impl Read, limit: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(64 * 1024));
    loop {
        let len = buf.len();
        if len == buf.capacity() {
            if len >= limit {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes")));
            }
            let mut bigger = Zeroizing::new(Vec::with_capacity((len * 2).min(limit)));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let cap = buf.capacity();
        buf.resize(cap, 0);
        match reader.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_truncated_and_newer_bundles_are_refused() {
        let keys = Keys::generate();
        assert!(matches!(read_bundle(&keys, &b"hello"[..]), Err(BundleError::NotABundle(_))));
        let seal = |plain: &[u8]| age::encrypt(&keys.age_identity().to_public(), plain).unwrap();
        let newer = seal(br#"{"format":"wasm-host-bundle","version":2,"exported_at":"x","connections":0}
{"connections":[],"more":1}"#);
        assert!(matches!(read_bundle(&keys, newer.as_slice()), Err(BundleError::NewerVersion { found: 2, .. })));
        let other = seal(b"{\"format\":\"other\",\"version\":1,\"exported_at\":\"x\",\"connections\":0}\n{}");
        assert!(matches!(read_bundle(&keys, other.as_slice()), Err(BundleError::NotABundle(_))));
        let good = seal(b"{\"format\":\"wasm-host-bundle\",\"version\":1,\"exported_at\":\"x\",\"connections\":0}\n{\"connections\":[]}");
        assert!(read_bundle(&keys, good.as_slice()).unwrap().connections.is_empty());
        let truncated = &good[..good.len() - 5];
        assert!(matches!(read_bundle(&keys, truncated), Err(BundleError::Damaged(_))));
        assert!(matches!(parse_recipient("age1nope"), Err(BundleError::BadRecipient(_))));
    }

    #[test]
    fn read_wiped_reads_across_growth() {
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        assert_eq!(read_wiped(data.as_slice(), MAX_PLAINTEXT).unwrap().as_slice(), data.as_slice());
        assert!(read_wiped(data.as_slice(), 100_000).is_err());
    }
}
