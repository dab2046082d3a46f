//! Cluster redirections: the `-MOVED slot host:port` and `-ASK slot host:port` errors a node
//! returns for a slot it does not serve, plus `-TRYAGAIN` during a migration and
//! `-CLUSTERDOWN` while the cluster recovers from a failure.
//!
//! The proxy acts on these itself so clients never see them; this module only recognises and
//! parses them, cheaply enough to run on every error reply.

use crate::cluster::slot::Slot;

/// What a redirecting error asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect<'a> {
    /// The slot lives on `node` now: update the slot map and resend there.
    Moved {
        /// The slot that moved.
        slot: Slot,
        /// `host:port` of its new owner (host may be empty: "same host as the sender").
        node: &'a str,
    },
    /// Resend this one request to `node`, preceded by ASKING; the slot map stays.
    Ask {
        /// The slot being migrated.
        slot: Slot,
        /// `host:port` of the importing node.
        node: &'a str,
    },
    /// A multi-key request hit a slot in migration: retry after a short pause.
    TryAgain,
    /// The node sees the cluster as down (a master failed and its replica is not promoted
    /// yet) or the slot as unserved. The command was not run: retry after a pause.
    ClusterDown,
}

/// Recognises a redirect in a complete error reply (`-...\r\n`). Other replies give `None`.
pub fn parse_redirect(reply: &[u8]) -> Option<Redirect<'_>> {
    let line = reply.strip_prefix(b"-")?;
    let line = line.strip_suffix(b"\r\n").unwrap_or(line);
    if line.starts_with(b"TRYAGAIN") {
        return Some(Redirect::TryAgain);
    }
    if line.starts_with(b"CLUSTERDOWN") {
        return Some(Redirect::ClusterDown);
    }
    let (moved, rest) = if let Some(rest) = line.strip_prefix(b"MOVED ") {
        (true, rest)
    } else {
        (false, line.strip_prefix(b"ASK ")?)
    };
    let text = std::str::from_utf8(rest).ok()?;
    let (slot, node) = text.split_once(' ')?;
    let slot = Slot::new(slot.parse().ok()?)?;
    let node = node.trim();
    node.rsplit_once(':')?;
    Some(if moved {
        Redirect::Moved { slot, node }
    } else {
        Redirect::Ask { slot, node }
    })
}

/// Fills in an empty host (`:7001`, sent by nodes that do not know their own address) with
/// the host of the node that sent the redirect.
pub fn resolve_node(node: &str, sender: &str) -> String {
    match node.strip_prefix(':') {
        Some(port) => {
            let host = sender.rsplit_once(':').map_or(sender, |(host, _)| host);
            format!("{host}:{port}")
        }
        None => node.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: u16) -> Slot {
        Slot::new(n).unwrap()
    }

    #[test]
    fn redirects() {
        assert_eq!(
            parse_redirect(b"-MOVED 3999 127.0.0.1:6381\r\n"),
            Some(Redirect::Moved {
                slot: slot(3999),
                node: "127.0.0.1:6381"
            })
        );
        assert_eq!(
            parse_redirect(b"-ASK 1 10.0.0.2:7000\r\n"),
            Some(Redirect::Ask {
                slot: slot(1),
                node: "10.0.0.2:7000"
            })
        );
        assert_eq!(
            parse_redirect(b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"),
            Some(Redirect::TryAgain)
        );
        assert_eq!(
            parse_redirect(b"-CLUSTERDOWN The cluster is down\r\n"),
            Some(Redirect::ClusterDown)
        );
        assert_eq!(parse_redirect(b"-ERR MOVED 1 a:1\r\n"), None);
        assert_eq!(parse_redirect(b"-MOVED 99999 a:1\r\n"), None);
        assert_eq!(parse_redirect(b"-MOVED 1 nohost\r\n"), None);
        assert_eq!(parse_redirect(b"+OK\r\n"), None);
    }

    #[test]
    fn empty_host_takes_the_senders() {
        assert_eq!(resolve_node(":7001", "127.0.0.1:7000"), "127.0.0.1:7001");
        assert_eq!(resolve_node("h:1", "127.0.0.1:7000"), "h:1");
    }
}
