//! Who a client is and what it may do: percore's own users, checked by percore itself before a
//! request goes anywhere, in Redis's words (`NOAUTH`, `WRONGPASS`, `NOPERM`).
//!
//! Users are defined with a subset of Redis's ACL rules (`--user "name on >pass ~app:* +@read"`,
//! `--requirepass` for the default user). A rule list is kept as written and evaluated in
//! order, as `ACL SETUSER` does: command rules by category, where a command's categories come
//! from its flags in the command table (`@read`: read-only commands, `@write`, `@admin`), and
//! key patterns in Redis's glob syntax, checked on every key of a command. This is pure: no
//! I/O, nothing per request for a client whose user may run everything on every key.
//!
//! Passwords are compared in constant time (`subtle`), so a wrong password takes as long to
//! reject whatever its length of common prefix.

use std::fmt;

use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::command::table::{CommandFlags, CommandSpec};

use crate::command::glob;

/// The name of the user every connection starts as.
pub const DEFAULT_USER: &str = "default";

/// Why a user definition could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserError {
    /// The definition has no name.
    #[error("a user definition needs a name first")]
    NoName,
    /// A rule percore does not know.
    #[error("user {user}: unsupported ACL rule '{rule}' (known: on off >password nopass ~pattern allkeys resetkeys +@all -@all allcommands nocommands +@read -@read +@write -@write +@admin -@admin)")]
    UnknownRule {
        /// The user.
        user: String,
        /// The rule.
        rule: String,
    },
    /// The same user defined twice.
    #[error("user {0} is defined twice")]
    Duplicate(String),
}

/// A command category, derived from the command's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    /// Every command.
    All,
    /// Commands flagged read-only.
    Read,
    /// Commands flagged write.
    Write,
    /// Commands flagged admin.
    Admin,
}

impl Category {
    fn contains(self, spec: &CommandSpec) -> bool {
        match self {
            Category::All => true,
            Category::Read => spec.flags.contains(CommandFlags::READONLY),
            Category::Write => spec.flags.contains(CommandFlags::WRITE),
            Category::Admin => spec.flags.contains(CommandFlags::ADMIN),
        }
    }
}

/// One user: credentials, command rules, key patterns.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The name, as `AUTH` and `ACL WHOAMI` give it.
    pub name: String,
    /// Whether the user may log in at all (`on`/`off`).
    enabled: bool,
    /// Any password is accepted (`nopass`).
    nopass: bool,
    /// Accepted passwords (`>password`).
    passwords: Vec<String>,
    /// Command rules in the order given: allow (`+`) or deny (`-`) a category.
    commands: Vec<(bool, Category)>,
    /// Key patterns (`~pattern`); `None` is every key (`allkeys`).
    keys: Option<Vec<Vec<u8>>>,
}

impl fmt::Debug for User {
    /// Never prints passwords: configurations are logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("nopass", &self.nopass)
            .field("passwords", &self.passwords.len())
            .field("commands", &self.commands)
            .field("keys", &self.keys.as_ref().map(Vec::len))
            .finish()
    }
}

