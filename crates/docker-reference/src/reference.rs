//! Image references parsed and normalised as Docker does (`docker/distribution/reference`,
//! `ParseNormalizedNamed`): `base` is `docker.io/library/base:latest`, `127.0.0.1:5000/test:1`
//! keeps its registry, `name@sha256:<hex>` is a digest reference.

use std::fmt;

use digest_set::Digest;

/// Docker Hub's registry name.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository name (domain and path) Docker accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid reference. Messages follow docker/distribution's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("invalid reference {input:?}: repository name must have at least one component")]
    Empty {
        /// The input.
        input: String,
    },
    /// A bare 64-hex string cannot be a repository name.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexName {
        /// The input.
        input: String,
    },
    /// The repository name has upper-case letters.
    #[error("invalid reference format {input:?}: repository name must be lowercase")]
    Uppercase {
        /// The input.
        input: String,
    },
    /// The name is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("invalid reference {input:?}: repository name must not be more than 255 characters")]
    TooLong {
        /// The input.
        input: String,
    },
    /// Anything else wrong with the syntax.
    #[error("invalid reference format {input:?}: {reason}")]
    Format {
        /// The input.
        input: String,
        /// What is wrong.
        reason: String,
    },
}

/// A normalised named reference: domain, path, and an optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `path-component := [a-z0-9]+ (separator [a-z0-9]+)*`, `separator := [_.] | __ | -+`.
fn valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `domain := component ('.' component)* (':' [0-9]+)?`.
fn valid_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if host.is_empty() {
        return false;
    }
    host.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
    })
}

/// `tag := [\w][\w.-]{0,127}`.
pub fn valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

fn is_64_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl Reference {
    /// `ParseNormalizedNamed`: parses a reference as the docker CLI and dockerd accept it.
    ///
    /// ```
    /// use docker_reference::Reference;
    /// let r = Reference::parse_normalized("base").expect("valid");
    /// assert_eq!(r.to_string(), "docker.io/library/base");
    /// assert_eq!(r.with_default_tag().familiar_string(), "base:latest");
    /// let r = Reference::parse_normalized("127.0.0.1:5000/test:1").expect("valid");
    /// assert_eq!(r.familiar_name(), "127.0.0.1:5000/test");
    /// assert!(Reference::parse_normalized("Base").is_err());
    /// ```
    pub fn parse_normalized(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.to_owned(),
            });
        }
        if is_64_hex(input) {
            return Err(ReferenceError::HexName {
                input: input.to_owned(),
            });
        }
        let format = |reason: &str| ReferenceError::Format {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        // splitDockerDomain
        let (mut domain, mut remainder) = match input.find('/') {
            Some(i) if input[..i].contains(['.', ':']) || &input[..i] == "localhost" => {
                (input[..i].to_owned(), input[i + 1..].to_owned())
            }
            _ => (DEFAULT_DOMAIN.to_owned(), input.to_owned()),
        };
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_owned();
        }
        if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
            remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
        }
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::Uppercase {
                input: input.to_owned(),
            });
        }
        // docker/distribution's grammar makes the domain optional: when what was split off as
        // a domain is not one (`a.0__b/c`), the whole name may still be path components, and
        // then the reference has no domain at all.
        let mut no_domain = false;
        if !valid_domain(&domain) {
            no_domain = true;
        }
        // name [":" tag] ["@" digest]
        let (name_tag, digest) = match remainder.split_once('@') {
            Some((nt, d)) => (nt, Some(d)),
            None => (&remainder[..], None),
        };
        let (path, tag) = match name_tag.rsplit_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (name_tag, None),
        };
        if path.is_empty() {
            return Err(format("repository name must have at least one component"));
        }
        let (domain, path) = if no_domain {
            let whole = format!("{domain}/{path}");
            if !whole.split('/').all(valid_path_component) {
                return Err(format("invalid registry host"));
            }
            (String::new(), whole)
        } else {
            (domain, path.to_owned())
        };
        let path = path.as_str();
        if !path.split('/').all(valid_path_component) {
            return Err(format(
                "repository name components must be lowercase letters, digits and separators (., _, __, -)",
            ));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(format("tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"));
        }
        let digest = match digest {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|e| format(&format!("invalid digest: {e}")))?,
            ),
            None => None,
        };
        if domain.len() + usize::from(!domain.is_empty()) + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong {
                input: input.to_owned(),
            });
        }
        Ok(Reference {
            domain,
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host (`docker.io` for Docker Hub).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path (`library/base`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full name: `docker.io/library/base`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The name as users write it: `base`, `peer/base`, `127.0.0.1:5000/test`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The reference as users write it: `base:latest`, `test@sha256:...`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// `TagNameOnly`: adds the tag `latest` when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The reference without tag and digest.
    pub fn trim(&self) -> Self {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The same name with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Format {
                input: tag.to_owned(),
                reason: "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}".to_owned(),
            });
        }
        let mut r = self.trim();
        r.tag = Some(tag.to_owned());
        Ok(r)
    }

    /// The same name with `digest` (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        let mut r = self.trim();
        r.digest = Some(digest);
        r
    }

    /// True for a digest (canonical) reference.
    pub fn is_canonical(&self) -> bool {
        self.digest.is_some()
    }

    /// `reference.FamiliarMatch`: `pattern` (Go `path.Match` syntax) against the familiar
    /// string, then against the familiar name.
    pub fn familiar_match(&self, pattern: &str) -> Result<bool, PatternError> {
        let m = path_match(pattern, &self.familiar_string())?;
        if m {
            return Ok(true);
        }
        path_match(pattern, &self.familiar_name())
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/base:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A malformed `path.Match` pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern {pattern:?}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
}

