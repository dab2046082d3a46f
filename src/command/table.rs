//! The command table: every command of Redis 7.0 with its arity, the flags percore routes by,
//! its key specs (where its keys are), and its subcommands.
//!
//! The data was generated from `COMMAND` of redis-server 7.0.15, so key positions follow
//! Redis's own key specs exactly, including numkeys-style commands (EVAL, FCALL, ZUNIONSTORE,
//! ZINTERCARD, ...) and keyword searches (XREAD ... STREAMS, MIGRATE ... KEYS). A test
//! compares the table against the live server's answers.
//!
//! Lookup is a binary search over the sorted names with an ASCII case-insensitive comparison:
//! about eight short compares, no allocation.

use std::cmp::Ordering;

/// Command flags percore routes by (a subset of Redis's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandFlags(pub u32);

impl CommandFlags {
    /// No flags.
    pub const NONE: CommandFlags = CommandFlags(0);
    /// Writes data.
    pub const WRITE: CommandFlags = CommandFlags(1);
    /// Only reads data.
    pub const READONLY: CommandFlags = CommandFlags(1 << 1);
    /// Administers the node.
    pub const ADMIN: CommandFlags = CommandFlags(1 << 2);
    /// Pub/sub.
    pub const PUBSUB: CommandFlags = CommandFlags(1 << 3);
    /// Not allowed in scripts.
    pub const NOSCRIPT: CommandFlags = CommandFlags(1 << 4);
    /// May block the connection.
    pub const BLOCKING: CommandFlags = CommandFlags(1 << 5);
    /// Allowed while loading.
    pub const LOADING: CommandFlags = CommandFlags(1 << 6);
    /// Allowed on a stale replica.
    pub const STALE: CommandFlags = CommandFlags(1 << 7);
    /// O(1) or O(log N).
    pub const FAST: CommandFlags = CommandFlags(1 << 8);
    /// Not allowed in MULTI.
    pub const NO_MULTI: CommandFlags = CommandFlags(1 << 9);
    /// Key positions depend on the arguments.
    pub const MOVABLE_KEYS: CommandFlags = CommandFlags(1 << 10);
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: CommandFlags = CommandFlags(1 << 11);

    /// True when every flag of `other` is set.
    pub const fn contains(self, other: CommandFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn union(self, other: CommandFlags) -> CommandFlags {
        CommandFlags(self.0 | other.0)
    }
}

/// One command (or subcommand).
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name; for a subcommand only its own part ("encoding" under "object").
    pub name: &'static str,
    /// Redis arity: positive is exact, negative is a minimum; counts the command name (and for
    /// subcommands, from the parent command's name).
    pub arity: i16,
    /// Flags.
    pub flags: CommandFlags,
    /// Where the keys are.
    pub key_specs: &'static [KeySpec],
    /// Subcommands, sorted by name.
    pub subcommands: &'static [CommandSpec],
}

/// One key spec: where to start looking, then how to find keys from there.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// Where the search starts.
    pub begin: BeginSearch,
    /// How keys are found from there.
    pub find: FindKeys,
    /// Redis marks the spec as possibly missing keys (e.g. SORT's STORE).
    pub incomplete: bool,
}

/// Start of a key search.
#[derive(Clone, Copy, Debug)]
pub enum BeginSearch {
    /// At this argument index.
    Index(u16),
    /// After this keyword, searched from `start_from` (negative: from the end, backwards).
    Keyword {
        /// The keyword, lower-case.
        keyword: &'static str,
        /// Where the search for it starts.
        start_from: i16,
    },
    /// Not described by Redis.
    Unknown,
}

/// How keys are found from the start.
#[derive(Clone, Copy, Debug)]
pub enum FindKeys {
    /// A range: up to `last_key` (relative; negative counts from the end), every `key_step`.
    Range {
        /// Last key, relative to the start; -1 is the last argument.
        last_key: i16,
        /// Step between keys.
        key_step: u16,
        /// With last_key -1: 0 for all, otherwise a divisor of the remaining arguments.
        limit: u16,
    },
    /// The number of keys is an argument.
    KeyNum {
        /// Where the count is, relative to the start.
        key_num_idx: u16,
        /// Where the first key is, relative to the start.
        first_key: u16,
        /// Step between keys.
        key_step: u16,
    },
    /// Not described by Redis.
    Unknown,
}

