//! How an error reaches the user: its chain of causes on one line, each said once.
//!
//! Many errors state their cause in their own message *and* return it as `source()` (thiserror's `{source}` with
//! a `source` field), so anyhow's `{:#}` would print it twice: "cannot open the store X: Is a directory (os
//! error 21); check ...: Is a directory (os error 21)". Rather than rely on every error type of every crate
//! choosing one or the other, the chain is printed here, skipping a cause already said.

/// `top: cause: root`, without a cause whose text is already in what is printed before it.
pub fn render(err: &anyhow::Error) -> String {
    render_chain(err.chain().map(|c| c.to_string()))
}

fn render_chain(messages: impl IntoIterator<Item = String>) -> String {
    let mut out = String::new();
    for message in messages {
        let message = message.trim();
        if message.is_empty() || out.contains(message) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Embeds(std::io::Error);
    impl std::fmt::Display for Embeds {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot open the store /x: {}; check the path", self.0)
        }
    }
    impl std::error::Error for Embeds {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_embedded_in_its_parent_is_said_once() {
        let io = std::io::Error::from_raw_os_error(21);
        let text = io.to_string();
        let err = anyhow::Error::new(Embeds(io)).context("listing connections");
        let shown = render(&err);
        assert_eq!(shown.matches(&text).count(), 1, "{shown}");
        assert_eq!(shown, format!("listing connections: cannot open the store /x: {text}; check the path"));
    }

    #[test]
    fn distinct_causes_are_all_said_in_order() {
        let err = anyhow::anyhow!("root cause").context("middle").context("top");
        assert_eq!(render(&err), "top: middle: root cause");
    }
}
