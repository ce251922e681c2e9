//! Form and query parameters, parsed by the rules of RFC 6749 §3.1 and §3.2:
//! "Parameters sent without a value MUST be treated as if they were omitted from the request"
//! and "Request and response parameters MUST NOT be included more than once."

use crate::error::OAuthError;

/// Largest query string or form body Tessera accepts, in bytes.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;
/// Largest number of parameters in one request.
pub const MAX_PARAMS: usize = 64;
/// Largest single value; no OAuth parameter Tessera reads is legitimately longer.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Parsed parameters: unique names, non-empty values. The decoded names and values sit back to
/// back in one string (not two allocations per parameter, as when each was a `String`).
#[derive(Clone, Default)]
pub struct Params {
    /// Every decoded name and value, back to back.
    text: String,
    /// Per parameter: where its name ends and where its value ends in `text` (its name starts
    /// where the previous value ended).
    ends: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.pairs()).finish()
    }
}

impl Params {
    /// Parse `application/x-www-form-urlencoded` bytes (a query string or a body).
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        if input.len() > MAX_PARAMS_BYTES {
            return Err(OAuthError::invalid_request("request parameters are too large"));
        }
        let Ok(input) = std::str::from_utf8(input) else {
            return Err(OAuthError::invalid_request("request parameters are not valid UTF-8"));
        };
        let mut p = Self { text: String::with_capacity(input.len()), ends: Vec::new() };
        for pair in input.split('&').filter(|p| !p.is_empty()) {
            // Splitting valid UTF-8 at ASCII bytes leaves valid UTF-8.
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let start = p.text.len();
            decode_into(name, &mut p.text);
            let name_end = p.text.len();
            if name_end == start {
                continue;
            }
            if p.ends.len() >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            decode_into(value, &mut p.text);
            let (name, value) = (&p.text[start..name_end], &p.text[name_end..]);
            if value.len() > MAX_VALUE_BYTES {
                return Err(OAuthError::invalid_request(format!("parameter {} is too long", safe_name(name))));
            }
            if value.contains('\u{fffd}') {
                return Err(OAuthError::invalid_request(format!("parameter {} is not valid UTF-8", safe_name(name))));
            }
            if p.pairs().any(|(n, _)| n == name) {
                return Err(OAuthError::invalid_request(format!("parameter {} is repeated", safe_name(name))));
            }
            // RFC 6749 §3.1: sent without a value = omitted. Still counted for repetition above.
            p.ends.push((name_end, p.text.len()));
        }
        Ok(p)
    }

    /// Every (name, value), in the order sent.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(name_end, value_end)| {
            let pair = (&self.text[start..name_end], &self.text[name_end..value_end]);
            start = value_end;
            pair
        })
    }

    /// The value of `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs().find(|(n, _)| *n == name).map(|(_, v)| v).filter(|v| !v.is_empty())
    }

    /// The value of `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }

    /// True when `name` was sent with a non-empty value.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Append one name or value of application/x-www-form-urlencoded, decoded (the WHATWG URL
/// standard's parser, as the `form_urlencoded` crate implements it). A component without `%`
/// or `+` (a token, a client id: the common case) is copied as it is.
fn decode_into(c: &str, out: &mut String) {
    if memchr::memchr2(b'%', b'+', c.as_bytes()).is_none() {
        out.push_str(c);
    } else {
        let plus_as_space: Vec<u8> = c.bytes().map(|b| if b == b'+' { b' ' } else { b }).collect();
        out.push_str(&percent_encoding::percent_decode(&plus_as_space).decode_utf8_lossy());
    }
}

/// A parameter name cut down for inclusion in an error description.
fn safe_name(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str) -> Result<Params, String> {
        Params::parse(input.as_bytes()).map_err(|e| e.to_string())
    }

    /// RFC 6749 §3.1: parameters MUST NOT be included more than once.
    #[test]
    fn rfc6749_3_1_repeated_parameter_is_invalid_request() {
        let err = check("client_id=a&scope=x&client_id=b").unwrap_err();
        assert_eq!(err, "invalid_request: parameter client_id is repeated");
        // Even when one of the two copies is empty.
        assert!(check("state=&state=x").is_err());
    }

    /// RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    #[test]
    fn rfc6749_3_1_empty_value_is_omitted() {
        let p = check("state=&scope=a").unwrap();
        assert_eq!(p.get("state"), None);
        assert_eq!(p.get("scope"), Some("a"));
        assert_eq!(p.require("state").unwrap_err().to_string(), "invalid_request: missing parameter state");
    }

    #[test]
    fn percent_decoding_and_plus() {
        let p = check("redirect_uri=https%3A%2F%2Fa.example%2Fcb&scope=a+b").unwrap();
        assert_eq!(p.get("redirect_uri"), Some("https://a.example/cb"));
        assert_eq!(p.get("scope"), Some("a b"));
    }

    #[test]
    fn oversized_and_hostile_input_is_refused() {
        assert!(check(&"a=b&".repeat(5000)).is_err());
        assert!(check(&format!("x={}", "y".repeat(MAX_VALUE_BYTES + 1))).is_err());
        let many: Vec<String> = (0..100).map(|i| format!("p{i}=v")).collect();
        assert!(check(&many.join("&")).is_err());
        assert!(Params::parse(b"a=\xff\xfe").is_err());
        assert!(check("a=%ff").is_err());
        // U+FFFD sent as it is, or percent-encoded, in a value (not in another parameter).
        assert!(check("b=1&a=x\u{fffd}").is_err());
        assert!(check("b=1&a=%EF%BF%BD").is_err());
        assert_eq!(check("\u{fffd}=1&b=2").unwrap().get("b"), Some("2"));
    }

    /// The pair decoder agrees with the `form_urlencoded` crate (the WHATWG parser) on plain,
    /// escaped, `+`, bare-name, `=`-in-value, empty-pair and invalid-escape input.
    #[test]
    fn decoding_matches_the_whatwg_parser() {
        for input in [
            "a=b&c=d",
            "token=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig_-&token_type_hint=access_token",
            "redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=notes.read+notes.write",
            "a+b=c+d%2Be&&x=1=2&=novalue&bare&%zz=%4&u=%C3%A9",
            "k=%FF%FE",
            "=%3D&%3D=&a==b",
        ] {
            let decode = |c: &str| {
                let mut s = String::new();
                decode_into(c, &mut s);
                s
            };
            let ours: Vec<(String, String)> =
                input.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, ""))).map(|(a, b)| (decode(a), decode(b))).collect();
            let theirs: Vec<(String, String)> = form_urlencoded::parse(input.as_bytes()).map(|(a, b)| (a.into_owned(), b.into_owned())).collect();
            assert_eq!(ours, theirs, "{input}");
        }
    }
}

