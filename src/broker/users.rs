//! Users and RabbitMQ-compatible password hashes, so that users exported
//! from RabbitMQ log in to Warren with their passwords, and back.
//!
//! RabbitMQ's hash: base64(salt ++ H(salt ++ password)) with a 4-byte random
//! salt and H = SHA-256 (`rabbit_password_hashing_sha256`, the default),
//! SHA-512 (`rabbit_password_hashing_sha512`) or MD5
//! (`rabbit_password_hashing_md5`, kept by RabbitMQ for users migrated from
//! 3.5 and older: `rabbit_password:salted_hash/3` is the same for all three).

use base64::Engine;
use md5::Md5;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::store::definitions::UserDef;

const SHA256: &str = "rabbit_password_hashing_sha256";
const SHA512: &str = "rabbit_password_hashing_sha512";
const MD5: &str = "rabbit_password_hashing_md5";

/// The hash new passwords get: RabbitMQ's `password_hashing_module`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashingAlgorithm {
    #[default]
    Sha256,
    Sha512,
    Md5,
}

impl HashingAlgorithm {
    /// Every module name RabbitMQ accepts, in the order errors list them.
    pub const NAMES: [&'static str; 3] = [SHA256, SHA512, MD5];

    /// Reads a module name as rabbitmq.conf and definitions spell it
    /// (`rabbit_password_hashing_sha512`); `sha512` alone is taken too,
    /// for the command line.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.strip_prefix("rabbit_password_hashing_").unwrap_or(name) {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            "md5" => Ok(Self::Md5),
            _ => Err(format!("unknown password hashing module '{name}' (supported: {})", Self::NAMES.join(", "))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => SHA256,
            Self::Sha512 => SHA512,
            Self::Md5 => MD5,
        }
    }

    /// RabbitMQ's stored form: base64(salt ++ H(salt ++ password)) with a
    /// fresh 4-byte salt, as `rabbitmqctl hash_password` prints it.
    pub fn hash_password(self, password: &str) -> String {
        use rand::Rng;
        let salt: [u8; 4] = rand::rng().random();
        let digest = hash(self.as_str(), &salt, password).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    password_hash: String,
    hashing_algorithm: String,
    pub tags: Vec<String>,
    /// RabbitMQ's `loopback_users` default: guest may only log in from loopback.
    pub loopback_only: bool,
    /// Logged in with an OAuth 2.0 token: its scopes are the permissions.
    pub token: Option<std::sync::Arc<super::oauth2::Token>>,
}

fn hash(algorithm: &str, salt: &[u8], password: &str) -> Option<Vec<u8>> {
    let mut out = salt.to_vec();
    match algorithm {
        SHA256 => out.extend(Sha256::new().chain_update(salt).chain_update(password).finalize()),
        SHA512 => out.extend(Sha512::new().chain_update(salt).chain_update(password).finalize()),
        MD5 => out.extend(Md5::new().chain_update(salt).chain_update(password).finalize()),
        _ => return None,
    }
    Some(out)
}

impl User {
    pub fn new(name: &str, password: &str, tags: &[&str]) -> Self {
        Self::with_algorithm(name, password, tags, HashingAlgorithm::default())
    }

    /// A user whose password is hashed with `algorithm` (the broker's
    /// `password_hashing_module`).
    pub fn with_algorithm(name: &str, password: &str, tags: &[&str], algorithm: HashingAlgorithm) -> Self {
        User {
            name: name.to_owned(),
            password_hash: algorithm.hash_password(password),
            hashing_algorithm: algorithm.as_str().into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            loopback_only: name == "guest",
            token: None,
        }
    }

    /// A user from its definition; one without a `hashing_algorithm` gets
    /// `default` (the broker's `password_hashing_module`).
    pub fn from_def(d: &UserDef, default: HashingAlgorithm) -> Result<Self, String> {
        let hashing_algorithm =
            if d.hashing_algorithm.is_empty() { default.as_str().to_owned() } else { d.hashing_algorithm.clone() };
        if !d.password_hash.is_empty() && !HashingAlgorithm::NAMES.contains(&hashing_algorithm.as_str()) {
            return Err(format!(
                "user '{}': unsupported hashing_algorithm '{}' (supported: {})",
                d.name,
                hashing_algorithm,
                HashingAlgorithm::NAMES.join(", ")
            ));
        }
        let tags = match &d.tags {
            Value::String(s) => s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
            Value::Array(a) => a.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
            _ => Vec::new(),
        };
        Ok(User {
            name: d.name.clone(),
            password_hash: d.password_hash.clone(),
            hashing_algorithm,
            tags,
            loopback_only: d.name == "guest",
            token: None,
        })
    }

