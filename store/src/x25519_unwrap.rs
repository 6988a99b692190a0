//! Opening sealed secrets without a scalar multiplication per secret.
//!
//! Every stored secret is an age file with two recipient stanzas for the host's own identity:
//!
//! - the standard `X25519` stanza, so `age -d -i identity.txt` opens a stored value as it always did (and a
//!   store written before the second stanza existed still opens);
//! - a `wasm-host-local` stanza: the file key sealed with ChaCha20-Poly1305 under
//!   HKDF-SHA256(salt = 16 random bytes in the stanza, ikm = a key derived from the identity's secret key), the
//!   same construction as age's X25519 stanza minus the Diffie-Hellman. age skips stanzas it does not know.
//!
//! Opening prefers the local stanza: no X25519 scalar multiplication, which was 61 % of a cold
//! `get-connection-token` (BENCHMARKS.md). The X25519 stanza is opened exactly as age does
//! (https://c2sp.org/age#x25519-recipient-stanza, age 0.12's `native/x25519.rs`) but with the public key computed
//! once per process (age derives it at every decrypt for the HKDF salt).

use age::DecryptError;
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{aead_decrypt, hkdf};
use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

const TAG: &str = "X25519";
const KEY_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
const LOCAL_TAG: &str = "wasm-host-local";
/// Derives the local wrapping key from the identity's secret key (domain-separated from everything age derives).
const LOCAL_KEY_LABEL: &[u8] = b"wasm-host/local-wrap-key/1";
/// Derives one stanza's key from the local wrapping key and the stanza's salt.
const LOCAL_STANZA_LABEL: &[u8] = b"wasm-host/local-stanza/1";
/// Derives the key that tags connection records (record_auth.rs) from the identity's secret key.
const RECORD_KEY_LABEL: &[u8] = b"wasm-host/record-tag-key/1";

const LOCAL_SALT_BYTES: usize = 16;
const EPK_BYTES: usize = 32;
const ENCRYPTED_FILE_KEY_BYTES: usize = FILE_KEY_BYTES + 16;

pub(crate) struct CachedX25519 {
    secret: StaticSecret,
    public: PublicKey,
    /// Wraps and unwraps `wasm-host-local` stanzas; derived from `secret`, so it changes with the identity.
    local: zeroize::Zeroizing<[u8; 32]>,
    /// Tags connection records; derived from `secret` like `local`.
    record: zeroize::Zeroizing<[u8; 32]>,
}

impl CachedX25519 {
    /// From an `AGE-SECRET-KEY-1...` string (as age's identity prints itself).
    pub(crate) fn from_bech32(encoded: &str) -> Option<Self> {
        let (hrp, mut bytes) = bech32::decode(encoded).ok()?;
        if !hrp.as_str().eq_ignore_ascii_case("age-secret-key-") || bytes.len() != 32 {
            bytes.zeroize();
            return None;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        bytes.zeroize();
        let local = zeroize::Zeroizing::new(hkdf(b"", LOCAL_KEY_LABEL, &key));
        let record = zeroize::Zeroizing::new(hkdf(b"", RECORD_KEY_LABEL, &key));
        let secret = StaticSecret::from(key);
        key.zeroize();
        let public = PublicKey::from(&secret);
        Some(Self { secret, public, local, record })
    }

    /// The key that tags connection records (record_auth.rs).
    pub(crate) fn record_key(&self) -> &[u8; 32] {
        &self.record
    }

    /// The recipient that writes the `wasm-host-local` stanza for this identity.
    pub(crate) fn local_recipient(&self) -> LocalRecipient<'_> {
        LocalRecipient(self)
    }

    fn unwrap_local(&self, stanza: &Stanza) -> Result<FileKey, DecryptError> {
        let salt: [u8; LOCAL_SALT_BYTES] = stanza_parts(stanza)?;
        let mut key = hkdf(&salt, LOCAL_STANZA_LABEL, &self.local[..]);
        let opened = aead_decrypt(&key, FILE_KEY_BYTES, &stanza.body);
        key.zeroize();
        // Sealed by another identity's local key: not ours; the caller goes on to the other stanzas.
        opened.map(into_file_key).map_err(|_| DecryptError::NoMatchingKeys)
    }
}

