//! The masters' INFO texts merged into the cluster's: what `INFO` shows about the data.
//!
//! Each master's reply is parsed into sections of `key:value` lines and every field is
//! merged by a rule (`info_rules`): counts and sizes are summed, flags (a save in progress) and
//! durations take the largest, the last save time the oldest, statuses `ok` only when every
//! master says so, ratios and `_human` sizes are worked out again from the merged figures.
//! A field without a rule is one node's own business (replication IDs and offsets, per-node
//! configuration) and is left out rather than shown from one node as if it were the
//! cluster's. Keyspace, command and error statistics (`db0:keys=3,expires=1,avg_ttl=500`)
//! are summed field by field, with `avg_ttl` weighted by each master's `expires` and
//! `usec_per_call` worked out from the summed `usec` and `calls`.
//!
//! Pure: texts in, merged lines out, so every rule is unit-tested here.

use std::fmt::Write;

use super::info_rules::{rule, Rule};

/// The masters' INFO merged: sections by lowercase name, each with its lines in the order
/// the masters gave them.
#[derive(Debug, Default)]
pub struct Merged {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Merged {
    /// Replaces the value of `key` in `section`, if the masters sent it (a figure percore
    /// knows better than the sum of theirs).
    pub fn replace(&mut self, section: &str, key: &str, value: String) {
        let lines = self.sections.iter_mut().find(|(name, _)| name == section);
        if let Some((_, lines)) = lines {
            if let Some((_, old)) = lines.iter_mut().find(|(k, _)| k == key) {
                *old = value;
            }
        }
    }

    /// The merged lines of a section (`memory`, `keyspace`, ...); none if no master sent it.
    pub fn section(&self, name: &str) -> &[(String, String)] {
        self.sections
            .iter()
            .find(|(section, _)| section == name)
            .map_or(&[], |(_, lines)| lines.as_slice())
    }
}

/// One master's INFO text as sections of `(key, value)` lines.
type Parsed<'a> = Vec<(String, Vec<(&'a str, &'a str)>)>;

fn parse(text: &str) -> Parsed<'_> {
    let mut sections: Parsed<'_> = Vec::new();
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(title) = line.strip_prefix('#') {
            sections.push((title.trim().to_ascii_lowercase(), Vec::new()));
        } else if let (Some((key, value)), Some((_, lines))) =
            (line.split_once(':'), sections.last_mut())
        {
            lines.push((key, value));
        }
    }
    sections
}