    pub fn to_def(&self) -> UserDef {
        UserDef {
            name: self.name.clone(),
            password_hash: self.password_hash.clone(),
            hashing_algorithm: self.hashing_algorithm.clone(),
            tags: Value::Array(self.tags.iter().map(|t| Value::String(t.clone())).collect()),
            limits: None,
        }
    }

    /// An empty hash (a passwordless user) never matches, as in RabbitMQ.
    /// The digests are compared in constant time, so how long a refusal
    /// takes says nothing about how much of the digest a guess got right.
    pub fn check_password(&self, password: &str) -> bool {
        let Ok(stored) = base64::engine::general_purpose::STANDARD.decode(&self.password_hash) else { return false };
        if stored.len() < 5 {
            return false;
        }
        hash(&self.hashing_algorithm, &stored[..4], password).is_some_and(|h| bool::from(h.ct_eq(&stored)))
    }

    /// The work of [`User::check_password`] for a user that does not exist
    /// (one salted SHA-256 and a constant-time compare against a stored-size
    /// digest), so that a refusal takes as long for an unknown user as for a
    /// wrong password and timing does not reveal which user names exist.
    pub fn check_password_of_unknown_user(password: &str) -> bool {
        static DUMMY: std::sync::OnceLock<User> = std::sync::OnceLock::new();
        let dummy = DUMMY.get_or_init(|| User::new("", &format!("{:x}", rand::random::<u128>()), &[]));
        // Its password is random and unknown: the answer is no.
        let _ = std::hint::black_box(dummy.check_password(password));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_a_hash_made_by_rabbitmq() {
        // `rabbitmqctl hash_password guest` style: salt ++ sha256(salt ++ "guest")
        let salt = [0x90, 0xd8, 0x26, 0x5b];
        let mut v = salt.to_vec();
        v.extend(Sha256::new().chain_update(salt).chain_update("guest").finalize());
        let def = UserDef {
            name: "guest".into(),
            password_hash: base64::engine::general_purpose::STANDARD.encode(v),
            hashing_algorithm: SHA256.into(),
            tags: Value::String("administrator".into()),
            limits: None,
        };
        let u = User::from_def(&def, HashingAlgorithm::default()).unwrap();
        assert!(u.check_password("guest"));
        assert!(!u.check_password("Guest"));
        assert_eq!(u.tags, vec!["administrator"]);
        assert!(u.loopback_only);
    }

    #[test]
    fn md5_and_sha512_hashes_are_checked_and_made() {
        // base64(salt ++ md5(salt ++ "secret")) for salt 01 02 03 04, computed
        // independently (python3 hashlib) and accepted by RabbitMQ 3.10.8 as a
        // `rabbit_password_hashing_md5` password_hash (and "Secret" refused).
        let def = UserDef {
            name: "old".into(),
            password_hash: "AQIDBDgk9ci8Lfh6CKE9Y0AUfmU=".into(),
            hashing_algorithm: MD5.into(),
            tags: Value::String(String::new()),
            limits: None,
        };
        let u = User::from_def(&def, HashingAlgorithm::default()).unwrap();
        assert!(u.check_password("secret"));
        assert!(!u.check_password("Secret"));
        for alg in [HashingAlgorithm::Md5, HashingAlgorithm::Sha512, HashingAlgorithm::Sha256] {
            let u = User::with_algorithm("n", "pw", &[], alg);
            let back = User::from_def(&u.to_def(), HashingAlgorithm::default()).unwrap();
            assert_eq!(back.to_def().hashing_algorithm, alg.as_str());
            assert!(back.check_password("pw"), "{alg:?}");
            assert!(!back.check_password("pw2"), "{alg:?}");
        }
        assert_eq!(HashingAlgorithm::parse("rabbit_password_hashing_sha512"), Ok(HashingAlgorithm::Sha512));
        assert_eq!(HashingAlgorithm::parse("md5"), Ok(HashingAlgorithm::Md5));
        assert!(HashingAlgorithm::parse("rabbit_password_hashing_bcrypt").unwrap_err().contains("supported"));
    }

    #[test]
    fn unknown_users_do_the_same_work_and_never_match() {
        assert!(!User::check_password_of_unknown_user(""));
        assert!(!User::check_password_of_unknown_user("guest"));
        // Digests of other lengths (a truncated hash in a definitions file) are no match.
        let mut u = User::new("u", "pw", &[]);
        u.password_hash = base64::engine::general_purpose::STANDARD.encode([1u8, 2, 3, 4, 5, 6]);
        assert!(!u.check_password("pw"));
    }

    #[test]
    fn new_users_round_trip_through_definitions() {
        let u = User::new("app", "s3cret", &["management"]);
        assert!(u.check_password("s3cret"));
        let back = User::from_def(&u.to_def(), HashingAlgorithm::default()).unwrap();
        assert!(back.check_password("s3cret"));
        assert!(!back.loopback_only);
    }
}