impl User {
    /// Parses `name rule rule ...`, rules as `ACL SETUSER` takes them. A user starts as Redis
    /// creates one: off, no password, no commands, no keys.
    pub fn parse(definition: &str) -> Result<User, UserError> {
        let mut words = definition.split_whitespace();
        let name = words.next().ok_or(UserError::NoName)?;
        let mut user = User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            commands: Vec::new(),
            keys: Some(Vec::new()),
        };
        for rule in words {
            user.apply(rule).map_err(|()| UserError::UnknownRule {
                user: name.to_string(),
                rule: rule.to_string(),
            })?;
        }
        Ok(user)
    }

    /// The default user when no `--user default` is given: every command on every key, with
    /// `requirepass` as its password if there is one, else any password (no AUTH needed).
    pub fn default_user(requirepass: Option<&str>) -> User {
        User {
            name: DEFAULT_USER.to_string(),
            enabled: true,
            nopass: requirepass.is_none(),
            passwords: requirepass.map(str::to_string).into_iter().collect(),
            commands: vec![(true, Category::All)],
            keys: None,
        }
    }

    fn apply(&mut self, rule: &str) -> Result<(), ()> {
        let category = |name: &str| match name {
            "all" => Ok(Category::All),
            "read" => Ok(Category::Read),
            "write" => Ok(Category::Write),
            "admin" => Ok(Category::Admin),
            _ => Err(()),
        };
        match rule {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "allkeys" => self.keys = None,
            "resetkeys" => self.keys = Some(Vec::new()),
            "allcommands" => self.commands.push((true, Category::All)),
            "nocommands" => self.commands.push((false, Category::All)),
            _ => {
                if let Some(password) = rule.strip_prefix('>') {
                    self.nopass = false;
                    self.passwords.push(password.to_string());
                } else if let Some(pattern) = rule.strip_prefix('~') {
                    if pattern == "*" {
                        self.keys = None;
                    } else if let Some(keys) = &mut self.keys {
                        keys.push(pattern.as_bytes().to_vec());
                    }
                } else if let Some(name) = rule.strip_prefix("+@") {
                    self.commands.push((true, category(name)?));
                } else if let Some(name) = rule.strip_prefix("-@") {
                    self.commands.push((false, category(name)?));
                } else {
                    return Err(());
                }
            }
        }
        Ok(())
    }

    /// Whether `password` logs this user in.
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        // Every password is compared, so the time taken does not tell which one matched.
        let mut matched = self.nopass;
        for known in &self.passwords {
            matched |= bool::from(known.as_bytes().ct_eq(password));
        }
        matched
    }

    /// Whether connections start logged in as this user without AUTH.
    pub fn needs_no_auth(&self) -> bool {
        self.enabled && self.nopass
    }

    /// Whether the user may run every command on every key (then nothing is checked per
    /// request).
    pub fn unrestricted(&self) -> bool {
        self.keys.is_none() && self.commands.last() == Some(&(true, Category::All))
    }

    /// Whether the user may run `spec` (a command or subcommand).
    pub fn may_run(&self, spec: &CommandSpec) -> bool {
        let mut allowed = false;
        for &(allow, category) in &self.commands {
            if category.contains(spec) {
                allowed = allow;
            }
        }
        allowed
    }

    /// Whether the user may run admin commands (which percore's own PROXY commands count as).
    pub fn may_administer(&self) -> bool {
        let mut allowed = false;
        for &(allow, category) in &self.commands {
            if matches!(category, Category::All | Category::Admin) {
                allowed = allow;
            }
        }
        allowed
    }

    /// Whether the user may touch `key`.
    pub fn may_access(&self, key: &[u8]) -> bool {
        match &self.keys {
            None => true,
            Some(patterns) => patterns.iter().any(|pattern| glob::matches(pattern, key)),
        }
    }
}

/// Every user of the proxy. Index 0 is the default user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    users: Vec<User>,
}

impl Default for Users {
    /// Only the default user, with no password: no authentication, as a fresh Redis.
    fn default() -> Self {
        Users {
            users: vec![User::default_user(None)],
        }
    }
}

/// A user of [`Users`], by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserId(usize);

/// Why AUTH failed, each worded as Redis words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    /// Wrong user or password, or the user is off.
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// `AUTH password` while the default user has no password.
    #[error(
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?"
    )]
    NoPasswordConfigured,
}

impl Users {
    /// The users from `--requirepass` and `--user` definitions; a `default` definition
    /// replaces the implicit default user.
    pub fn new(requirepass: Option<&str>, definitions: &[String]) -> Result<Users, UserError> {
        let mut users = vec![User::default_user(requirepass)];
        let mut default_defined = false;
        for definition in definitions {
            let user = User::parse(definition)?;
            if user.name == DEFAULT_USER && !default_defined {
                default_defined = true;
                users[0] = user;
            } else if users.iter().any(|u| u.name == user.name) {
                return Err(UserError::Duplicate(user.name));
            } else {
                users.push(user);
            }
        }
        Ok(Users { users })
    }

    /// The user a new connection is logged in as, if it needs no AUTH.
    pub fn initial(&self) -> Option<UserId> {
        self.users[0].needs_no_auth().then_some(UserId(0))
    }

