//! `wildcard` operands: `*` matches any run of characters, `\*` and `\\` are literals.

/// A parsed wildcard: the literal pieces between the `*`s (`a*b` → `["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wildcard {
    pieces: Vec<String>,
}

impl Wildcard {
    /// Parses with AWS's rules: no two consecutive `*`, and a backslash escapes only `*` or `\`.
    /// Positions in messages are byte offsets, as AWS reports them.
    pub(crate) fn parse(text: &str) -> Result<Wildcard, String> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut current = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' => {
                    if bytes.get(i + 1) == Some(&b'*') {
                        return Err(format!("Consecutive wildcard characters at pos {i}"));
                    }
                    pieces.push(std::mem::take(&mut current));
                }
                b'\\' => match bytes.get(i + 1) {
                    Some(&next @ (b'*' | b'\\')) => {
                        current.push(next);
                        i += 1;
                    }
                    _ => return Err(format!("Invalid escape character at pos {i}")),
                },
                other => current.push(other),
            }
            i += 1;
        }
        pieces.push(current);
        // Splitting only at ASCII bytes keeps every piece valid UTF-8.
        let pieces = pieces
            .into_iter()
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .collect();
        Ok(Wildcard { pieces })
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return value.is_empty(),
        };
        let Some((last, middle)) = rest.split_last() else {
            return value == first;
        };
        if value.len() < first.len() + last.len()
            || !value.starts_with(first.as_str())
            || !value.ends_with(last.as_str())
        {
            return false;
        }
        // Leftmost placement of each middle piece is optimal when `*` is the only metacharacter.
        let mut window = &value[first.len()..value.len() - last.len()];
        for piece in middle {
            match window.find(piece.as_str()) {
                Some(at) => window = &window[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Wildcard;

    fn m(pattern: &str, value: &str) -> bool {
        Wildcard::parse(pattern)
            .map(|w| w.matches(value))
            .unwrap_or(false)
    }

    #[test]
    fn star_matches_runs_and_escapes_are_literal() {
        assert!(m("*", ""));
        assert!(m("a*", "a"));
        assert!(m("*a*b*", "xaxbx"));
        assert!(!m("*ab*ba*", "aba"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\\\b", "a\\b"));
        assert!(m("é*ü", "éaü"));
        assert_eq!(
            Wildcard::parse("a**b").unwrap_err(),
            "Consecutive wildcard characters at pos 1"
        );
        assert_eq!(
            Wildcard::parse("a\\b").unwrap_err(),
            "Invalid escape character at pos 1"
        );
        assert_eq!(
            Wildcard::parse("a\\").unwrap_err(),
            "Invalid escape character at pos 1"
        );
    }
}