/// Go's `path.Match`: `*` (any run of non-`/`), `?` (one non-`/`), `[...]` classes with
/// ranges and `^` negation, `\` escapes.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, PatternError> {
    let err = || PatternError {
        pattern: pattern.to_owned(),
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first, as Go reports bad patterns even on early mismatch.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(err());
                }
                i += 2;
            }
            '[' => {
                i = class_end(&p, i).ok_or_else(err)?;
            }
            _ => i += 1,
        }
    }
    Ok(match_from(&p, 0, &n, 0))
}

/// Index just past the class starting at `p[start] == '['`, or None if malformed.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < p.len() && p[i] == '^' {
        i += 1;
    }
    let mut first = true;
    loop {
        if i >= p.len() {
            return None;
        }
        if p[i] == ']' && !first {
            return Some(i + 1);
        }
        first = false;
        // one char (maybe escaped), optionally a range
        let take = |i: &mut usize| -> Option<()> {
            if *i >= p.len() {
                return None;
            }
            if p[*i] == '\\' {
                *i += 1;
                if *i >= p.len() {
                    return None;
                }
            } else if p[*i] == '-' || p[*i] == ']' {
                return None;
            }
            *i += 1;
            Some(())
        };
        take(&mut i)?;
        if i < p.len() && p[i] == '-' {
            i += 1;
            take(&mut i)?;
        }
    }
}

fn class_matches(p: &[char], start: usize, end: usize, c: char) -> bool {
    let mut i = start + 1;
    let negate = i < end && p[i] == '^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    let get = |i: &mut usize| -> char {
        if p[*i] == '\\' {
            *i += 1;
        }
        let ch = p[*i];
        *i += 1;
        ch
    };
    while i < end - 1 {
        let lo = get(&mut i);
        let hi = if i < end - 1 && p[i] == '-' {
            i += 1;
            get(&mut i)
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    matched != negate
}

fn match_from(p: &[char], pi: usize, n: &[char], ni: usize) -> bool {
    if pi == p.len() {
        return ni == n.len();
    }
    match p[pi] {
        '*' => {
            // any run of non-'/' characters
            let mut k = ni;
            loop {
                if match_from(p, pi + 1, n, k) {
                    return true;
                }
                if k >= n.len() || n[k] == '/' {
                    return false;
                }
                k += 1;
            }
        }
        '?' => ni < n.len() && n[ni] != '/' && match_from(p, pi + 1, n, ni + 1),
        '[' => {
            let Some(end) = class_end(p, pi) else {
                return false;
            };
            ni < n.len()
                && n[ni] != '/'
                && class_matches(p, pi, end, n[ni])
                && match_from(p, end, n, ni + 1)
        }
        '\\' => {
            pi + 1 < p.len()
                && ni < n.len()
                && p[pi + 1] == n[ni]
                && match_from(p, pi + 2, n, ni + 1)
        }
        c => ni < n.len() && n[ni] == c && match_from(p, pi + 1, n, ni + 1),
    }
}

/// `ParseAnyReference` plus dockerd's first resolution step: a full image ID
/// (`sha256:<64 hex>` or 64 hex alone) or a named reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyReference {
    /// A full image ID.
    Id(Digest),
    /// A named reference.
    Named(Reference),
}