    /// Whether a user of that name exists.
    pub fn exists(&self, name: &str) -> bool {
        self.users.iter().any(|u| u.name == name)
    }

    /// The user named `name`, if there is one (a reload finds each logged-in client's user
    /// again by name: positions change when users are added or removed).
    pub fn find(&self, name: &str) -> Option<UserId> {
        self.users.iter().position(|u| u.name == name).map(UserId)
    }

    /// The user `id` names.
    pub fn get(&self, id: UserId) -> &User {
        &self.users[id.0]
    }

    /// Logs in as `name` (the default user when `None`) with `password`.
    pub fn authenticate(&self, name: Option<&[u8]>, password: &[u8]) -> Result<UserId, AuthError> {
        if name.is_none() && self.users[0].needs_no_auth() {
            // Redis: one-argument AUTH with no password set is a configuration mistake.
            return Err(AuthError::NoPasswordConfigured);
        }
        let name = name.unwrap_or(DEFAULT_USER.as_bytes());
        let found = self.users.iter().position(|u| u.name.as_bytes() == name);
        match found {
            Some(index) if self.users[index].accepts(password) => Ok(UserId(index)),
            _ => Err(AuthError::WrongPass),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::table::lookup;

    fn spec(name: &str) -> &'static CommandSpec {
        let (command, sub) = name
            .split_once('|')
            .map_or((name, None), |(c, s)| (c, Some(s)));
        let spec = lookup(command.as_bytes()).expect("known command");
        match sub {
            Some(sub) => spec.subcommand(sub.as_bytes()).expect("known subcommand"),
            None => spec,
        }
    }

    #[test]
    fn rules_in_order() {
        let user = User::parse("ro on >pw ~app:* +@read").unwrap();
        assert!(user.accepts(b"pw") && !user.accepts(b"pw2") && !user.accepts(b""));
        assert!(user.may_run(spec("get")) && !user.may_run(spec("set")));
        assert!(
            !user.may_run(spec("ping")),
            "as in Redis, +@read alone excludes PING"
        );
        assert!(user.may_access(b"app:1") && !user.may_access(b"other"));
        assert!(!user.unrestricted());

        let user = User::parse("ops on >x allkeys +@all -@admin").unwrap();
        assert!(user.may_run(spec("set")) && user.may_run(spec("ping")));
        assert!(!user.may_run(spec("config|get")) && !user.may_administer());
        assert!(user.may_access(b"anything") && !user.unrestricted());

        let off = User::parse("gone >pw +@all").unwrap();
        assert!(!off.accepts(b"pw"), "a user is off until 'on'");
        assert!(User::parse("x on +@everything").is_err());
        assert!(User::parse("").is_err());
    }

    #[test]
    fn authentication() {
        let open = Users::default();
        assert_eq!(open.initial(), Some(UserId(0)));
        assert_eq!(
            open.authenticate(None, b"x"),
            Err(AuthError::NoPasswordConfigured)
        );
        assert_eq!(open.authenticate(Some(b"default"), b"x"), Ok(UserId(0)));

        let users =
            Users::new(Some("secret"), &["app on >apppw ~app:* +@all".to_string()]).unwrap();
        assert_eq!(users.initial(), None, "requirepass: AUTH needed");
        assert_eq!(users.authenticate(None, b"secret"), Ok(UserId(0)));
        assert_eq!(
            users.authenticate(None, b"wrong"),
            Err(AuthError::WrongPass)
        );
        assert_eq!(users.authenticate(Some(b"app"), b"apppw"), Ok(UserId(1)));
        assert_eq!(
            users.authenticate(Some(b"nobody"), b"x"),
            Err(AuthError::WrongPass)
        );
        assert!(users.get(UserId(0)).unrestricted());
        assert_eq!(
            (users.find("app"), users.find("nobody")),
            (Some(UserId(1)), None)
        );
        assert_eq!(
            Users::new(None, &["a on".into(), "a off".into()]),
            Err(UserError::Duplicate("a".into()))
        );
        let printed = format!("{users:?}");
        assert!(
            !printed.contains("secret") && !printed.contains("apppw"),
            "{printed}"
        );
    }
}
