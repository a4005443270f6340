//! Container ids and names: random 64-hex ids, Docker-style `adjective_surname` names, and the
//! rule user-chosen names follow.

use std::io::Read;

use crate::error::ContainerError;

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "bright", "calm", "clever", "cool", "crisp", "eager", "fair", "fond",
    "gentle", "glad", "happy", "hardy", "keen", "kind", "lively", "lucid", "merry", "modest",
    "neat", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid",
    "ready", "sharp", "sleek", "smart", "solid", "steady", "sunny", "swift", "tidy", "vivid",
    "warm", "wise", "witty", "zesty",
];

/// Computing and systems pioneers.
const SURNAMES: &[&str] = &[
    "allen",
    "babbage",
    "backus",
    "bartik",
    "berners",
    "bose",
    "cerf",
    "church",
    "codd",
    "conway",
    "cray",
    "dijkstra",
    "easley",
    "engelbart",
    "feynman",
    "floyd",
    "goldberg",
    "hamilton",
    "hopper",
    "kahn",
    "kay",
    "knuth",
    "lamport",
    "liskov",
    "lovelace",
    "mccarthy",
    "meitner",
    "minsky",
    "noether",
    "perlman",
    "ritchie",
    "shannon",
    "sammet",
    "thompson",
    "torvalds",
    "turing",
    "wilkes",
    "wing",
    "wozniak",
];

/// 32 random bytes from the kernel as 64 lowercase hex characters (container ids, and
/// the names of anonymous volumes).
pub fn random_id() -> Result<String, ContainerError> {
    let mut bytes = [0u8; 32];
    let path = "/dev/urandom";
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(ContainerError::io("reading", path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A Docker-style name picked with the id's randomness (`nimble_lovelace`).
pub(crate) fn generated_name(id: &str, attempt: usize) -> String {
    let n = u64::from_str_radix(&id[..16.min(id.len())], 16).unwrap_or(0);
    let adjective = ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize];
    let surname = SURNAMES[((n >> 16) % SURNAMES.len() as u64) as usize];
    if attempt == 0 {
        format!("{adjective}_{surname}")
    } else {
        format!("{adjective}_{surname}{attempt}")
    }
}

/// Docker's rule for `--name`: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; a leading `/` is accepted and dropped.
pub(crate) fn validate_name(name: &str) -> Result<String, ContainerError> {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ContainerError::InvalidOption {
            option: "--name",
            value: name.to_owned(),
            reason: "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_docker_rules() {
        for good in ["web", "/web", "a.b-c_1", "9lives"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        assert_eq!(validate_name("/web").unwrap(), "web");
        for bad in ["", "-web", "_x", "a b", "a/b", "ünï"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let id = random_id().unwrap();
        let name = generated_name(&id, 0);
        assert!(validate_name(&name).is_ok(), "{name}");
        assert_ne!(generated_name(&id, 1), name);
    }
}