impl AnyReference {
    /// Parses `input` as dockerd's `ParseAnyReference` does.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if is_64_hex(input)
            && let Ok(d) = format!("sha256:{input}").parse::<Digest>()
        {
            return Ok(AnyReference::Id(d));
        }
        if let Ok(d) = input.parse::<Digest>() {
            return Ok(AnyReference::Id(d));
        }
        Reference::parse_normalized(input).map(AnyReference::Named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("base", "docker.io/library/base", "base"),
            (
                "base:latest",
                "docker.io/library/base:latest",
                "base:latest",
            ),
            ("peer/base:v1", "docker.io/peer/base:v1", "peer/base:v1"),
            ("docker.io/library/base", "docker.io/library/base", "base"),
            ("index.docker.io/foo/bar", "docker.io/foo/bar", "foo/bar"),
            ("localhost/foo", "localhost/foo", "localhost/foo"),
            (
                "127.0.0.1:5000/test:1",
                "127.0.0.1:5000/test:1",
                "127.0.0.1:5000/test:1",
            ),
            ("a.b/c/d/e:t-1.x", "a.b/c/d/e:t-1.x", "a.b/c/d/e:t-1.x"),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b",
                "library/a/b",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = Reference::parse_normalized(input).expect(input);
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar_string(), familiar, "{input}");
        }
        let d = "127.0.0.1:5000/test@sha256:55cedde171f6c6f7dd4a001c6cb59c52e635d0ddd301641a4f2f9733fe7bafe7";
        let r = Reference::parse_normalized(d).expect("digest ref");
        assert!(r.is_canonical());
        assert_eq!(r.familiar_string(), d);
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/test");
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "Base",
            "base:",
            ":tag",
            "a//b",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "base:-x",
            "base@sha256:abc",
            "base@sha256:55CEDDE171f6c6f7dd4a001c6cb59c52e635d0ddd301641a4f2f9733fe7bafe7",
            "7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe",
            "foo bar",
            "ho$t.com/x",
        ] {
            assert!(
                Reference::parse_normalized(bad).is_err(),
                "{bad:?} should fail"
            );
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(matches!(
            Reference::parse_normalized(&long),
            Err(ReferenceError::TooLong { .. })
        ));
        assert!(valid_tag(&"x".repeat(128)));
        assert!(!valid_tag(&"x".repeat(129)));
    }

    #[test]
    fn path_match_like_go() {
        assert_eq!(path_match("base", "base"), Ok(true));
        assert_eq!(path_match("b*", "base"), Ok(true));
        assert_eq!(path_match("*", "peer/base"), Ok(false));
        assert_eq!(path_match("*/*", "peer/base"), Ok(true));
        assert_eq!(path_match("peer/b?se:v[0-9]", "peer/base:v1"), Ok(true));
        assert_eq!(path_match("[^a]*", "base"), Ok(true));
        assert_eq!(path_match("[^b]*", "base"), Ok(false));
        assert!(path_match("[", "x").is_err());
        assert!(path_match("a\\", "a").is_err());
        let r = Reference::parse_normalized("peer/base:v1").expect("valid");
        assert_eq!(r.familiar_match("peer/*"), Ok(true));
        assert_eq!(r.familiar_match("peer/base:v*"), Ok(true));
        assert_eq!(r.familiar_match("base"), Ok(false));
    }

    #[test]
    fn any_reference() {
        let hex = "7db95e6e4fe3a141e68c2ff6cc0267d1fb63728cf6b9fa326a05ecb3b43ea6fe";
        assert!(matches!(AnyReference::parse(hex), Ok(AnyReference::Id(_))));
        assert!(matches!(
            AnyReference::parse(&format!("sha256:{hex}")),
            Ok(AnyReference::Id(_))
        ));
        assert!(matches!(
            AnyReference::parse("7db9"),
            Ok(AnyReference::Named(_))
        ));
    }
}