/// Case-insensitive lookup of a top-level command.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find(COMMANDS, name)
}

impl CommandSpec {
    /// Case-insensitive lookup of a subcommand.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        find(self.subcommands, name)
    }

    /// True when `argc` arguments (including the command name) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let arity = self.arity as i64;
        let argc = argc as i64;
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

fn find(specs: &'static [CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    specs
        .binary_search_by(|spec| compare_lower(spec.name.as_bytes(), name))
        .ok()
        .map(|index| &specs[index])
}

/// Compares a lower-case table name with a name in any case.
fn compare_lower(table: &[u8], name: &[u8]) -> Ordering {
    let common = table.len().min(name.len());
    for i in 0..common {
        match table[i].cmp(&name[i].to_ascii_lowercase()) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    table.len().cmp(&name.len())
}

/// Every Redis 7.0 command, sorted by name (generated data: one entry per command).
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "acl",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "cat",
                arity: -2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "deluser",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "dryrun",
                arity: -4,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "genpass",
                arity: -2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "getuser",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "list",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "load",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "log",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "save",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "setuser",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "users",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "whoami",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "append",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "asking",
        arity: 1,
        flags: CommandFlags::FAST,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "bgrewriteaof",
        arity: 1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "bgsave",
        arity: -1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "bitcount",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bitfield",
        arity: -2,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bitfield_ro",
        arity: -2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bitop",
        arity: -4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(3), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bitpos",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "blmove",
        arity: 6,
        flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT).union(CommandFlags::BLOCKING),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "blmpop",
        arity: -5,
        flags: CommandFlags::WRITE.union(CommandFlags::BLOCKING).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "blpop",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT).union(CommandFlags::BLOCKING),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -2, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "brpop",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT).union(CommandFlags::BLOCKING),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -2, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "brpoplpush",
        arity: 4,
        flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT).union(CommandFlags::BLOCKING),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bzmpop",
        arity: -5,
        flags: CommandFlags::WRITE.union(CommandFlags::BLOCKING).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bzpopmax",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT).union(CommandFlags::BLOCKING).union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -2, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "bzpopmin",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT).union(CommandFlags::BLOCKING).union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -2, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "client",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "caching",
                arity: 3,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "getname",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "getredir",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "id",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "info",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "kill",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "list",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "no-evict",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "pause",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "reply",
                arity: 3,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "setname",
                arity: 3,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "tracking",
                arity: -3,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "trackinginfo",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "unblock",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "unpause",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "cluster",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "addslots",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "addslotsrange",
                arity: -4,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "bumpepoch",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "count-failure-reports",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "countkeysinslot",
                arity: 3,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "delslots",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "delslotsrange",
                arity: -4,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "failover",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "flushslots",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "forget",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "getkeysinslot",
                arity: 4,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "info",
                arity: 2,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "keyslot",
                arity: 3,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "links",
                arity: 2,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "meet",
                arity: -4,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "myid",
                arity: 2,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "nodes",
                arity: 2,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "replicas",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "replicate",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "reset",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "saveconfig",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "set-config-epoch",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "setslot",
                arity: -4,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "shards",
                arity: 2,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "slaves",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "slots",
                arity: 2,
                flags: CommandFlags::STALE,
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "command",
        arity: -1,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "count",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "docs",
                arity: -2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "getkeys",
                arity: -4,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "getkeysandflags",
                arity: -4,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "info",
                arity: -2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "list",
                arity: -2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "config",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "get",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "resetstat",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "rewrite",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "set",
                arity: -4,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "copy",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "dbsize",
        arity: 1,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "debug",
        arity: -2,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "decr",
        arity: 2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "decrby",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "del",
        arity: -2,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "discard",
        arity: 1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "dump",
        arity: 2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "eval",
        arity: -3,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::STALE).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "eval_ro",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "evalsha",
        arity: -3,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::STALE).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "evalsha_ro",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "exec",
        arity: 1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "expire",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "expireat",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "expiretime",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "failover",
        arity: -1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "fcall",
        arity: -3,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::STALE).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "fcall_ro",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "flushall",
        arity: -1,
        flags: CommandFlags::WRITE,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "flushdb",
        arity: -1,
        flags: CommandFlags::WRITE,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "function",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "delete",
                arity: 3,
                flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "dump",
                arity: 2,
                flags: CommandFlags::NOSCRIPT,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "flush",
                arity: -2,
                flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "kill",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::ALLOW_BUSY),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "list",
                arity: -2,
                flags: CommandFlags::NOSCRIPT,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "load",
                arity: -3,
                flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "restore",
                arity: -3,
                flags: CommandFlags::WRITE.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "stats",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::ALLOW_BUSY),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "geoadd",
        arity: -5,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "geodist",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "geohash",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "geopos",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "georadius",
        arity: -6,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Keyword { keyword: "store", start_from: 6 }, find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Keyword { keyword: "storedist", start_from: 6 }, find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "georadius_ro",
        arity: -6,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "georadiusbymember",
        arity: -5,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Keyword { keyword: "store", start_from: 5 }, find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Keyword { keyword: "storedist", start_from: 5 }, find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "georadiusbymember_ro",
        arity: -5,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "geosearch",
        arity: -7,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "geosearchstore",
        arity: -8,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "get",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "getbit",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "getdel",
        arity: 2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "getex",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "getrange",
        arity: 4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "getset",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hdel",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "hexists",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hget",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hgetall",
        arity: 2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hincrby",
        arity: 4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hincrbyfloat",
        arity: 4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hkeys",
        arity: 2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hlen",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hmget",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hmset",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hrandfield",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hscan",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hset",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hsetnx",
        arity: 4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hstrlen",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "hvals",
        arity: 2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "incr",
        arity: 2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "incrby",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "incrbyfloat",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "info",
        arity: -1,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "keys",
        arity: 2,
        flags: CommandFlags::READONLY,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "lastsave",
        arity: 1,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "latency",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "doctor",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "graph",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "histogram",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "history",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "latest",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "reset",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "lcs",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lindex",
        arity: 3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "linsert",
        arity: 5,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "llen",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lmove",
        arity: 5,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lmpop",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lolwut",
        arity: -1,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "lpop",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lpos",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lpush",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lpushx",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lrange",
        arity: 4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lrem",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "lset",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "ltrim",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "memory",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "doctor",
                arity: 2,
                flags: CommandFlags::NONE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "malloc-stats",
                arity: 2,
                flags: CommandFlags::NONE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "purge",
                arity: 2,
                flags: CommandFlags::NONE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "stats",
                arity: 2,
                flags: CommandFlags::NONE,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "usage",
                arity: -3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "mget",
        arity: -2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "migrate",
        arity: -6,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(3), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Keyword { keyword: "keys", start_from: -2 }, find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: true }],
        subcommands: &[],
    },
    CommandSpec {
        name: "module",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "list",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "load",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "loadex",
                arity: -3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "unload",
                arity: 3,
                flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "monitor",
        arity: 1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "move",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "mset",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 2, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "msetnx",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 2, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "multi",
        arity: 1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "object",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "encoding",
                arity: 3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "freq",
                arity: 3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "idletime",
                arity: 3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "refcount",
                arity: 3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "persist",
        arity: 2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pexpire",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pexpireat",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pexpiretime",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pfadd",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pfcount",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pfdebug",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::ADMIN),
        key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pfmerge",
        arity: -2,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "pfselftest",
        arity: 1,
        flags: CommandFlags::ADMIN,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: CommandFlags::FAST,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "psetex",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "psubscribe",
        arity: -2,
        flags: CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "psync",
        arity: -3,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::NO_MULTI),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "pttl",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "publish",
        arity: 3,
        flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "pubsub",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "channels",
                arity: -2,
                flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "numpat",
                arity: 2,
                flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "numsub",
                arity: -2,
                flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "shardchannels",
                arity: -2,
                flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "shardnumsub",
                arity: -2,
                flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "punsubscribe",
        arity: -1,
        flags: CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "randomkey",
        arity: 1,
        flags: CommandFlags::READONLY,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "readonly",
        arity: 1,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "readwrite",
        arity: 1,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "rename",
        arity: 3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "renamenx",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "replconf",
        arity: -1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "replicaof",
        arity: 3,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "reset",
        arity: 1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "restore",
        arity: -4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "restore-asking",
        arity: -4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "role",
        arity: 1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "rpop",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "rpoplpush",
        arity: 3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "rpush",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "rpushx",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sadd",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "save",
        arity: 1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::NO_MULTI),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "scan",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "scard",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "script",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "debug",
                arity: 3,
                flags: CommandFlags::NOSCRIPT,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "exists",
                arity: -3,
                flags: CommandFlags::NOSCRIPT,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "flush",
                arity: -2,
                flags: CommandFlags::NOSCRIPT,
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "kill",
                arity: 2,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::ALLOW_BUSY),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "load",
                arity: 3,
                flags: CommandFlags::NOSCRIPT.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "sdiff",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sdiffstore",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "set",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "setbit",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "setex",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "setnx",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "setrange",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "shutdown",
        arity: -1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::NO_MULTI).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "sinter",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sintercard",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sinterstore",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sismember",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "slaveof",
        arity: 3,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "slowlog",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "get",
                arity: -2,
                flags: CommandFlags::ADMIN.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "len",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "reset",
                arity: 2,
                flags: CommandFlags::ADMIN.union(CommandFlags::LOADING).union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "smembers",
        arity: 2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "smismember",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "smove",
        arity: 4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sort",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Unknown, find: FindKeys::Unknown, incomplete: false }, KeySpec { begin: BeginSearch::Unknown, find: FindKeys::Unknown, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sort_ro",
        arity: -2,
        flags: CommandFlags::READONLY.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Unknown, find: FindKeys::Unknown, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "spop",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "spublish",
        arity: 3,
        flags: CommandFlags::PUBSUB.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "srandmember",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "srem",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sscan",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "ssubscribe",
        arity: -2,
        flags: CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "strlen",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "subscribe",
        arity: -2,
        flags: CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "substr",
        arity: 4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sunion",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sunionstore",
        arity: -3,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "sunsubscribe",
        arity: -1,
        flags: CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "swapdb",
        arity: 3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "sync",
        arity: 1,
        flags: CommandFlags::ADMIN.union(CommandFlags::NOSCRIPT).union(CommandFlags::NO_MULTI),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "time",
        arity: 1,
        flags: CommandFlags::LOADING.union(CommandFlags::STALE).union(CommandFlags::FAST),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "touch",
        arity: -2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "ttl",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "type",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "unlink",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "unsubscribe",
        arity: -1,
        flags: CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT).union(CommandFlags::LOADING).union(CommandFlags::STALE),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "unwatch",
        arity: 1,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "wait",
        arity: 3,
        flags: CommandFlags::NOSCRIPT,
        key_specs: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "watch",
        arity: -2,
        flags: CommandFlags::NOSCRIPT.union(CommandFlags::LOADING).union(CommandFlags::STALE).union(CommandFlags::FAST).union(CommandFlags::ALLOW_BUSY),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: -1, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xack",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xadd",
        arity: -5,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xautoclaim",
        arity: -6,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xclaim",
        arity: -6,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xdel",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xgroup",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "create",
                arity: -5,
                flags: CommandFlags::WRITE,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "createconsumer",
                arity: 5,
                flags: CommandFlags::WRITE,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "delconsumer",
                arity: 5,
                flags: CommandFlags::WRITE,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "destroy",
                arity: 4,
                flags: CommandFlags::WRITE,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "setid",
                arity: -5,
                flags: CommandFlags::WRITE,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "xinfo",
        arity: -2,
        flags: CommandFlags::NONE,
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "consumers",
                arity: 4,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "groups",
                arity: 3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
            CommandSpec {
                name: "help",
                arity: 2,
                flags: CommandFlags::LOADING.union(CommandFlags::STALE),
                key_specs: &[],
                subcommands: &[],
            },
            CommandSpec {
                name: "stream",
                arity: -3,
                flags: CommandFlags::READONLY,
                key_specs: &[KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
                subcommands: &[],
            },
        ],
    },
    CommandSpec {
        name: "xlen",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xpending",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xrange",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xread",
        arity: -4,
        flags: CommandFlags::READONLY.union(CommandFlags::BLOCKING).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Keyword { keyword: "streams", start_from: 1 }, find: FindKeys::Range { last_key: -1, key_step: 1, limit: 2 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xreadgroup",
        arity: -7,
        flags: CommandFlags::WRITE.union(CommandFlags::BLOCKING).union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Keyword { keyword: "streams", start_from: 4 }, find: FindKeys::Range { last_key: -1, key_step: 1, limit: 2 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xrevrange",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xsetid",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "xtrim",
        arity: -4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zadd",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zcard",
        arity: 2,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zcount",
        arity: 4,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zdiff",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zdiffstore",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zincrby",
        arity: 4,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zinter",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zintercard",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zinterstore",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zlexcount",
        arity: 4,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zmpop",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zmscore",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zpopmax",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zpopmin",
        arity: -2,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrandmember",
        arity: -2,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrange",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrangebylex",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrangebyscore",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrangestore",
        arity: -5,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrank",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrem",
        arity: -3,
        flags: CommandFlags::WRITE.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zremrangebylex",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zremrangebyrank",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zremrangebyscore",
        arity: 4,
        flags: CommandFlags::WRITE,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrevrange",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrevrangebylex",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrevrangebyscore",
        arity: -4,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zrevrank",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zscan",
        arity: -3,
        flags: CommandFlags::READONLY,
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zscore",
        arity: 3,
        flags: CommandFlags::READONLY.union(CommandFlags::FAST),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zunion",
        arity: -3,
        flags: CommandFlags::READONLY.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
    CommandSpec {
        name: "zunionstore",
        arity: -4,
        flags: CommandFlags::WRITE.union(CommandFlags::MOVABLE_KEYS),
        key_specs: &[KeySpec { begin: BeginSearch::Index(1), find: FindKeys::Range { last_key: 0, key_step: 1, limit: 0 }, incomplete: false }, KeySpec { begin: BeginSearch::Index(2), find: FindKeys::KeyNum { key_num_idx: 0, first_key: 1, key_step: 1 }, incomplete: false }],
        subcommands: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(specs: &[CommandSpec]) -> bool {
        specs.windows(2).all(|w| w[0].name < w[1].name)
    }

    #[test]
    fn lookup_any_case() {
        for name in [&b"GET"[..], b"get", b"GeT"] {
            assert_eq!(lookup(name).map(|s| s.name), Some("get"));
        }
        assert!(lookup(b"nosuchcmd").is_none());
        assert!(lookup(b"").is_none());
        assert_eq!(
            lookup(b"OBJECT")
                .and_then(|s| s.subcommand(b"Encoding"))
                .map(|s| s.name),
            Some("encoding")
        );
    }

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(sorted(COMMANDS));
        assert!(COMMANDS.len() >= 240);
        for spec in COMMANDS {
            assert!(sorted(spec.subcommands), "{}", spec.name);
            assert!(std::ptr::eq(lookup(spec.name.as_bytes()).unwrap(), spec));
            for sub in spec.subcommands {
                assert!(std::ptr::eq(
                    spec.subcommand(sub.name.as_bytes()).unwrap(),
                    sub
                ));
            }
        }
    }

    #[test]
    fn arity() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let mset = lookup(b"mset").unwrap();
        assert!(mset.arity_ok(3) && mset.arity_ok(5) && !mset.arity_ok(2));
        assert!(lookup(b"blpop")
            .unwrap()
            .flags
            .contains(CommandFlags::BLOCKING));
    }
}
