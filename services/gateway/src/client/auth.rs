//! Optional JWT authentication of clients (off unless `gateway.auth.algorithm` is set).
//!
//! A token arrives as `?token=`, as `Authorization: Bearer ...`, or (Socket.IO)
//! in the CONNECT `auth` payload `{"token": ...}`. Only the configured
//! algorithm is accepted (HS256 with a shared secret or RS256 with a public
//! key), so `alg: none` and algorithm-confusion tokens are refused; `exp` is
//! required, `nbf` is honoured, `iss`/`aud` are checked when configured. An
//! optional `symbols` claim restricts what the client may subscribe to.
//! Tokens, secrets and keys are never logged.

use std::collections::HashSet;

use actix_web::http::header;
use actix_web::HttpRequest;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tickstream_model::Symbol;
use tickstream_runtime::config::ConfigError;

use crate::config::{AuthSection, ALIASES};

/// Why a token was refused; each is a bounded `reason` label of `tickstream_gateway_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No token presented.
    #[error("missing token")]
    Missing,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not verify with the configured key.
    #[error("bad signature")]
    BadSignature,
    /// `alg` is not the configured one (including `none`).
    #[error("algorithm not allowed")]
    BadAlgorithm,
    /// Not a JWT, missing required claims, wrong issuer/audience, bad claim types.
    #[error("malformed token")]
    Malformed,
}

impl AuthFailure {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::BadAlgorithm => "bad_algorithm",
            AuthFailure::Malformed => "malformed",
        }
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The `symbols` claim, normalized; `None` = every symbol.
    pub symbols: Option<HashSet<Symbol>>,
    /// The `sub` claim as given (string or number), for clients that show who is connected.
    pub subject: Option<serde_json::Value>,
    /// `"admin": true`, `"role": "admin"` or `"roles"` containing `"admin"`: may start and stop feeds.
    pub admin: bool,
}

/// The claims we read (others are ignored).
#[derive(Debug, Deserialize)]
struct Claims {
    /// Optional allow-list of symbols.
    #[serde(default)]
    symbols: Option<Vec<String>>,
    /// The subject (user id), echoed by profiles that report it.
    #[serde(default)]
    sub: Option<serde_json::Value>,
    /// `"admin": true` grants feed control.
    #[serde(default)]
    admin: Option<serde_json::Value>,
    /// `"role": "admin"` grants feed control.
    #[serde(default)]
    role: Option<serde_json::Value>,
    /// `"roles": [..., "admin"]` grants feed control.
    #[serde(default)]
    roles: Option<serde_json::Value>,
}

impl Claims {
    /// Whether the token names its holder an admin (only the exact forms above count).
    fn is_admin(&self) -> bool {
        let admin_word = |v: &serde_json::Value| v.as_str() == Some("admin");
        self.admin.as_ref().and_then(serde_json::Value::as_bool) == Some(true)
            || self.role.as_ref().is_some_and(admin_word)
            || self
                .roles
                .as_ref()
                .and_then(serde_json::Value::as_array)
                .is_some_and(|r| r.iter().any(admin_word))
    }
}

/// Checks tokens against the configured key; built once at start.
pub struct Verifier {
    /// The configured key (secret or public key); never printed.
    key: DecodingKey,
    /// Algorithm, required claims, leeway, issuer and audience.
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds the verifier from `[gateway.auth]`; `None` when auth is off. Errors name the key.
    pub fn from_config(cfg: &AuthSection) -> Result<Option<Self>, ConfigError> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let (alg, key) = match cfg.algorithm.to_ascii_uppercase().as_str() {
            "HS256" => (
                Algorithm::HS256,
                DecodingKey::from_secret(cfg.hs256_secret.expose().as_bytes()),
            ),
            "RS256" => {
                let pem = if cfg.rs256_public_key_pem.expose().is_empty() {
                    std::fs::read(&cfg.rs256_public_key_file).map_err(|e| {
                        ConfigError::invalid(
                            "gateway.auth.rs256_public_key_file",
                            ALIASES,
                            format!("{}: {e}", cfg.rs256_public_key_file),
                        )
                    })?
                } else {
                    cfg.rs256_public_key_pem.expose().as_bytes().to_vec()
                };
                let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    ConfigError::invalid(
                        "gateway.auth.rs256_public_key_pem",
                        ALIASES,
                        format!("not an RSA public key in PEM: {e}"),
                    )
                })?;
                (Algorithm::RS256, key)
            }
            other => {
                return Err(ConfigError::invalid(
                    "gateway.auth.algorithm",
                    ALIASES,
                    format!("{other:?}: expected none, HS256 or RS256"),
                ))
            }
        };
        let mut validation = Validation::new(alg);
        validation.leeway = cfg.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if !cfg.issuer.is_empty() {
            validation.set_issuer(&[cfg.issuer.as_str()]);
        }
        if cfg.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&[cfg.audience.as_str()]);
        }
        Ok(Some(Self { key, validation }))
    }

    /// Verifies a token (`None`: none presented) and returns what it grants.
    pub fn verify(&self, token: Option<&str>) -> Result<Grant, AuthFailure> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(AuthFailure::Missing);
        };
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthFailure::Expired,
                ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
                ErrorKind::InvalidSignature => AuthFailure::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthFailure::BadAlgorithm
                }
                _ if alg_is_none(token) => AuthFailure::BadAlgorithm,
                _ => AuthFailure::Malformed,
            },
        )?;
        let admin = data.claims.is_admin();
        let symbols = match data.claims.symbols {
            None => None,
            Some(list) => {
                let mut set = HashSet::with_capacity(list.len());
                for raw in list {
                    set.insert(Symbol::parse(&raw).map_err(|_| AuthFailure::Malformed)?);
                }
                Some(set)
            }
        };
        Ok(Grant {
            symbols,
            subject: data.claims.sub,
            admin,
        })
    }
}

