//! Bearer tokens as Docker's token flow uses them: JWTs whose `access` claim lists the
//! repositories and actions granted, signed by the built-in token service (an EC P-256 key)
//! or by a trusted external issuer (keys from a JWKS file or a PEM bundle of certificates).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::pki_types::pem::{PemObject, SectionKind};
use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;

use crate::config::{TokenConfig, TrustedIssuer};
use crate::error::RegistryError;

/// One entry of the `access` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResourceActions {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    #[serde(default)]
    sub: String,
    aud: serde_json::Value,
    exp: u64,
    #[serde(default)]
    nbf: u64,
    #[serde(default)]
    iat: u64,
    #[serde(default)]
    jti: String,
    #[serde(default)]
    access: Vec<ResourceActions>,
}

/// What a valid token says.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedToken {
    /// The user it was issued to (empty: anonymous).
    pub(crate) subject: String,
    /// Issued by this registry's own token service.
    pub(crate) local: bool,
    pub(crate) access: Vec<ResourceActions>,
}

impl VerifiedToken {
    pub(crate) fn grants(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.kind == kind
                && (a.name == name || a.name == "*")
                && a.actions.iter().any(|x| x == action || x == "*")
        })
    }
}

/// A scope a client asks the token service for: `repository:team/app:pull,push`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) actions: Vec<String>,
}

