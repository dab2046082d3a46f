//! Inline requests (`SET k "a b"` typed into telnet or `redis-cli` piping plain lines): one line
//! split into arguments exactly as Redis's `sdssplitargs` splits it, quotes and escapes
//! included, so the proxy and the node never disagree on what an inline request meant.

/// Splits an inline line into arguments the way Redis's `sdssplitargs` does. `None` means
/// unbalanced quotes.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Some(args);
        }
        let mut arg = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let Some(&c) = line.get(i) else {
                if in_double || in_single {
                    return None;
                }
                break;
            };
            if in_double {
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        arg.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    arg.push(match line[i + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    i += 2;
                    continue;
                }
                if c == b'"' {
                    // A closing quote must be followed by a space or the end of the line.
                    if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                arg.push(c);
            } else if in_single {
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    arg.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                        return None;
                    }
                    i += 1;
                    break;
                }
                arg.push(c);
            } else {
                match c {
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    c if is_space(c) => break,
                    c => arg.push(c),
                }
            }
            i += 1;
        }
        args.push(arg);
    }
}

/// White space as C's `isspace` sees it, which is what `sdssplitargs` splits on.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes()).map(|args| {
            args.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        })
    }

    #[test]
    fn splits_like_sdssplitargs() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("", Some(&[])),
            ("  get   k  ", Some(&["get", "k"])),
            ("set k \"a b\"", Some(&["set", "k", "a b"])),
            ("set k \"\\x41\\t\"", Some(&["set", "k", "A\t"])),
            ("set k 'it\\'s'", Some(&["set", "k", "it's"])),
            ("set k \"\"", Some(&["set", "k", ""])),
            ("set k \"abc", None),
            ("set k \"abc\"x", None),
            ("set k 'abc'x", None),
        ];
        for (line, expected) in cases {
            let expected = expected.map(|a| a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(split(line), expected, "{line:?}");
        }
    }
}
