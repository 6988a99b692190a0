//! Which connections a function may read. Deny by default: an empty grant list reads nothing.

/// The `--allow-connection` list of one function: names, or `*` for every connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionGrants {
    all: bool,
    names: Vec<String>,
}

impl ConnectionGrants {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn all() -> Self {
        Self { all: true, names: Vec::new() }
    }

    /// Builds grants from `--allow-connection` values; `*` grants every connection.
    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        let mut grants = Self::none();
        for name in names {
            let name = name.into();
            if name == "*" {
                grants.all = true;
            } else if !grants.names.contains(&name) {
                grants.names.push(name);
            }
        }
        grants
    }

    /// True when `*` was granted: every connection, present and future.
    pub fn all_granted(&self) -> bool {
        self.all
    }

    /// The names granted one by one (without `*`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn allows(&self, name: &str) -> bool {
        self.all || self.names.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default() {
        assert!(!ConnectionGrants::none().allows("a"));
        let g = ConnectionGrants::from_names(["a", "b"]);
        assert!(g.allows("a") && g.allows("b") && !g.allows("c") && !g.allows("*"));
        assert!(ConnectionGrants::from_names(["*"]).allows("anything"));
    }
}
