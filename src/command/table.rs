//! The command table: the types that describe a command (its arity, the flags percore routes
//! by, its key specs, its subcommands) and the case-insensitive lookup.
//!
//! The data itself, [`COMMANDS`], is generated from `COMMAND` of a real redis-server (the
//! version is [`GENERATED_FROM`]) by `bench-scripts/gen-command-table.py` into `commands.rs`,
//! so key positions follow Redis's own key specs exactly, including numkeys-style commands
//! (EVAL, FCALL, ZUNIONSTORE, ZINTERCARD, ...) and keyword searches (XREAD ... STREAMS,
//! MIGRATE ... KEYS). Generated data and hand-written code live in separate files so the
//! generator can rewrite its file byte for byte; `tests/command_table.rs` compares the table
//! with the live server.
//!
//! Lookup lower-cases the name once into a 16-byte number and finds it in a hash table of the
//! names packed the same way at compile time; names longer than 16 bytes (a handful) are
//! found by a binary search comparing bytes. No allocation.

use std::cmp::Ordering;

pub use crate::command::commands::{COMMANDS, GENERATED_FROM};

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
    if name.len() > KEY_BYTES {
        return find(COMMANDS, name);
    }
    // One pass to lower-case the name into a 16-byte number, then a hash probe that compares
    // numbers: what finding GET costs once per request.
    let key = packed(name);
    let mut slot = slot_of(key);
    loop {
        let index = usize::from(BY_KEY[slot]);
        let spec = COMMANDS.get(index)?;
        // A longer name shares its first 16 bytes' key: the lengths tell them apart.
        if KEYS[index] == key && spec.name.len() == name.len() {
            return Some(spec);
        }
        slot = (slot + 1) & (BY_KEY.len() - 1);
    }
}

/// How many of a name's bytes its key ([`packed`]) holds.
const KEY_BYTES: usize = 16;

/// A name's first [`KEY_BYTES`] bytes, lower-cased and zero-padded, as one big-endian number:
/// keys order as the names do (no name holds a zero byte), so [`KEYS`] is sorted as
/// [`COMMANDS`] is, and a 16-byte compare stands for a byte-by-byte one.
const fn packed(name: &[u8]) -> u128 {
    let mut bytes = [0u8; KEY_BYTES];
    let mut i = 0;
    while i < name.len() && i < KEY_BYTES {
        bytes[i] = name[i].to_ascii_lowercase();
        i += 1;
    }
    u128::from_be_bytes(bytes)
}

/// Every top-level command's key ([`packed`]), in the order of [`COMMANDS`]; built at compile
/// time.
static KEYS: [u128; COMMANDS.len()] = table_keys(COMMANDS);

const fn table_keys<const N: usize>(specs: &[CommandSpec]) -> [u128; N] {
    let mut keys = [0u128; N];
    let mut i = 0;
    while i < N {
        keys[i] = packed(specs[i].name.as_bytes());
        i += 1;
    }
    keys
}

/// [`KEYS`] as an open-addressing hash table: slot [`slot_of`] of a key (or the next ones,
/// in turn) holds its command's index in [`COMMANDS`], an empty slot `u16::MAX`. Four times
/// as many slots as commands, so a probe mostly ends at its first slot. Built at compile
/// time; a test checks every command is found.
static BY_KEY: [u16; BY_KEY_SLOTS] = hashed(&KEYS);

/// Slots of [`BY_KEY`]: a power of two, at least four per command.
const BY_KEY_SLOTS: usize = (COMMANDS.len() * 4).next_power_of_two();

/// Where a key's probe in [`BY_KEY`] starts: its two halves folded and multiplied by a large
/// odd constant (Fibonacci hashing), the top bits taken.
const fn slot_of(key: u128) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64);
    let bits = BY_KEY_SLOTS.trailing_zeros();
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

