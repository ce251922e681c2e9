//! Scopes, RFC 6749 §3.3: "a list of space-delimited, case-sensitive strings",
//! each `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.

use crate::error::OAuthError;
use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens, kept sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parse a `scope` parameter value (RFC 6749 §3.3).
    pub fn parse(s: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ') {
            if token.is_empty() {
                continue;
            }
            if !is_scope_token(token) {
                return Err(OAuthError::invalid_scope("scope contains a character RFC 6749 section 3.3 does not allow"));
            }
            set.insert(token.to_string());
        }
        Ok(Self(set))
    }

    pub fn from_iter<I: IntoIterator<Item = S>, S: Into<String>>(it: I) -> Self {
        Self(it.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    /// True when every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }
    /// Tokens of `self` that `other` lacks.
    pub fn difference(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.difference(&other.0).cloned().collect())
    }
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

/// RFC 6749 §3.3 `scope-token` syntax.
pub fn is_scope_token(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6749 §3.3: space-delimited, order-insensitive, duplicates collapse.
    #[test]
    fn rfc6749_3_3_parse_and_normalise() {
        let s = Scopes::parse("b a  b").unwrap();
        assert_eq!(s.to_string(), "a b");
        assert_eq!(s.len(), 2);
    }

    /// RFC 6749 §3.3: `"` and `\` and controls are not scope-token characters.
    #[test]
    fn rfc6749_3_3_forbidden_characters() {
        for bad in ["a\"b", "a\\b", "a\tb", "é"] {
            assert_eq!(Scopes::parse(bad).unwrap_err().code, crate::ErrorCode::InvalidScope, "{bad}");
        }
    }

    #[test]
    fn set_operations() {
        let want = Scopes::parse("a b c").unwrap();
        let granted = Scopes::parse("a").unwrap();
        assert_eq!(want.difference(&granted).to_string(), "b c");
        assert!(granted.is_subset(&want));
        assert!(!want.is_subset(&granted));
        assert_eq!(granted.union(&Scopes::parse("z").unwrap()).to_string(), "a z");
    }
}

/// Property-based tests of RFC 6749 §3.3 scope parsing on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    const TOKEN: &str = "[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,16}";

    proptest! {
        /// RFC 6749 §3.3: any string is parsed without a panic; what parses holds only
        /// scope-tokens, and its normal form parses back to the same set.
        #[test]
        fn rfc6749_3_3_arbitrary_scope_never_panics(s in prop_oneof![any::<String>(), "[ a-z\"\\\\\t\u{7f}é]{0,40}"]) {
            if let Ok(scopes) = Scopes::parse(&s) {
                prop_assert!(scopes.iter().all(is_scope_token));
                prop_assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes);
            }
        }

        /// RFC 6749 §3.3: "space-delimited, case-sensitive strings" whose order does not
        /// matter: any set of scope-tokens, joined by one or more spaces, parses to that set.
        #[test]
        fn rfc6749_3_3_token_set_round_trips(tokens in proptest::collection::vec(TOKEN, 0..12), gaps in proptest::collection::vec(1usize..4, 13)) {
            let mut s = " ".repeat(gaps[12] - 1);
            for (t, g) in tokens.iter().zip(&gaps) {
                s.push_str(t);
                s.push_str(&" ".repeat(*g));
            }
            let parsed = Scopes::parse(&s).unwrap();
            let want: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
            prop_assert_eq!(parsed.iter().collect::<BTreeSet<_>>(), want.clone());
            prop_assert_eq!(parsed.to_string(), want.into_iter().collect::<Vec<_>>().join(" "));
        }

        /// RFC 6749 §3.3: a character outside scope-token (a quote, a backslash, a control
        /// character, anything non-ASCII) anywhere in a token is invalid_scope.
        #[test]
        fn rfc6749_3_3_forbidden_character_is_invalid_scope(
            token in TOKEN,
            bad in any::<char>().prop_filter("not a scope-token character nor the separator", |c| *c != ' ' && !is_scope_token(c.encode_utf8(&mut [0; 4]))),
            at in any::<prop::sample::Index>(),
        ) {
            let mut t = token;
            t.insert(at.index(t.len() + 1), bad);
            prop_assert_eq!(Scopes::parse(&format!("openid {t}")).unwrap_err().code, crate::ErrorCode::InvalidScope);
        }
    }
}