/// Merges the INFO texts of every master (in slot order).
pub fn merge(texts: &[&str]) -> Merged {
    let parsed: Vec<Parsed<'_>> = texts.iter().map(|t| parse(t)).collect();
    let mut names: Vec<&str> = Vec::new();
    for sections in &parsed {
        for (name, _) in sections {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let sections = names
        .into_iter()
        .map(|name| {
            let of_each: Vec<&[(&str, &str)]> = parsed
                .iter()
                .filter_map(|sections| sections.iter().find(|(n, _)| n == name))
                .map(|(_, lines)| lines.as_slice())
                .collect();
            (name.to_string(), merge_section(name, &of_each))
        })
        .collect();
    Merged { sections }
}

/// Merges one section given as each master's lines.
fn merge_section(name: &str, of_each: &[&[(&str, &str)]]) -> Vec<(String, String)> {
    // The loaded modules are the same on every master; one master's list says which.
    if name == "modules" {
        let first = of_each.first().copied().unwrap_or_default();
        return first
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    let by_fields = matches!(name, "keyspace" | "commandstats" | "errorstats");
    let mut keys: Vec<&str> = Vec::new();
    for lines in of_each {
        for (key, _) in lines.iter() {
            if !keys.contains(key) {
                keys.push(key);
            }
        }
    }
    let mut merged: Vec<(String, String)> = Vec::with_capacity(keys.len());
    for key in keys {
        let values: Vec<&str> = of_each
            .iter()
            .filter_map(|lines| lines.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
            .collect();
        let value = match by_fields {
            true => Some(merge_fields(&values)),
            false => rule(key).and_then(|rule| apply(rule, &values, &merged)),
        };
        if let Some(value) = value {
            merged.push((key.to_string(), value));
        }
    }
    merged
}

/// The merged value of one field, or `None` when the masters' values do not fit the rule.
fn apply(rule: Rule, values: &[&str], merged: &[(String, String)]) -> Option<String> {
    let ints = || {
        values
            .iter()
            .map(|v| v.parse::<i64>().ok())
            .collect::<Option<Vec<_>>>()
    };
    let earlier = |key: &str| {
        merged
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    Some(match rule {
        Rule::Sum => ints()?
            .iter()
            .fold(0i64, |a, &b| a.saturating_add(b))
            .to_string(),
        Rule::SumDecimal => {
            let sum: f64 = values
                .iter()
                .map(|v| v.parse::<f64>().ok())
                .sum::<Option<f64>>()?;
            format!("{sum:.2}")
        }
        Rule::Max => ints()?.into_iter().max()?.to_string(),
        Rule::Min => ints()?.into_iter().min()?.to_string(),
        Rule::Limit => {
            let limits = ints()?;
            match limits.contains(&0) {
                true => "0".to_string(),
                false => limits.iter().sum::<i64>().to_string(),
            }
        }
        Rule::Status => values
            .iter()
            .find(|v| **v != "ok")
            .unwrap_or(&"ok")
            .to_string(),
        Rule::First => values.first()?.to_string(),
        Rule::Human(base) => human(earlier(base)? as u64),
        Rule::Ratio(num, den) => format!("{:.2}", ratio(earlier(num)?, earlier(den)?)),
        Rule::Percent(num, den) => format!("{:.2}%", ratio(earlier(num)?, earlier(den)?) * 100.0),
        Rule::Proxy(value) => value.to_string(),
    })
}

/// `num / den`, or 0 when there is nothing to divide by.
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Lines made of `name=value` fields (`keys=3,expires=1,avg_ttl=500`), summed field by field.
/// `avg_ttl` is the average of the masters' weighted by their keys with a TTL (a master whose
/// estimate is still 0 has not sampled its keys yet and is left out of the average);
/// `usec_per_call` is worked out from the summed `usec` and `calls`.
fn merge_fields(values: &[&str]) -> String {
    let parsed: Vec<Vec<(&str, &str)>> = values
        .iter()
        .map(|v| v.split(',').filter_map(|f| f.split_once('=')).collect())
        .collect();
    let field = |fields: &[(&str, &str)], name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let total = |name: &str| parsed.iter().map(|f| field(f, name)).sum::<f64>();
    let mut out = String::new();
    for (index, (name, value)) in parsed
        .first()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .enumerate()
    {
        if index > 0 {
            out.push(',');
        }
        let _ = match *name {
            "avg_ttl" => {
                let (weighted, weights) = parsed.iter().fold((0.0, 0.0), |(w, n), f| {
                    let (ttl, expires) = (field(f, "avg_ttl"), field(f, "expires"));
                    match ttl > 0.0 {
                        true => (w + ttl * expires, n + expires),
                        false => (w, n),
                    }
                });
                write!(out, "avg_ttl={}", ratio(weighted, weights) as u64)
            }
            "usec_per_call" => {
                write!(
                    out,
                    "usec_per_call={:.2}",
                    ratio(total("usec"), total("calls"))
                )
            }
            _ if value.parse::<i64>().is_ok() => write!(out, "{name}={}", total(name) as i64),
            _ => write!(out, "{name}={value}"),
        };
    }
    out
}

/// A size in Redis's human units (its `bytesToHuman`): `512B`, `1.50K`, `2.00M`, ...
fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    match UNITS.iter().find(|&&(size, _)| bytes >= size) {
        // Past 1024 P Redis goes back to bytes.
        Some(&(size, unit)) if bytes < (1 << 60) => {
            format!("{:.2}{unit}", bytes as f64 / size as f64)
        }
        _ => format!("{bytes}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\
        used_memory_rss:3145728\r\nused_memory_peak:2097152\r\nused_memory_peak_perc:50.00%\r\n\
        maxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:3.00\r\n\
        mem_allocator:jemalloc-5.3.0\r\n\r\n# Persistence\r\nrdb_changes_since_last_save:3\r\n\
        rdb_last_save_time:1700000100\r\nrdb_last_bgsave_status:ok\r\nrdb_bgsave_in_progress:0\r\n\
        \r\n# Stats\r\ntotal_commands_processed:10\r\ninstantaneous_input_kbps:0.50\r\n\
        expired_stale_perc:0.00\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
        slave0:ip=127.0.0.1,port=7003,state=online,offset=42,lag=0\r\nmaster_repl_offset:42\r\n\
        \r\n# Errorstats\r\nerrorstat_ERR:count=2\r\n\r\n# Commandstats\r\n\
        cmdstat_get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
        \r\n# Keyspace\r\ndb0:keys=10,expires=2,avg_ttl=1000\r\n";
    const B: &str = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\
        used_memory_rss:1048576\r\nused_memory_peak:2097152\r\nused_memory_peak_perc:50.00%\r\n\
        maxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_fragmentation_ratio:1.00\r\n\
        mem_allocator:jemalloc-5.3.0\r\n\r\n# Persistence\r\nrdb_changes_since_last_save:4\r\n\
        rdb_last_save_time:1700000000\r\nrdb_last_bgsave_status:err\r\nrdb_bgsave_in_progress:1\r\n\
        \r\n# Stats\r\ntotal_commands_processed:5\r\ninstantaneous_input_kbps:0.25\r\n\
        expired_stale_perc:0.00\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        master_repl_offset:7\r\n\r\n# Errorstats\r\nerrorstat_ERR:count=1\r\n\
        errorstat_WRONGTYPE:count=4\r\n\r\n# Commandstats\r\n\
        cmdstat_get:calls=3,usec=20,usec_per_call=6.67,rejected_calls=1,failed_calls=0\r\n\
        cmdstat_set:calls=1,usec=4,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n\
        \r\n# Keyspace\r\ndb0:keys=5,expires=6,avg_ttl=3000\r\n";

    fn lines(merged: &Merged, section: &str) -> Vec<String> {
        merged
            .section(section)
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect()
    }

    #[test]
    fn sums_counts_and_sizes_and_reworks_the_rest() {
        let merged = merge(&[A, B]);
        assert_eq!(
            lines(&merged, "memory"),
            [
                "used_memory:2097152",
                "used_memory_human:2.00M",
                "used_memory_rss:4194304",
                "used_memory_peak:4194304",
                "used_memory_peak_perc:50.00%",
                "maxmemory:0",
                "maxmemory_policy:noeviction",
                "mem_fragmentation_ratio:2.00",
                "mem_allocator:libc",
            ]
        );
        assert_eq!(
            lines(&merged, "persistence"),
            [
                "rdb_changes_since_last_save:7",
                "rdb_last_save_time:1700000000",
                "rdb_last_bgsave_status:err",
                "rdb_bgsave_in_progress:1",
            ]
        );
        assert_eq!(
            lines(&merged, "stats"),
            [
                "total_commands_processed:15",
                "instantaneous_input_kbps:0.75"
            ]
        );
        // A node's own replication offset: the first master's, for tools that read it.
        assert_eq!(
            lines(&merged, "replication"),
            ["role:master", "connected_slaves:3", "master_repl_offset:42"]
        );
    }

    #[test]
    fn sums_field_by_field() {
        let merged = merge(&[A, B]);
        // (1000 * 2 + 3000 * 6) / 8
        assert_eq!(
            lines(&merged, "keyspace"),
            ["db0:keys=15,expires=8,avg_ttl=2500"]
        );
        assert_eq!(
            lines(&merged, "errorstats"),
            ["errorstat_ERR:count=3", "errorstat_WRONGTYPE:count=4"]
        );
        assert_eq!(
            lines(&merged, "commandstats"),
            [
                "cmdstat_get:calls=5,usec=30,usec_per_call=6.00,rejected_calls=1,failed_calls=0",
                "cmdstat_set:calls=1,usec=4,usec_per_call=4.00,rejected_calls=0,failed_calls=0",
            ]
        );
        // A master that has not estimated its TTLs yet does not pull the average to 0.
        let merged = merge(&[
            "# Keyspace\r\ndb0:keys=4,expires=4,avg_ttl=0\r\n",
            "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=700\r\n",
            "# Keyspace\r\n",
        ]);
        assert_eq!(
            lines(&merged, "keyspace"),
            ["db0:keys=6,expires=5,avg_ttl=700"]
        );
    }

    #[test]
    fn limits_and_units() {
        let one = "# Memory\r\nmaxmemory:100\r\nmaxmemory_human:100B\r\n";
        let two = "# Memory\r\nmaxmemory:1000000\r\nmaxmemory_human:976.56K\r\n";
        let unlimited = "# Memory\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\n";
        let merged = merge(&[one, two]);
        assert_eq!(
            lines(&merged, "memory"),
            ["maxmemory:1000100", "maxmemory_human:976.66K"]
        );
        let merged = merge(&[one, unlimited]);
        assert_eq!(
            lines(&merged, "memory"),
            ["maxmemory:0", "maxmemory_human:0B"]
        );
        for (bytes, text) in [
            (0, "0B"),
            (1023, "1023B"),
            (1024, "1.00K"),
            (2_096_040, "2.00M"),
            (3 << 30, "3.00G"),
            (5 << 40, "5.00T"),
            (1 << 50, "1.00P"),
        ] {
            assert_eq!(human(bytes), text);
        }
    }

    #[test]
    fn modules_from_one_master() {
        let a = "# Modules\r\nmodule:name=search,ver=1\r\n";
        let merged = merge(&[a, a]);
        assert_eq!(lines(&merged, "modules"), ["module:name=search,ver=1"]);
        assert!(merge(&[]).section("modules").is_empty());
    }
}
