//! A configured secret (API key, JWT secret) that never shows in `Debug` or logs.

use serde::{Deserialize, Serialize};

/// A configured secret: serializes as itself (config layering needs it) but never shows in `Debug` or logs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that needs it (key construction, a request URL).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value without surrounding whitespace, or `None` when it is blank: an unset key.
    pub fn non_blank(&self) -> Option<&str> {
        Some(self.0.trim()).filter(|v| !v.is_empty())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_is_redacted_and_serde_is_transparent() {
        let s = Secret::new("super-secret-value-123");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"super-secret-value-123\""
        );
        let back: Secret = serde_json::from_str("\"k\"").unwrap();
        assert_eq!(back.expose(), "k");
    }

    #[test]
    fn blank_is_unset() {
        assert_eq!(Secret::new("  ").non_blank(), None);
        assert_eq!(Secret::default().non_blank(), None);
        assert_eq!(Secret::new(" k ").non_blank(), Some("k"));
    }
}
