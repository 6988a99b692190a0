//! Opening age's X25519 recipient stanza with an identity that keeps its public key.
//!
//! age's own X25519 identity derives its public key from the secret key on every decrypt (it is part of the
//! HKDF salt): a second scalar multiplication, 37 % of opening one token (BENCHMARKS.md). This does exactly what
//! age does (https://c2sp.org/age#x25519-recipient-stanza, and age 0.12's `native/x25519.rs`) with the public
//! key computed once. Encryption still goes through age.

use age::DecryptError;
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{aead_decrypt, hkdf};
use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

const TAG: &str = "X25519";
const KEY_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
const EPK_BYTES: usize = 32;
const ENCRYPTED_FILE_KEY_BYTES: usize = FILE_KEY_BYTES + 16;

pub(crate) struct CachedX25519 {
    secret: StaticSecret,
    public: PublicKey,
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
        let secret = StaticSecret::from(key);
        key.zeroize();
        let public = PublicKey::from(&secret);
        Some(Self { secret, public })
    }
}

impl age::Identity for CachedX25519 {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.tag != TAG {
            return None;
        }
        // Canonical, unpadded base64 of exactly 32 bytes, as age requires.
        let ephemeral: [u8; EPK_BYTES] = match &stanza.args[..] {
            [arg] => {
                let mut buf = [0u8; EPK_BYTES + 1];
                match BASE64_STANDARD_NO_PAD.decode_slice(arg, &mut buf) {
                    Ok(n) if n == EPK_BYTES => buf[..EPK_BYTES].try_into().expect("length checked"),
                    _ => return Some(Err(DecryptError::InvalidHeader)),
                }
            }
            _ => return Some(Err(DecryptError::InvalidHeader)),
        };
        if stanza.body.len() != ENCRYPTED_FILE_KEY_BYTES {
            return Some(Err(DecryptError::InvalidHeader));
        }
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
        opened.ok().map(|mut plain| {
            Ok(FileKey::init_with_mut(|file_key| {
                file_key.copy_from_slice(&plain);
                plain.zeroize();
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn opens_what_age_seals_and_refuses_what_it_refuses() {
        let identity = age::x25519::Identity::generate();
        let cached = CachedX25519::from_bech32(identity.to_string().expose_secret()).unwrap();
        assert_eq!(cached.public.as_bytes().len(), 32);
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
}