/// Whether the token's header says `alg: none` (jsonwebtoken refuses it as unparseable; we report it as what it is).
fn alg_is_none(token: &str) -> bool {
    use base64::Engine as _;
    let Some(head) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('='))
    else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("alg").and_then(|a| a.as_str()).map(str::to_owned))
        .is_some_and(|alg| alg.eq_ignore_ascii_case("none"))
}

/// The token of an HTTP request: `Authorization: Bearer ...` wins over `?token=`.
pub fn token_of(req: &HttpRequest) -> Option<String> {
    if let Some(v) = req.headers().get(header::AUTHORIZATION) {
        if let Some(t) = v.to_str().ok().and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        }) {
            return Some(t.trim().to_owned());
        }
    }
    #[derive(Deserialize)]
    struct TokenQuery {
        token: Option<String>,
    }
    actix_web::web::Query::<TokenQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn verifier() -> Verifier {
        let cfg = AuthSection {
            algorithm: "HS256".into(),
            hs256_secret: Secret::new(SECRET),
            ..AuthSection::default()
        };
        Verifier::from_config(&cfg).unwrap().unwrap()
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn refusal_table() {
        let v = verifier();
        let now = chrono::Utc::now().timestamp();
        let good = token(json!({"exp": now + 600, "symbols": ["btcusdt"]}), SECRET);
        let grant = v.verify(Some(&good)).unwrap();
        assert!(grant
            .symbols
            .unwrap()
            .contains(&Symbol::parse("BTCUSDT").unwrap()));
        let none_header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT"}"#,
        );
        let none_body = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            format!(r#"{{"exp":{}}}"#, now + 600),
        );
        let cases = [
            (None, AuthFailure::Missing),
            (
                Some(token(json!({"exp": now - 3600}), SECRET)),
                AuthFailure::Expired,
            ),
            (
                Some(token(json!({"exp": now + 3600, "nbf": now + 1800}), SECRET)),
                AuthFailure::NotYetValid,
            ),
            (
                Some(token(
                    json!({"exp": now + 600}),
                    "another-secret-of-32-bytes-xxxxx",
                )),
                AuthFailure::BadSignature,
            ),
            (
                Some(format!("{none_header}.{none_body}.")),
                AuthFailure::BadAlgorithm,
            ),
            (Some("not-a-jwt".into()), AuthFailure::Malformed),
            (
                Some(token(json!({"sub": "x"}), SECRET)),
                AuthFailure::Malformed,
            ),
        ];
        for (t, want) in cases {
            assert_eq!(v.verify(t.as_deref()).unwrap_err(), want, "{t:?}");
        }
        let shown = format!("{v:?}");
        assert!(!shown.contains(SECRET));
    }

    #[test]
    fn admin_claims() {
        let v = verifier();
        let exp = chrono::Utc::now().timestamp() + 600;
        let admin =
            |claims: serde_json::Value| v.verify(Some(&token(claims, SECRET))).unwrap().admin;
        assert!(admin(json!({"exp": exp, "admin": true})));
        assert!(admin(json!({"exp": exp, "role": "admin"})));
        assert!(admin(json!({"exp": exp, "roles": ["reader", "admin"]})));
        assert!(!admin(json!({"exp": exp})));
        assert!(!admin(json!({"exp": exp, "admin": "true"})));
        assert!(!admin(
            json!({"exp": exp, "admin": false, "role": "reader"})
        ));
    }
}
