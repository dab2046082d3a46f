//! The YAML of a configuration file as a small tree: scalars kept as their text, sequences,
//! and mappings kept in file order with every key, each node with its line.
//!
//! Built from saphyr-parser's events rather than a loaded document, for three reasons that
//! all come from reading nutcracker's files as nutcracker does: a key given twice must be an
//! error (a loaded map keeps one silently), scalars are text (`true` and `400` are read by
//! each key's own rule, so `True` is not a boolean here either), and every key and value must
//! keep its line for the error messages. Anchors are allowed, aliases are not (nutcracker
//! refuses both; an alias would make one value appear at two lines). One document only.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScanError, Span};

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    /// 1-based line where the node starts.
    pub line: usize,
    /// What the node is.
    pub kind: Kind,
}

/// The three kinds of YAML node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A scalar, as written (quotes removed, escapes applied).
    Scalar(String),
    /// A sequence, in order.
    Seq(Vec<Node>),
    /// A mapping, in file order, keys as written (a key may appear twice: callers report it).
    Map(Vec<Entry>),
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The key's text.
    pub key: String,
    /// The key's line: what an error about the key names.
    pub line: usize,
    /// The value.
    pub value: Node,
}

/// Why the text is not YAML percore reads, with the line it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A container being filled while events come in.
enum Open {
    /// A sequence and its items so far.
    Seq { line: usize, items: Vec<Node> },
    /// A mapping, its entries so far, and the key waiting for its value.
    Map {
        line: usize,
        entries: Vec<Entry>,
        key: Option<(String, usize)>,
    },
}

/// Parses `text` into a tree; `Ok(None)` for a file with no document (empty or comments only).
pub(super) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(scan_error)?;
        let line = span.start.line();
        let node = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(error(span, "a configuration file holds one YAML document"));
                }
                continue;
            }
            Event::Alias(_) => {
                return Err(error(
                    span,
                    "aliases (*name) are not supported: write the value",
                ))
            }
            Event::SequenceStart(..) => {
                stack.push(Open::Seq {
                    line,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Open::Map {
                    line,
                    entries: Vec::new(),
                    key: None,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq { line, items }) => Node {
                    line,
                    kind: Kind::Seq(items),
                },
                Some(Open::Map { line, entries, .. }) => Node {
                    line,
                    kind: Kind::Map(entries),
                },
                None => continue,
            },
            Event::Scalar(text, ..) => Node {
                line,
                kind: Kind::Scalar(Cow::into_owned(text)),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                Some((key, line)) => entries.push(Entry {
                    key,
                    line,
                    value: node,
                }),
                None => match node.kind {
                    Kind::Scalar(text) => *key = Some((text, node.line)),
                    _ => {
                        return Err(SyntaxError {
                            line: node.line,
                            message: "a key must be a plain name, not a list or a mapping".into(),
                        })
                    }
                },
            },
        }
    }
    Ok(root)
}

fn scan_error(e: ScanError) -> SyntaxError {
    SyntaxError {
        line: e.marker().line(),
        message: format!("YAML: {}", e.info()),
    }
}

fn error(span: Span, message: &str) -> SyntaxError {
    SyntaxError {
        line: span.start.line(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(line: usize, text: &str) -> Node {
        Node {
            line,
            kind: Kind::Scalar(text.into()),
        }
    }

    #[test]
    fn mappings_sequences_and_lines() {
        let text = "# comment\nalpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1 one\n   - \"127.0.0.1:6380:1\"\n";
        let root = parse(text).unwrap().unwrap();
        let Kind::Map(pools) = root.kind else {
            panic!("{root:?}")
        };
        assert_eq!((pools[0].key.as_str(), pools[0].line), ("alpha", 2));
        let Kind::Map(keys) = &pools[0].value.kind else {
            panic!()
        };
        let names: Vec<(&str, usize)> = keys.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(names, [("listen", 3), ("redis", 4), ("servers", 5)]);
        assert_eq!(keys[1].value, scalar(4, "true"));
        assert_eq!(
            keys[2].value.kind,
            Kind::Seq(vec![
                scalar(6, "127.0.0.1:6379:1 one"),
                scalar(7, "127.0.0.1:6380:1")
            ])
        );
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_caller_to_report() {
        let root = parse("a:\n  x: 1\n  x: 2\n").unwrap().unwrap();
        let Kind::Map(pools) = root.kind else {
            panic!()
        };
        let Kind::Map(keys) = &pools[0].value.kind else {
            panic!()
        };
        assert_eq!(keys.len(), 2);
        assert_eq!((keys[1].line, &keys[1].value), (3, &scalar(3, "2")));
    }

    #[test]
    fn empty_values_and_files() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# nothing\n").unwrap(), None);
        let root = parse("a:\n  redis_auth:\n").unwrap().unwrap();
        let Kind::Map(pools) = root.kind else {
            panic!()
        };
        let Kind::Map(keys) = &pools[0].value.kind else {
            panic!()
        };
        assert_eq!(keys[0].value, scalar(2, ""));
    }

    #[test]
    fn refusals_name_their_line() {
        let alias = parse("a: &x\n  k: 1\nb: *x\n").unwrap_err();
        assert_eq!(alias.line, 3);
        assert!(alias.message.contains("aliases"), "{alias:?}");
        let two = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(two.line, 2);
        let bad = parse("a:\n  k: [1, 2\n").unwrap_err();
        assert!(bad.message.starts_with("YAML: "), "{bad:?}");
        let key = parse("? [a, b]\n: 1\n").unwrap_err();
        assert!(key.message.contains("plain name"), "{key:?}");
    }
}