/// Property-based tests of RFC 6749 §3.1/§3.2 parameter parsing on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Names and values as a client may send them: any Unicode (U+FFFD is refused in values,
    /// so generated values leave it out), percent signs, plus signs, `&` and `=` included.
    fn component(max: usize) -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(any::<char>(), 0..max).prop_map(|v| v.into_iter().collect::<String>()),
            proptest::string::string_regex(&format!("[a-z0-9_%+&=. é☃-]{{0,{max}}}")).unwrap(),
        ]
    }

    fn pairs() -> impl Strategy<Value = BTreeMap<String, String>> {
        proptest::collection::btree_map(
            component(12).prop_filter("non-empty name", |n| !n.is_empty()),
            component(24).prop_map(|v| v.replace('\u{fffd}', "")),
            0..24,
        )
    }

    fn encode(pairs: &[(&str, &str)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }

    proptest! {
        /// RFC 6749 §3.1: arbitrary bytes (invalid UTF-8, huge input) never panic.
        #[test]
        /// (A random chunk repeated up to past the size limit: huge input, cheaply made.)
        #[test]
        fn rfc6749_3_1_arbitrary_bytes_never_panic(chunk in proptest::collection::vec(any::<u8>(), 0..600), times in 1usize..40) {
            let _ = Params::parse(&chunk);
            let _ = Params::parse(&chunk.repeat(times));
        }

        /// RFC 6749 §3.1: arbitrary text made of the characters that matter to the parser.
        #[test]
        fn rfc6749_3_1_arbitrary_text_never_panics(chunk in proptest::string::string_regex("([a-z%+&=]|%[0-9a-fA-F]{0,2}|\u{fffd}|é){0,100}").unwrap(), times in 1usize..200) {
            let _ = Params::parse(chunk.as_bytes());
            let _ = Params::parse(chunk.repeat(times).as_bytes());
        }

        /// RFC 6749 §3.1 and Appendix B: pairs serialized with application/x-www-form-urlencoded
        /// parse back to the same pairs, in order; empty values are kept as omitted.
        #[test]
        fn rfc6749_3_1_form_encoding_round_trips(map in pairs()) {
            let list: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let encoded = encode(&list);
            let parsed = Params::parse(encoded.as_bytes());
            if encoded.len() > MAX_PARAMS_BYTES {
                prop_assert!(parsed.is_err());
            } else {
                let parsed = parsed.unwrap();
                prop_assert_eq!(parsed.pairs().collect::<Vec<_>>(), list.clone());
                for (k, v) in &list {
                    prop_assert_eq!(parsed.get(k), (!v.is_empty()).then_some(*v));
                }
            }
        }

        /// RFC 6749 §3.1: "parameters MUST NOT be included more than once", whatever the value
        /// of either copy (an empty one included) and wherever the copy sits.
        #[test]
        fn rfc6749_3_1_repeated_parameter_is_refused(map in pairs().prop_filter("one pair at least", |m| !m.is_empty()), pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), value in component(8)) {
            let mut list: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let name = list[pick.index(list.len())].0;
            list.insert(at.index(list.len() + 1), (name, &value));
            let err = Params::parse(encode(&list).as_bytes()).unwrap_err();
            prop_assert_eq!(err.code, crate::ErrorCode::InvalidRequest);
        }

        /// Whatever parses agrees with the WHATWG parser (the `form_urlencoded` crate) pair for
        /// pair: no parameter is read differently by Tessera and by the libraries clients use.
        #[test]
        fn rfc6749_3_1_parse_agrees_with_the_whatwg_parser(input in proptest::string::string_regex("([a-z+&=]|%[0-9a-fA-F]{0,2}|é|☃){0,200}").unwrap()) {
            if let Ok(p) = Params::parse(input.as_bytes()) {
                let theirs: Vec<(String, String)> = form_urlencoded::parse(input.as_bytes()).filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                let ours: Vec<(String, String)> = p.pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                prop_assert_eq!(ours, theirs);
            }
        }

        /// Size limits: more than MAX_PARAMS parameters, or a value over MAX_VALUE_BYTES, is
        /// refused with invalid_request (bounded work per request).
        #[test]
        fn rfc6749_3_1_limits_are_enforced(extra in 1usize..40, long in MAX_VALUE_BYTES + 1..MAX_VALUE_BYTES + 200) {
            let many: Vec<String> = (0..MAX_PARAMS + extra).map(|i| format!("p{i}=v")).collect();
            prop_assert!(Params::parse(many.join("&").as_bytes()).is_err());
            let big = format!("x={}", "y".repeat(long));
            prop_assert!(Params::parse(big.as_bytes()).is_err());
        }
    }
}