const fn hashed<const N: usize>(keys: &[u128; N]) -> [u16; BY_KEY_SLOTS] {
    let mut slots = [u16::MAX; BY_KEY_SLOTS];
    let mut i = 0;
    while i < N {
        let mut slot = slot_of(keys[i]);
        while slots[slot] != u16::MAX {
            slot = (slot + 1) & (BY_KEY_SLOTS - 1);
        }
        slots[slot] = i as u16;
        i += 1;
    }
    slots
}

/// The names among `names` (a server's commands, `name` or `container|sub`) that the table
/// does not have: what a server newer than [`GENERATED_FROM`] added.
pub fn missing_from_table<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut missing: Vec<String> = names
        .into_iter()
        .filter(|name| {
            let (command, sub) = match name.split_once('|') {
                Some((command, sub)) => (command, Some(sub)),
                None => (*name, None),
            };
            let spec = lookup(command.as_bytes());
            match (spec, sub) {
                (None, _) => true,
                (Some(spec), Some(sub)) => spec.subcommand(sub.as_bytes()).is_none(),
                (Some(_), None) => false,
            }
        })
        .map(str::to_ascii_lowercase)
        .collect();
    missing.sort();
    missing.dedup();
    missing
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(specs: &[CommandSpec]) -> bool {
        specs.windows(2).all(|w| w[0].name < w[1].name)
    }

    #[test]
    fn every_command_is_found_in_any_case() {
        for spec in COMMANDS {
            let upper = spec.name.to_ascii_uppercase();
            assert_eq!(lookup(upper.as_bytes()).map(|s| s.name), Some(spec.name));
        }
        assert!(lookup(b"").is_none() && lookup(b"1get").is_none() && lookup(b"{").is_none());
    }

    #[test]
    fn a_name_is_found_only_whole_whatever_its_length() {
        let long: Vec<_> = COMMANDS
            .iter()
            .filter(|s| s.name.len() > KEY_BYTES)
            .collect();
        assert!(!long.is_empty(), "some names are longer than a key holds");
        for spec in long {
            let name = spec.name.as_bytes();
            // Its first 16 bytes are a command only if the table has that name itself.
            let prefix = &name[..KEY_BYTES];
            let exact = COMMANDS.iter().find(|s| s.name.as_bytes() == prefix);
            assert_eq!(lookup(prefix).map(|s| s.name), exact.map(|s| s.name));
            assert!(lookup(&name[..name.len() - 1]).is_none_or(|s| s.name.len() < name.len()));
        }
        for spec in COMMANDS {
            let mut longer = spec.name.as_bytes().to_vec();
            longer.push(b'x');
            let found = lookup(&longer).map(|s| s.name.as_bytes());
            assert!(
                found.is_none_or(|name| name == &longer[..]),
                "{}x",
                spec.name
            );
            // Bytes outside A-Z are never folded: `GET\0` and `GÉT` are no commands.
            assert!(lookup(format!("{}\0", spec.name).as_bytes()).is_none());
        }
        assert!(lookup("GÉT".as_bytes()).is_none() && lookup(b"get\xff").is_none());
    }

    #[test]
    fn hash_probes_are_short() {
        // The longest probe of any command: steps from its key's slot to its own.
        let longest = (0..COMMANDS.len())
            .map(|index| {
                let mut slot = slot_of(KEYS[index]);
                let mut steps = 0;
                while usize::from(BY_KEY[slot]) != index {
                    slot = (slot + 1) & (BY_KEY_SLOTS - 1);
                    steps += 1;
                }
                steps
            })
            .max();
        assert!(longest.is_some_and(|steps| steps <= 4), "{longest:?}");
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
    fn commands_missing_from_the_table() {
        let names = [
            "get",
            "WAITAOF",
            "client|no-touch",
            "client|list",
            "hexpire",
            "get",
        ];
        assert_eq!(
            missing_from_table(names),
            ["client|no-touch", "hexpire", "waitaof"]
        );
        assert!(missing_from_table(["ping", "object|encoding"]).is_empty());
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
