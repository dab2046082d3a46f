//! The credentials of a pool: the password percore gives its backends (`redis_auth`,
//! nutcracker's, or `backend_password` with `backend_user`), and the users clients log in as
//! (`requirepass`, `users:`, in `--user`'s ACL words). A `*_env` key names an environment
//! variable holding the secret instead, so the file itself can be shared.

use std::fmt;

use super::error::Problem;
use super::pool::one_of;
use super::read::{Fields, Reader};
use super::yaml::Kind;
use super::BackendAuth;
use crate::auth::{User, Users};

/// The client passwords as written, kept to rebuild users when a flag replaces some.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ClientAuth {
    /// `requirepass` (or the variable `requirepass_env` names).
    pub requirepass: Option<String>,
    /// `users:` definitions, ACL words.
    pub definitions: Vec<String>,
}

impl fmt::Debug for ClientAuth {
    /// Never prints passwords: configurations are logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field(
                "requirepass",
                &self.requirepass.as_ref().map(|_| "<redacted>"),
            )
            .field("users", &self.definitions.len())
            .finish()
    }
}

/// The value of `key`, or of the environment variable `<key>_env` names.
fn secret(
    reader: &mut Reader,
    fields: &Fields,
    keys: &[&'static str],
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let entry = one_of(reader, fields, keys)?;
    let text = match &entry.value.kind {
        // nutcracker takes `redis_auth:` with nothing after it as no password.
        Kind::Scalar(text) if text.is_empty() && entry.key == "redis_auth" => return None,
        _ => reader.text(entry)?,
    };
    if !entry.key.ends_with("_env") {
        return Some(text.into());
    }
    let value = env(text);
    if value.is_none() {
        reader.error(entry.line, Some(&entry.key), Problem::EnvUnset(text.into()));
    }
    value
}

/// `sentinel_password` / `sentinel_password_env`: what percore gives the Sentinels (AUTH
/// with that password, as a Sentinel's `requirepass` asks). Only a pool with `sentinels:` has a
/// use for it (`with_sentinels`).
pub(super) fn read_sentinel_auth(
    reader: &mut Reader,
    fields: &Fields,
    with_sentinels: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<BackendAuth> {
    let keys = ["sentinel_password", "sentinel_password_env"];
    if !with_sentinels {
        for entry in keys.iter().filter_map(|key| fields.get(key)) {
            reader.error(entry.line, Some(&entry.key), Problem::OnlyFor("sentinels:"));
        }
        return None;
    }
    let password = secret(reader, fields, &keys, env)?;
    Some(BackendAuth {
        user: None,
        password,
    })
}

/// `redis_auth` / `backend_password` / `backend_password_env`, and `backend_user`.
pub(super) fn read_backend_auth(
    reader: &mut Reader,
    fields: &Fields,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<BackendAuth> {
    let keys = ["redis_auth", "backend_password", "backend_password_env"];
    let password = secret(reader, fields, &keys, env);
    let user = fields
        .get("backend_user")
        .and_then(|e| reader.text(e).map(String::from));
    match (user, password) {
        (user, Some(password)) => Some(BackendAuth { user, password }),
        (Some(_), None) => {
            if !keys.iter().any(|k| fields.has(k)) {
                let line = fields.get("backend_user").map_or(fields.line, |e| e.line);
                reader.error(line, Some("backend_user"), Problem::UserWithoutPassword);
            }
            None
        }
        (None, None) => None,
    }
}

/// `requirepass` / `requirepass_env` and `users:`, checked as `--user` definitions.
/// `redis_auth` is the password clients must give when neither is set, as in nutcracker,
/// which refuses its clients' requests until they AUTH with it.
pub(super) fn read_client_auth(
    reader: &mut Reader,
    fields: &Fields,
    env: &dyn Fn(&str) -> Option<String>,
    redis_auth: Option<&str>,
) -> (ClientAuth, Users) {
    let requirepass = secret(reader, fields, &["requirepass", "requirepass_env"], env);
    let requirepass = match (requirepass, fields.has("users")) {
        (None, false) => redis_auth.map(String::from),
        (requirepass, _) => requirepass,
    };
    let mut definitions = Vec::new();
    if let Some(entry) = fields.get("users") {
        for (definition, line) in reader.list(entry).unwrap_or_default() {
            match User::parse(definition) {
                Ok(_) => definitions.push(definition.to_string()),
                Err(e) => reader.error(line, Some("users"), Problem::User(e)),
            }
        }
    }
    let users = match Users::new(requirepass.as_deref(), &definitions) {
        Ok(users) => users,
        Err(e) => {
            let line = fields.get("users").map_or(fields.line, |e| e.line);
            reader.error(line, Some("users"), Problem::User(e));
            Users::default()
        }
    };
    (
        ClientAuth {
            requirepass,
            definitions,
        },
        users,
    )
}
