//! Key encryption at rest: signing keys are stored sealed under a key-encryption key (KEK) that
//! is held outside the database (a setting, or a 0600 file), so that whoever can read the
//! database (a local user, a backup, a replica) cannot sign tokens.
//!
//! Format (version 1), all in one byte string:
//!
//! ```text
//! "TSK" 0x01 | KEK id (8 bytes) | nonce (12 bytes, random) | AES-256-GCM ciphertext || tag (16 bytes)
//! ```
//!
//! The associated data is the 12-byte header (magic, version, KEK id) followed by the key's
//! `kid`, so a sealed key moved to another row, or a header edited, fails to open. The KEK id is
//! the first 8 bytes of SHA-256 over a fixed label and the KEK: it names which KEK sealed a key,
//! so that a wrong or missing KEK is reported as such (never parsed as garbage), without saying
//! anything about the KEK itself. A stored value that does not start with the magic is a key
//! from before encryption (plain PKCS#8 DER, which starts with the byte 0x30) and is sealed in
//! place on start.

use crate::JoseError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fmt;

/// The magic and version that open a sealed key.
const MAGIC: [u8; 4] = *b"TSK\x01";
/// The length of a KEK id.
pub const KEK_ID_LEN: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + KEK_ID_LEN;
const TAG_LEN: usize = 16;
/// The length of a KEK: AES-256.
pub const KEK_LEN: usize = 32;

/// A key-encryption key: AES-256-GCM. Its `Debug` shows only its id.
pub struct Kek {
    id: [u8; KEK_ID_LEN],
    key: LessSafeKey,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id()).field("key", &"<redacted>").finish()
    }
}

fn kek_id(key: &[u8]) -> [u8; KEK_ID_LEN] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"tessera key-encryption key id\0");
    ctx.update(key);
    let digest = ctx.finish();
    let mut id = [0u8; KEK_ID_LEN];
    id.copy_from_slice(&digest.as_ref()[..KEK_ID_LEN]);
    id
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a stored private key is: sealed (under the KEK with this id) or plain PKCS#8 (a key
/// stored before encryption at rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredForm {
    Sealed([u8; KEK_ID_LEN]),
    Plain,
}

impl StoredForm {
    pub fn of(stored: &[u8]) -> Self {
        match stored.get(..HEADER_LEN) {
            Some(h) if h[..MAGIC.len()] == MAGIC => {
                let mut id = [0u8; KEK_ID_LEN];
                id.copy_from_slice(&h[MAGIC.len()..]);
                Self::Sealed(id)
            }
            _ => Self::Plain,
        }
    }
    /// The sealing KEK's id as shown in messages (hex), if sealed.
    pub fn kek_id(&self) -> Option<String> {
        match self {
            Self::Sealed(id) => Some(hex(id)),
            Self::Plain => None,
        }
    }
}

impl Kek {
    /// A KEK from its 32 raw bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Self, JoseError> {
        if key.len() != KEK_LEN {
            return Err(JoseError::InvalidKek(format!("it is {} bytes; a key-encryption key is {KEK_LEN} bytes (AES-256)", key.len())));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| JoseError::InvalidKek("not an AES-256 key".into()))?;
        Ok(Self { id: kek_id(key), key: LessSafeKey::new(unbound) })
    }

    /// A KEK from its base64 text (standard or URL-safe alphabet, padding and surrounding
    /// whitespace optional), as in `TESSERA_KEY_ENCRYPTION_KEY` or a KEK file.
    pub fn from_base64(text: &str) -> Result<Self, JoseError> {
        let t = text.trim().trim_end_matches('=');
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t))
            .map_err(|_| JoseError::InvalidKek(format!("it is not base64 (make one with `head -c {KEK_LEN} /dev/urandom | base64`)")))?;
        Self::from_bytes(&raw)
    }

    /// A new random KEK as base64 text (what a KEK file holds), to be parsed with
    /// [`Kek::from_base64`] once written.
    pub fn generate_base64() -> Result<String, JoseError> {
        let mut raw = [0u8; KEK_LEN];
        SystemRandom::new().fill(&mut raw).map_err(|_| JoseError::KeyGeneration)?;
        let text = STANDARD.encode(raw);
        raw.fill(0);
        Ok(text)
    }

    /// The KEK's id as shown in messages and logs (16 hex digits): it identifies the key without
    /// revealing it.
    pub fn id(&self) -> String {
        hex(&self.id)
    }

    fn aad(header: &[u8], kid: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + kid.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(kid.as_bytes());
        aad
    }

    /// Seal the private key `pkcs8` of `kid` (a fresh random nonce each time).
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, JoseError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| JoseError::KeyGeneration)?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + pkcs8.len() + TAG_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.id);
        let aad = Self::aad(&out, kid);
        out.extend_from_slice(&nonce);
        let mut body = pkcs8.to_vec();
        self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut body).map_err(|_| JoseError::Sealing)?;
        out.extend_from_slice(&body);
        body.fill(0);
        Ok(out)
    }

    /// Open a key sealed by [`Kek::seal`] for `kid`. A key sealed under another KEK is
    /// [`JoseError::WrongKek`]; an altered value, or one sealed for another `kid`, is
    /// [`JoseError::Unsealing`].
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, JoseError> {
        match StoredForm::of(sealed) {
            StoredForm::Sealed(id) if id == self.id => {}
            StoredForm::Sealed(id) => return Err(JoseError::WrongKek { sealed_under: hex(&id), available: self.id() }),
            StoredForm::Plain => return Err(JoseError::Unsealing),
        }
        if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(JoseError::Unsealing);
        }
        let aad = Self::aad(&sealed[..HEADER_LEN], kid);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[HEADER_LEN..HEADER_LEN + NONCE_LEN]);
        let mut body = sealed[HEADER_LEN + NONCE_LEN..].to_vec();
        let plain_len = self.key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut body).map_err(|_| JoseError::Unsealing)?.len();
        body.truncate(plain_len);
        Ok(body)
    }
}