/// Writes a `wasm-host-local` stanza (see the module documentation).
pub(crate) struct LocalRecipient<'a>(&'a CachedX25519);

impl age::Recipient for LocalRecipient<'_> {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, std::collections::HashSet<String>), age::EncryptError> {
        let mut salt = [0u8; LOCAL_SALT_BYTES];
        getrandom::getrandom(&mut salt)
            .map_err(|e| age::EncryptError::Io(std::io::Error::other(format!("no randomness for a salt: {e}"))))?;
        let mut key = hkdf(&salt, LOCAL_STANZA_LABEL, &self.0.local[..]);
        let body = age_core::primitives::aead_encrypt(&key, file_key.expose_secret());
        key.zeroize();
        let stanza = Stanza { tag: LOCAL_TAG.to_owned(), args: vec![BASE64_STANDARD_NO_PAD.encode(salt)], body };
        // No labels: like age's X25519 recipient, so the two can share a file.
        Ok((vec![stanza], std::collections::HashSet::new()))
    }
}

impl CachedX25519 {

    /// The public key as age writes a recipient (`age1...`), from the key already computed.
    pub(crate) fn recipient(&self) -> age::x25519::Recipient {
        let hrp = bech32::Hrp::parse("age").expect("a valid human-readable part");
        let encoded = bech32::encode::<bech32::Bech32>(hrp, self.public.as_bytes()).expect("32 bytes encode");
        encoded.parse().expect("age parses the recipient of an X25519 key")
    }
}