impl Scope {
    /// Parses the space-separated scopes of one `scope` parameter; malformed ones are skipped.
    pub(crate) fn parse_all(value: &str) -> Vec<Scope> {
        value
            .split(' ')
            .filter_map(|s| {
                let (kind, rest) = s.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                if kind.is_empty() || name.is_empty() {
                    return None;
                }
                Some(Scope {
                    kind: kind.to_string(),
                    name: name.to_string(),
                    actions: actions
                        .split(',')
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
            })
            .collect()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The built-in token service's signing side.
pub(crate) struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    issuer: String,
    service: String,
    expiry: u64,
}

/// A key tokens may be signed with.
pub(crate) struct TrustedKey {
    issuer: String,
    key: DecodingKey,
    kid: Option<String>,
    local: bool,
}

fn key_err(path: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::TokenKey {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl TokenIssuer {
    /// Loads the signing key from `path`, generating it (0600) when it does not exist.
    pub(crate) fn load_or_create(
        config: &TokenConfig,
        path: &Path,
    ) -> Result<(TokenIssuer, TrustedKey), RegistryError> {
        let rng = SystemRandom::new();
        let pem = match std::fs::read(path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.signing_key.is_none() => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| key_err(path, "cannot generate a key"))?;
                let pem = pem_block("PRIVATE KEY", doc.as_ref());
                write_private(path, pem.as_bytes()).map_err(|e| key_err(path, e.to_string()))?;
                tracing::info!(path = %path.display(), "generated the token signing key");
                pem.into_bytes()
            }
            Err(e) => return Err(key_err(path, e.to_string())),
        };
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
            .map_err(|e| key_err(path, format!("not a PKCS#8 PEM private key: {e}")))?;
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| key_err(path, format!("not an EC P-256 key: {e}")))?;
        let public = pair.public_key().as_ref().to_vec();
        let kid = strata_oci::Digest::sha256_of(&public).hex()[..16].to_string();
        let issuer = TokenIssuer {
            key: EncodingKey::from_ec_der(der.secret_pkcs8_der()),
            kid: kid.clone(),
            issuer: config.issuer.clone(),
            service: config.service.clone(),
            expiry: config.expiry.0.as_secs().max(1),
        };
        let trusted = TrustedKey {
            issuer: config.issuer.clone(),
            key: DecodingKey::from_ec_der(&public),
            kid: Some(kid),
            local: true,
        };
        Ok((issuer, trusted))
    }

    /// Signs a token for `subject` (empty: anonymous) granting `access`; returns the token,
    /// its lifetime in seconds and its issue time.
    pub(crate) fn issue(
        &self,
        subject: &str,
        access: Vec<ResourceActions>,
    ) -> Result<(String, u64, u64), jsonwebtoken::errors::Error> {
        let iat = now();
        let mut jti = [0u8; 12];
        let _ = getrandom::fill(&mut jti);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            aud: serde_json::Value::String(self.service.clone()),
            exp: iat + self.expiry,
            nbf: iat.saturating_sub(1),
            iat,
            jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
            access,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)?;
        Ok((token, self.expiry, iat))
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&temp, path)
}

/// The keys of an external issuer.
pub(crate) fn trusted_keys(t: &TrustedIssuer) -> Result<Vec<TrustedKey>, RegistryError> {
    let err = |message: String| RegistryError::TrustedIssuer {
        issuer: t.issuer.clone(),
        message,
    };
    let mut keys = Vec::new();
    if let Some(path) = &t.jwks {
        let text = std::fs::read(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let set: JwkSet = serde_json::from_slice(&text)
            .map_err(|e| err(format!("{}: not a JWKS: {e}", path.display())))?;
        for jwk in &set.keys {
            if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
                continue; // shared secrets are never trusted
            }
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| err(format!("{}: unusable key: {e}", path.display())))?;
            keys.push(TrustedKey {
                issuer: t.issuer.clone(),
                key,
                kid: jwk.common.key_id.clone(),
                local: false,
            });
        }
    }
    if let Some(path) = &t.certificates {
        let text = std::fs::read(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let sections = <(SectionKind, Vec<u8>)>::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
        for (kind, der) in sections {
            let label = match kind {
                SectionKind::Certificate => "CERTIFICATE",
                SectionKind::PublicKey => "PUBLIC KEY",
                _ => continue,
            };
            let pem = pem_block(label, &der);
            let key = DecodingKey::from_rsa_pem(pem.as_bytes())
                .or_else(|_| DecodingKey::from_ec_pem(pem.as_bytes()))
                .or_else(|_| DecodingKey::from_ed_pem(pem.as_bytes()))
                .map_err(|e| err(format!("{}: unusable key: {e}", path.display())))?;
            keys.push(TrustedKey {
                issuer: t.issuer.clone(),
                key,
                kid: None,
                local: false,
            });
        }
    }
    if keys.is_empty() {
        return Err(err("no keys found".into()));
    }
    Ok(keys)
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Checks tokens against every trusted key.
pub(crate) struct TokenVerifier {
    keys: Vec<TrustedKey>,
    service: String,
}

impl TokenVerifier {
    pub(crate) fn new(keys: Vec<TrustedKey>, service: &str) -> TokenVerifier {
        TokenVerifier {
            keys,
            service: service.to_string(),
        }
    }

    /// The token's claims when a trusted key signed it for this service and it is current.
    pub(crate) fn verify(&self, token: &str) -> Option<VerifiedToken> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return None;
        }
        // Keys named by the token's kid first, then the others.
        let mut order: Vec<&TrustedKey> = self
            .keys
            .iter()
            .filter(|k| header.kid.is_some() && k.kid == header.kid)
            .collect();
        order.extend(
            self.keys
                .iter()
                .filter(|k| header.kid.is_none() || k.kid != header.kid),
        );
        for k in order {
            let mut v = Validation::new(header.alg);
            v.set_audience(&[&self.service]);
            v.set_issuer(&[&k.issuer]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.leeway = 60;
            v.validate_nbf = true;
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, &k.key, &v) {
                return Some(VerifiedToken {
                    subject: data.claims.sub,
                    local: k.local,
                    access: data.claims.access,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse() {
        let s = Scope::parse_all("repository:a/b:pull,push registry:catalog:* bad");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "a/b");
        assert_eq!(s[0].actions, ["pull", "push"]);
        assert_eq!(s[1].kind, "registry");
        assert_eq!(s[1].name, "catalog");
        let s = Scope::parse_all("repository:host:5000/x:pull");
        assert_eq!(s[0].name, "host:5000/x");
    }

    fn make_issuer(dir: &Path, service: &str) -> (TokenIssuer, TokenVerifier) {
        let c = TokenConfig {
            service: service.into(),
            ..TokenConfig::default()
        };
        let (issuer, key) = TokenIssuer::load_or_create(&c, &dir.join("key.pem")).unwrap();
        (issuer, TokenVerifier::new(vec![key], "svc"))
    }

    #[test]
    fn issued_tokens_verify_and_carry_access() {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, verifier) = make_issuer(dir.path(), "svc");
        let access = vec![ResourceActions {
            kind: "repository".into(),
            name: "a/b".into(),
            actions: vec!["pull".into()],
        }];
        let (token, _, _) = issuer.issue("alice", access).unwrap();
        let v = verifier.verify(&token).unwrap();
        assert_eq!(v.subject, "alice");
        assert!(v.local);
        assert!(v.grants("repository", "a/b", "pull"));
        assert!(!v.grants("repository", "a/b", "push"));
        assert!(!v.grants("repository", "a/c", "pull"));
        // the same key file is reused
        let (again, _) = make_issuer(dir.path(), "svc");
        assert_eq!(again.kid, issuer.kid);
        // tampering and other services fail
        let mut bad = token.clone();
        bad.pop();
        assert!(verifier.verify(&bad).is_none());
        let (other, _) = make_issuer(dir.path(), "other-service");
        let (t2, _, _) = other.issue("alice", vec![]).unwrap();
        assert!(verifier.verify(&t2).is_none());
        assert!(verifier.verify("not.a.token").is_none());
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let (_, verifier) = make_issuer(d1.path(), "svc");
        let (stranger, _) = make_issuer(d2.path(), "svc");
        let (t, _, _) = stranger.issue("alice", vec![]).unwrap();
        assert!(verifier.verify(&t).is_none());
    }

    /// An issuer standing for an external one (`ext.pem` in `dir`) and its key pair, whose
    /// public half the tests publish as a JWKS or a certificate bundle.
    fn external_issuer(dir: &Path, issuer: &str) -> (TokenIssuer, EcdsaKeyPair) {
        let c = TokenConfig {
            service: "svc".into(),
            issuer: issuer.into(),
            ..TokenConfig::default()
        };
        let (ext, _) = TokenIssuer::load_or_create(&c, &dir.join("ext.pem")).unwrap();
        let pem = std::fs::read(dir.join("ext.pem")).unwrap();
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &SystemRandom::new(),
        )
        .unwrap();
        (ext, pair)
    }

    #[test]
    fn an_external_issuers_jwks_is_trusted_and_kid_picks_the_key() {
        use base64::Engine;
        let d = tempfile::tempdir().unwrap();
        let (ext, pair) = external_issuer(d.path(), "jwks.example");
        let point = pair.public_key().as_ref();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = serde_json::json!({ "keys": [
            { "kty": "EC", "crv": "P-256", "kid": ext.kid, "alg": "ES256", "use": "sig",
              "x": b64(&point[1..33]), "y": b64(&point[33..65]) },
            { "kty": "oct", "k": "c2VjcmV0", "kid": "shared-secret" }
        ]});
        let path = d.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        let keys = trusted_keys(&TrustedIssuer {
            issuer: "jwks.example".into(),
            jwks: Some(path),
            certificates: None,
        })
        .unwrap();
        assert_eq!(keys.len(), 1, "symmetric keys are never trusted");
        let verifier = TokenVerifier::new(keys, "svc");
        let (t, _, _) = ext.issue("carol", vec![]).unwrap();
        assert_eq!(verifier.verify(&t).unwrap().subject, "carol");
        // a token naming another issuer is refused even with a good signature
        let c2 = TokenConfig {
            service: "svc".into(),
            issuer: "someone.else".into(),
            ..TokenConfig::default()
        };
        let (impostor, _) = TokenIssuer::load_or_create(&c2, &d.path().join("ext.pem")).unwrap();
        let (t, _, _) = impostor.issue("carol", vec![]).unwrap();
        assert!(verifier.verify(&t).is_none());
    }

    #[test]
    fn an_external_issuers_certificate_bundle_is_trusted() {
        // The external issuer's key, as a public key PEM.
        let d = tempfile::tempdir().unwrap();
        let (ext, pair) = external_issuer(d.path(), "auth.example");
        // SubjectPublicKeyInfo for P-256: fixed prefix + the uncompressed point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let bundle = d.path().join("bundle.pem");
        std::fs::write(&bundle, pem_block("PUBLIC KEY", &spki)).unwrap();
        let keys = trusted_keys(&TrustedIssuer {
            issuer: "auth.example".into(),
            jwks: None,
            certificates: Some(bundle),
        })
        .unwrap();
        let verifier = TokenVerifier::new(keys, "svc");
        let (t, _, _) = ext.issue("bob", vec![]).unwrap();
        let v = verifier.verify(&t).unwrap();
        assert_eq!(v.subject, "bob");
        assert!(!v.local);
    }
}
