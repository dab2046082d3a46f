//! Reading the keys of one mapping (a pool, the `percore:` section) into typed values, every
//! problem recorded with its line, scope and key and the reading carried on, so one check
//! reports all of a file's errors.

use std::time::Duration;

use super::error::{ConfigError, Problem, Scope};
use super::values::parse_digits;
use super::yaml::{Entry, Kind, Node};

/// Records errors for one scope of one file.
pub(super) struct Reader<'a> {
    /// The file's name, for the messages.
    pub file: &'a str,
    /// The pool or section being read.
    pub scope: Option<Scope>,
    /// Where errors go.
    pub errors: &'a mut Vec<ConfigError>,
}

/// The keys of one mapping, each known and given once.
pub(super) struct Fields<'n> {
    entries: Vec<&'n Entry>,
    /// The line of the mapping's own key (the pool's name), for errors about a missing key.
    pub line: usize,
}

impl<'n> Fields<'n> {
    /// The entry for `key`, if given.
    pub fn get(&self, key: &str) -> Option<&'n Entry> {
        self.entries.iter().copied().find(|e| e.key == key)
    }

    /// Whether `key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl Reader<'_> {
    /// Records a problem at `line`, about `key` if given.
    pub fn error(&mut self, line: usize, key: Option<&str>, problem: Problem) {
        self.errors.push(ConfigError {
            file: self.file.into(),
            line,
            scope: self.scope.clone(),
            key: key.map(String::from),
            problem,
        });
    }

    /// The entries of the mapping `node`, the value of a key at `line`, whose keys are in
    /// `known`; an unknown key or a key given twice is reported (and its entry left out), and
    /// so is a value that is not a mapping at all (`None`).
    pub fn fields<'n>(
        &mut self,
        line: usize,
        node: &'n Node,
        known: &[&str],
    ) -> Option<Fields<'n>> {
        let mut fields = Fields {
            entries: Vec::new(),
            line,
        };
        let Kind::Map(entries) = &node.kind else {
            self.error(line, None, Problem::Shape("a mapping of keys to values"));
            return None;
        };
        for entry in entries {
            if !known.contains(&entry.key.as_str()) {
                let problem = Problem::UnknownKey(known.join(", "));
                self.error(entry.line, Some(&entry.key), problem);
            } else if fields.has(&entry.key) {
                self.error(entry.line, Some(&entry.key), Problem::Duplicate);
            } else {
                fields.entries.push(entry);
            }
        }
        Some(fields)
    }

    /// The value's text; a list or mapping, or nothing after the colon, is an error.
    pub fn text<'n>(&mut self, entry: &'n Entry) -> Option<&'n str> {
        match &entry.value.kind {
            Kind::Scalar(text) if text.is_empty() => {
                self.error(entry.line, Some(&entry.key), Problem::Empty);
                None
            }
            Kind::Scalar(text) => Some(text),
            _ => {
                self.error(
                    entry.line,
                    Some(&entry.key),
                    Problem::Shape("a single value"),
                );
                None
            }
        }
    }

    /// A whole number from `min` to `max`, written as digits only (nutcracker's rule).
    pub fn number(&mut self, entry: &Entry, min: u64, max: u64) -> Option<u64> {
        let text = self.text(entry)?;
        let Some(value) = parse_digits(text) else {
            self.error(
                entry.line,
                Some(&entry.key),
                Problem::NotANumber(text.into()),
            );
            return None;
        };
        if value < min || value > max {
            let problem = Problem::Range {
                value: text.into(),
                min,
                max,
            };
            self.error(entry.line, Some(&entry.key), problem);
            return None;
        }
        Some(value)
    }

    /// A whole number of any sign (`slowlog_slower_than`: negative logs nothing).
    pub fn signed(&mut self, entry: &Entry) -> Option<i64> {
        let text = self.text(entry)?;
        let parsed = text.parse().ok();
        if parsed.is_none() {
            self.error(
                entry.line,
                Some(&entry.key),
                Problem::NotANumber(text.into()),
            );
        }
        parsed
    }

    /// Exactly `true` or `false`, as nutcracker reads booleans.
    pub fn boolean(&mut self, entry: &Entry) -> Option<bool> {
        match self.text(entry)? {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                let problem = Problem::NotABool(other.into());
                self.error(entry.line, Some(&entry.key), problem);
                None
            }
        }
    }

    /// A duration: a bare number is milliseconds (as nutcracker's `timeout`), anything else
    /// is read as the flags read it (`5s`, `500ms`, `1m 30s`).
    pub fn duration(&mut self, entry: &Entry) -> Option<Duration> {
        let text = self.text(entry)?;
        if let Some(ms) = parse_digits(text) {
            return Some(Duration::from_millis(ms));
        }
        match humantime::parse_duration(text) {
            Ok(duration) => Some(duration),
            Err(e) => {
                let problem = Problem::Duration {
                    value: text.into(),
                    reason: e.to_string(),
                };
                self.error(entry.line, Some(&entry.key), problem);
                None
            }
        }
    }

    /// A duration more than zero (a timeout, a period).
    pub fn positive_duration(&mut self, entry: &Entry) -> Option<Duration> {
        let duration = self.duration(entry)?;
        if duration.is_zero() {
            self.error(entry.line, Some(&entry.key), Problem::Zero);
            return None;
        }
        Some(duration)
    }

    /// A list of values with their lines: a YAML sequence of single values, or one value,
    /// which is one item. An empty list is an error.
    pub fn list<'n>(&mut self, entry: &'n Entry) -> Option<Vec<(&'n str, usize)>> {
        self.items(entry, None)
    }

    /// A list of `host:port`: as [`Reader::list`], and one value may also hold a
    /// comma-separated list, as the flags take it (`--cluster a:1,b:2`).
    pub fn addresses<'n>(&mut self, entry: &'n Entry) -> Option<Vec<(&'n str, usize)>> {
        self.items(entry, Some(','))
    }

    fn items<'n>(
        &mut self,
        entry: &'n Entry,
        split: Option<char>,
    ) -> Option<Vec<(&'n str, usize)>> {
        let items: Vec<(&str, usize)> = match &entry.value.kind {
            Kind::Scalar(text) => {
                let parts: Vec<&str> = match split {
                    Some(separator) => text.split(separator).map(str::trim).collect(),
                    None => vec![text.as_str()],
                };
                let parts = parts.into_iter().filter(|s| !s.is_empty());
                parts.map(|s| (s, entry.value.line)).collect()
            }
            Kind::Seq(nodes) => {
                let mut items = Vec::with_capacity(nodes.len());
                for node in nodes {
                    match &node.kind {
                        Kind::Scalar(text) if !text.is_empty() => {
                            items.push((text.as_str(), node.line))
                        }
                        _ => self.error(
                            node.line,
                            Some(&entry.key),
                            Problem::Shape("a list of single values"),
                        ),
                    }
                }
                items
            }
            Kind::Map(_) => {
                self.error(entry.line, Some(&entry.key), Problem::Shape("a list"));
                return None;
            }
        };
        if items.is_empty() {
            self.error(entry.line, Some(&entry.key), Problem::EmptyList);
            return None;
        }
        Some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    /// Reads the first pool of `text` with `read`, returning its result and the errors.
    fn read<T>(
        text: &str,
        known: &[&str],
        read: impl FnOnce(&mut Reader, &Fields) -> T,
    ) -> (T, Vec<String>) {
        let root = parse(text).unwrap().unwrap();
        let Kind::Map(pools) = &root.kind else {
            panic!()
        };
        let mut errors = Vec::new();
        let mut reader = Reader {
            file: "t.yml",
            scope: Some(Scope::Pool(pools[0].key.clone())),
            errors: &mut errors,
        };
        let fields = reader
            .fields(pools[0].line, &pools[0].value, known)
            .unwrap();
        let out = read(&mut reader, &fields);
        (out, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn unknown_and_duplicate_keys_are_named_with_their_line() {
        let (_, errors) = read("p:\n  a: 1\n  b: 2\n  a: 3\n", &["a"], |_, _| ());
        assert_eq!(
            errors,
            [
                "t.yml:3: pool 'p' key 'b': unknown key (known: a)",
                "t.yml:4: pool 'p' key 'a': is given twice"
            ]
        );
    }

    #[test]
    fn scalars_by_kind() {
        let text = "p:\n  n: 400\n  neg: -1\n  big: 99\n  t: true\n  cap: True\n  d: 5s\n  ms: 250\n  bad: 5x\n  e:\n  l: [1, 2]\n";
        let known = ["n", "neg", "big", "t", "cap", "d", "ms", "bad", "e", "l"];
        let ((n, neg, big, t, cap), errors) = read(text, &known, |r, f| {
            let d = r.duration(f.get("d").unwrap());
            let ms = r.duration(f.get("ms").unwrap());
            assert_eq!(
                (d, ms),
                (
                    Some(Duration::from_secs(5)),
                    Some(Duration::from_millis(250))
                )
            );
            assert_eq!(r.duration(f.get("bad").unwrap()), None);
            assert_eq!(r.text(f.get("e").unwrap()), None);
            assert_eq!(r.text(f.get("l").unwrap()), None);
            assert_eq!(r.signed(f.get("neg").unwrap()), Some(-1));
            (
                r.number(f.get("n").unwrap(), 0, 1000),
                r.number(f.get("neg").unwrap(), 0, 1000),
                r.number(f.get("big").unwrap(), 0, 10),
                r.boolean(f.get("t").unwrap()),
                r.boolean(f.get("cap").unwrap()),
            )
        });
        assert_eq!(
            (n, neg, big, t, cap),
            (Some(400), None, None, Some(true), None)
        );
        let lines: Vec<&str> = errors
            .iter()
            .map(|e| e.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            lines,
            ["t.yml:9", "t.yml:10", "t.yml:11", "t.yml:3", "t.yml:4", "t.yml:6"]
        );
        assert!(
            errors[4].ends_with("10 is out of range (0 to 10)") || errors[4].contains("99"),
            "{errors:?}"
        );
        assert!(
            errors[5].ends_with("'True' is not true or false"),
            "{errors:?}"
        );
    }

    #[test]
    fn lists_as_sequences_or_comma_separated() {
        let text = "p:\n  s:\n   - a:1\n   - b:2\n  c: a:1, b:2\n  e: []\n";
        let owned = |list: Option<Vec<(&str, usize)>>| {
            list.map(|l| {
                l.into_iter()
                    .map(|(s, n)| (s.to_string(), n))
                    .collect::<Vec<_>>()
            })
        };
        let ((s, c, e), errors) = read(text, &["s", "c", "e"], |r, f| {
            let s = owned(r.list(f.get("s").unwrap()));
            let c = owned(r.addresses(f.get("c").unwrap()));
            assert_eq!(owned(r.list(f.get("c").unwrap())).unwrap().len(), 1);
            (s, c, owned(r.list(f.get("e").unwrap())))
        });
        let pairs = |v: &[(&str, usize)]| v.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(s, Some(pairs(&[("a:1", 3), ("b:2", 4)])));
        assert_eq!(c, Some(pairs(&[("a:1", 5), ("b:2", 5)])));
        assert_eq!(e, None);
        assert_eq!(
            errors,
            ["t.yml:6: pool 'p' key 'e': needs at least one entry"]
        );
    }
}