impl age::Identity for CachedX25519 {
    /// The local stanza first, wherever it is in the header: it costs no scalar multiplication.
    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, DecryptError>> {
        for stanza in stanzas.iter().filter(|s| s.tag == LOCAL_TAG) {
            match self.unwrap_local(stanza) {
                Ok(key) => return Some(Ok(key)),
                Err(DecryptError::NoMatchingKeys) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
        stanzas.iter().find_map(|stanza| self.unwrap_stanza(stanza))
    }

    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.tag != TAG {
            return None;
        }
        let ephemeral: [u8; EPK_BYTES] = match stanza_parts(stanza) {
            Ok(epk) => epk,
            Err(e) => return Some(Err(e)),
        };
        let epk = PublicKey::from(ephemeral);
        let shared = self.secret.diffie_hellman(&epk);
        // An all-zero shared secret means a low-order ephemeral key: refused, as age does.
        if shared.as_bytes().iter().fold(0, |acc, b| acc | b).ct_eq(&0).into() {
            return Some(Err(DecryptError::InvalidHeader));
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(epk.as_bytes());
        salt[32..].copy_from_slice(self.public.as_bytes());
        let mut key = hkdf(&salt, KEY_LABEL, shared.as_bytes());
        let opened = aead_decrypt(&key, FILE_KEY_BYTES, &stanza.body);
        key.zeroize();
        // Not ours (another recipient's stanza): not an error, age tries the next stanza.
        opened.ok().map(|plain| Ok(into_file_key(plain)))
    }
}

/// A stanza's one argument, canonical unpadded base64 of exactly `N` bytes (N ≤ 32), after checking that its body
/// is a wrapped file key: the shape age requires of its X25519 stanza, and we of ours.
fn stanza_parts<const N: usize>(stanza: &Stanza) -> Result<[u8; N], DecryptError> {
    let [arg] = &stanza.args[..] else { return Err(DecryptError::InvalidHeader) };
    if stanza.body.len() != ENCRYPTED_FILE_KEY_BYTES {
        return Err(DecryptError::InvalidHeader);
    }
    // Room for more than N bytes, so that a longer argument decodes to a length we refuse.
    let mut buf = [0u8; 48];
    match BASE64_STANDARD_NO_PAD.decode_slice(arg, &mut buf) {
        Ok(n) if n == N => Ok(buf[..N].try_into().expect("length checked")),
        _ => Err(DecryptError::InvalidHeader),
    }
}

/// An unwrapped file key, its plaintext copy wiped.
fn into_file_key(mut plain: Vec<u8>) -> FileKey {
    FileKey::init_with_mut(|file_key| {
        file_key.copy_from_slice(&plain);
        plain.zeroize();
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn opens_what_age_seals_and_refuses_what_it_refuses() {
        let identity = age::x25519::Identity::generate();
        let cached = CachedX25519::from_bech32(identity.to_string().expose_secret()).unwrap();
        assert_eq!(cached.recipient().to_string(), identity.to_public().to_string());
        for plain in [&b""[..], b"x", &[7u8; 70_000][..]] {
            let sealed = age::encrypt(&identity.to_public(), plain).unwrap();
            assert_eq!(age::decrypt(&cached, &sealed).unwrap(), plain);
        }
        // Sealed to someone else: refused, as by age's own identity.
        let other = age::x25519::Identity::generate();
        let sealed = age::encrypt(&other.to_public(), b"secret").unwrap();
        assert!(age::decrypt(&cached, &sealed).is_err());
        assert!(age::decrypt(&identity, &sealed).is_err());
        // A damaged ciphertext: refused by both.
        let mut sealed = age::encrypt(&identity.to_public(), b"secret").unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(age::decrypt(&cached, &sealed).is_err());
        assert!(age::decrypt(&identity, &sealed).is_err());
        assert!(CachedX25519::from_bech32("age1notasecret").is_none());
    }

    fn seal_to(recipients: &[&dyn age::Recipient], plain: &[u8]) -> Vec<u8> {
        let encryptor = age::Encryptor::with_recipients(recipients.iter().copied()).unwrap();
        let mut sealed = Vec::new();
        let mut writer = encryptor.wrap_output(&mut sealed).unwrap();
        std::io::Write::write_all(&mut writer, plain).unwrap();
        writer.finish().unwrap();
        sealed
    }

    #[test]
    fn the_local_stanza_opens_only_with_its_identity_and_age_still_opens_the_file() {
        let identity = age::x25519::Identity::generate();
        let cached = CachedX25519::from_bech32(identity.to_string().expose_secret()).unwrap();
        let other = CachedX25519::from_bech32(age::x25519::Identity::generate().to_string().expose_secret()).unwrap();
        // The local stanza alone: ours opens it, another identity's does not, age's own identity skips it.
        let local_only = seal_to(&[&cached.local_recipient()], b"secret");
        assert!(String::from_utf8_lossy(&local_only).contains("-> wasm-host-local "));
        assert_eq!(age::decrypt(&cached, &local_only).unwrap(), b"secret");
        assert!(age::decrypt(&other, &local_only).is_err());
        assert!(age::decrypt(&identity, &local_only).is_err());
        // Both stanzas, as Keys::seal writes them: ours opens it, and so does age with the identity file's key.
        let both = seal_to(&[&cached.local_recipient(), &identity.to_public()], b"secret");
        assert_eq!(age::decrypt(&cached, &both).unwrap(), b"secret");
        assert_eq!(age::decrypt(&identity, &both).unwrap(), b"secret");
        assert!(age::decrypt(&other, &both).is_err());
        // Two seals of the same value differ (a fresh salt and file key each time).
        assert_ne!(seal_to(&[&cached.local_recipient()], b"x"), seal_to(&[&cached.local_recipient()], b"x"));
        // A damaged local stanza opens nothing.
        let text = String::from_utf8_lossy(&local_only).into_owned();
        let line = text.lines().nth(2).unwrap().to_owned();
        let mut damaged = line.clone().into_bytes();
        damaged[0] = if damaged[0] == b'A' { b'B' } else { b'A' };
        let damaged = text.replacen(&line, std::str::from_utf8(&damaged).unwrap(), 1);
        assert!(age::decrypt(&cached, damaged.as_bytes()).is_err());
    }
}
