//! The three-state health every `/health` reports.

use serde::{Deserialize, Serialize};

/// Overall status; load balancers read the HTTP code, people read the word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything it depends on works.
    Healthy,
    /// Alive and retrying, but a dependency is down or stale.
    Degraded,
    /// Cannot do its job until someone acts (e.g. a missing API key).
    Unhealthy,
}

impl HealthStatus {
    /// The worse of two, for aggregating dependencies.
    pub fn worst(self, other: Self) -> Self {
        self.max(other)
    }

    /// Lower-case name as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HealthStatus::*;

    #[test]
    fn worst_wins() {
        assert_eq!(Healthy.worst(Degraded), Degraded);
        assert_eq!(Unhealthy.worst(Degraded), Unhealthy);
        assert_eq!(Healthy.worst(Healthy), Healthy);
    }
}