/// The KEKs a server holds: the current one (seals every key) and previous ones (open keys
/// sealed before a KEK rotation, which are then sealed again under the current one).
#[derive(Debug)]
pub struct KeyEncryption {
    current: Kek,
    previous: Vec<Kek>,
}

/// A stored key opened by [`KeyEncryption::open`].
pub struct Opened {
    pub pkcs8: Vec<u8>,
    /// The stored form is not sealed under the current KEK (plain PKCS#8 from before
    /// encryption, or sealed under a previous KEK): it should be sealed again.
    pub reseal: bool,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened").field("pkcs8", &"<redacted>").field("reseal", &self.reseal).finish()
    }
}

impl KeyEncryption {
    pub fn new(current: Kek, previous: Vec<Kek>) -> Self {
        Self { current, previous }
    }
    pub fn current(&self) -> &Kek {
        &self.current
    }
    /// Seal under the current KEK.
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, JoseError> {
        self.current.seal(kid, pkcs8)
    }
    /// Open a stored key: sealed under the current or a previous KEK, or plain PKCS#8 (then
    /// returned as it is, marked for sealing). A key sealed under a KEK this server does not
    /// hold is [`JoseError::WrongKek`], naming both ids.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Opened, JoseError> {
        match StoredForm::of(stored) {
            StoredForm::Plain => Ok(Opened { pkcs8: stored.to_vec(), reseal: true }),
            StoredForm::Sealed(id) => {
                if id == self.current.id {
                    return Ok(Opened { pkcs8: self.current.open(kid, stored)?, reseal: false });
                }
                match self.previous.iter().find(|k| k.id == id) {
                    Some(k) => Ok(Opened { pkcs8: k.open(kid, stored)?, reseal: true }),
                    None => Err(JoseError::WrongKek { sealed_under: hex(&id), available: self.ids() }),
                }
            }
        }
    }
    /// The ids of the KEKs held, current first, for messages.
    pub fn ids(&self) -> String {
        let mut ids = vec![self.current.id()];
        ids.extend(self.previous.iter().map(|k| format!("{} (previous)", k.id())));
        ids.join(", ")
    }
    /// Whether a key sealed under `form` can be opened here.
    pub fn can_open(&self, form: StoredForm) -> bool {
        match form {
            StoredForm::Plain => true,
            StoredForm::Sealed(id) => id == self.current.id || self.previous.iter().any(|k| k.id == id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Alg, SigningKey, generate};

    fn kek() -> Kek {
        Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap()
    }

    /// A sealed key opens with the KEK and `kid` it was sealed for, and is not PKCS#8.
    #[test]
    fn seal_and_open_round_trip() {
        let k = kek();
        for alg in Alg::ALL {
            let der = generate(alg).unwrap();
            let kid = SigningKey::from_pkcs8(alg, &der).unwrap().kid().to_string();
            let sealed = k.seal(&kid, &der).unwrap();
            assert_eq!(StoredForm::of(&sealed), StoredForm::Sealed(k.id));
            assert_eq!(StoredForm::of(&sealed).kek_id().unwrap(), k.id());
            assert!(SigningKey::from_pkcs8(alg, &sealed).is_err(), "ciphertext is not a PKCS#8 key");
            assert!(!sealed.windows(16).any(|w| w == &der[der.len() - 16..]), "no plaintext in the sealed form");
            assert_eq!(k.open(&kid, &sealed).unwrap(), der);
            assert_ne!(k.seal(&kid, &der).unwrap(), sealed, "a fresh nonce each time");
        }
        assert_eq!(StoredForm::of(&generate(Alg::ES256).unwrap()), StoredForm::Plain, "PKCS#8 DER is recognized as plain");
    }

    /// Any change to the sealed bytes (header, nonce, ciphertext, tag) fails to open.
    #[test]
    fn tampered_ciphertext_fails() {
        let k = kek();
        let der = generate(Alg::ES256).unwrap();
        let sealed = k.seal("kid-1", &der).unwrap();
        for i in [MAGIC.len() + KEK_ID_LEN, HEADER_LEN + NONCE_LEN, sealed.len() / 2, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(matches!(k.open("kid-1", &t), Err(JoseError::Unsealing)), "byte {i} flipped");
        }
        assert!(matches!(k.open("kid-1", &sealed[..sealed.len() - 1]), Err(JoseError::Unsealing)), "truncated");
        assert!(matches!(k.open("kid-1", &sealed[..HEADER_LEN + 3]), Err(JoseError::Unsealing)), "header only");
        let mut version = sealed.clone();
        version[3] = 2;
        assert!(k.open("kid-1", &version).is_err(), "an unknown version");
    }

    /// The `kid` is associated data: a sealed key copied to another key's row does not open.
    #[test]
    fn wrong_kid_fails() {
        let k = kek();
        let sealed = k.seal("kid-1", &generate(Alg::EdDSA).unwrap()).unwrap();
        assert!(matches!(k.open("kid-2", &sealed), Err(JoseError::Unsealing)));
        assert!(matches!(k.open("", &sealed), Err(JoseError::Unsealing)));
    }

    /// Another KEK is refused by id, with a message naming both ids; previous KEKs open and ask
    /// for a reseal; plain PKCS#8 opens and asks for a seal.
    #[test]
    fn wrong_kek_is_named_and_previous_keks_open() {
        let (a, b) = (kek(), kek());
        let der = generate(Alg::ES256).unwrap();
        let sealed = a.seal("kid", &der).unwrap();
        match b.open("kid", &sealed) {
            Err(e @ JoseError::WrongKek { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&a.id()) && msg.contains(&b.id()), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        // A KEK with the same id but other bytes cannot exist in practice; a forged id fails
        // the tag check.
        let mut forged = sealed.clone();
        forged[MAGIC.len()..HEADER_LEN].copy_from_slice(&b.id);
        assert!(matches!(b.open("kid", &forged), Err(JoseError::Unsealing)));

        let (a_id, b_id) = (a.id(), b.id());
        let only_b = KeyEncryption::new(Kek::from_bytes(&[7u8; 32]).unwrap(), vec![]);
        assert!(matches!(only_b.open("kid", &sealed), Err(JoseError::WrongKek { .. })));
        let rotated = KeyEncryption::new(b, vec![a]);
        let opened = rotated.open("kid", &sealed).unwrap();
        assert_eq!((opened.pkcs8.as_slice(), opened.reseal), (der.as_slice(), true), "sealed under the previous KEK");
        let resealed = rotated.seal("kid", &opened.pkcs8).unwrap();
        assert_eq!(StoredForm::of(&resealed).kek_id().unwrap(), b_id);
        assert!(!rotated.open("kid", &resealed).unwrap().reseal);
        let plain = rotated.open("kid", &der).unwrap();
        assert!(plain.reseal && plain.pkcs8 == der);
        assert!(rotated.ids().contains(&a_id));
    }

    #[test]
    fn kek_parsing_and_debug() {
        let text = Kek::generate_base64().unwrap();
        let k = Kek::from_base64(&format!("  {text}\n")).unwrap();
        let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(&text).unwrap());
        assert_eq!(Kek::from_base64(&url_safe).unwrap().id(), k.id(), "either alphabet");
        assert_eq!(k.id().len(), 16);
        assert!(matches!(Kek::from_base64("c2hvcnQ="), Err(JoseError::InvalidKek(_))), "too short");
        assert!(matches!(Kek::from_base64("not base64!"), Err(JoseError::InvalidKek(_))));
        let shown = format!("{k:?} {:?}", KeyEncryption::new(Kek::from_base64(&text).unwrap(), vec![]));
        assert!(shown.contains("<redacted>") && shown.contains(&k.id()), "{shown}");
        let raw = STANDARD.decode(&text).unwrap();
        assert!(!shown.contains(&text) && !shown.contains(&format!("{raw:?}")), "the key itself is never shown");
    }
}
