//! `kubernetesVersion`: which Kubernetes minor release a scenario models.

use std::fmt;

/// A Kubernetes minor release, `1.<minor>`. Patch releases do not change the behaviours
/// knetsim models, so they are accepted in scenarios ("1.33.2") and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    pub minor: u16,
}

impl KubeVersion {
    /// The oldest release modelled: dual-stack first shipped (alpha) in 1.16.
    pub const OLDEST: KubeVersion = KubeVersion { minor: 16 };
    /// The newest release modelled, and the default when a scenario names none.
    pub const NEWEST: KubeVersion = KubeVersion { minor: 37 };

    pub const fn new(minor: u16) -> Self {
        KubeVersion { minor }
    }

    /// True from release `1.<minor>` on.
    pub fn at_least(self, minor: u16) -> bool {
        self.minor >= minor
    }

    /// Parses "1.33", "v1.33" or "1.33.4". Returns `None` for anything else; range checks are
    /// the caller's (so that it can say which versions are modelled).
    pub fn parse(s: &str) -> Option<KubeVersion> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = s.split('.');
        if parts.next()? != "1" {
            return None;
        }
        let minor: u16 = parts.next()?.parse().ok()?;
        if let Some(patch) = parts.next() {
            patch.parse::<u32>().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(KubeVersion { minor })
    }
}

impl Default for KubeVersion {
    fn default() -> Self {
        Self::NEWEST
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl serde::Serialize for KubeVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_write() {
        assert_eq!(KubeVersion::parse("1.33"), Some(KubeVersion::new(33)));
        assert_eq!(KubeVersion::parse("v1.16"), Some(KubeVersion::new(16)));
        assert_eq!(KubeVersion::parse("1.30.2"), Some(KubeVersion::new(30)));
        assert_eq!(KubeVersion::parse("2.0"), None);
        assert_eq!(KubeVersion::parse("1"), None);
        assert_eq!(KubeVersion::parse("1.x"), None);
        assert_eq!(KubeVersion::parse("1.2.3.4"), None);
    }
}
