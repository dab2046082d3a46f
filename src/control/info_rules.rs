//! How each field of the masters' INFO is merged into the cluster's: the rule of every
//! field percore shows from the memory, persistence, stats and replication sections. A field
//! with no rule here is left out (see `info_merge`).
//!
//! The lists follow the fields redis-server 7.0 prints; a field a newer server adds is left
//! out until it is given a rule here.

/// What percore reports as `mem_allocator`: it uses the C library's malloc (its memory is
/// trimmed with glibc's `malloc_trim`), which Redis built the same way calls `libc`.
pub const MEM_ALLOCATOR: &str = "libc";

/// How one field of a section is merged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Sum of integers.
    Sum,
    /// Sum of decimals, two places (instantaneous kbps).
    SumDecimal,
    /// Largest integer (flags such as `loading`, durations such as `latest_fork_usec`).
    Max,
    /// Smallest integer (`rdb_last_save_time`: every master has saved since then).
    Min,
    /// `0` (no limit) if any master has no limit, else the sum (`maxmemory`).
    Limit,
    /// `ok` if every master says `ok`, else the first other value.
    Status,
    /// The first master's value: the same on every master (`role`, `maxmemory_policy`), or one
    /// node's own that tools expect to find (`master_repl_offset`).
    First,
    /// The merged value of the named field, in Redis's human units (`2.00M`).
    Human(&'static str),
    /// Merged numerator / merged denominator, two places.
    Ratio(&'static str, &'static str),
    /// Merged numerator / merged denominator as a percentage, two places and `%`.
    Percent(&'static str, &'static str),
    /// percore's own value, whatever the masters say.
    Proxy(&'static str),
}

/// The rule for a field of the memory, persistence, stats and replication sections, or
/// `None` for a field that is one node's own and is left out.
pub fn rule(key: &str) -> Option<Rule> {
    use Rule::*;
    Some(match key {
        "used_memory_human" => Human("used_memory"),
        "used_memory_rss_human" => Human("used_memory_rss"),
        "used_memory_peak_human" => Human("used_memory_peak"),
        "used_memory_lua_human" => Human("used_memory_lua"),
        "used_memory_vm_total_human" => Human("used_memory_vm_total"),
        "used_memory_scripts_human" => Human("used_memory_scripts"),
        "maxmemory_human" => Human("maxmemory"),
        "used_memory_peak_perc" => Percent("used_memory", "used_memory_peak"),
        "allocator_frag_ratio" => Ratio("allocator_active", "allocator_allocated"),
        "allocator_rss_ratio" => Ratio("allocator_resident", "allocator_active"),
        "rss_overhead_ratio" => Ratio("used_memory_rss", "allocator_resident"),
        "mem_fragmentation_ratio" => Ratio("used_memory_rss", "used_memory"),
        "maxmemory" => Limit,
        "maxmemory_policy" | "role" => First,
        // One node's replication state has no cluster-wide meaning, but tools read these
        // fields (Redis's own tests look for master_repl_offset): the first master's.
        "master_failover_state"
        | "master_replid"
        | "master_replid2"
        | "master_repl_offset"
        | "second_repl_offset"
        | "repl_backlog_active"
        | "repl_backlog_size"
        | "repl_backlog_first_byte_offset"
        | "repl_backlog_histlen" => First,
        "mem_allocator" => Proxy(MEM_ALLOCATOR),
        "rdb_last_save_time" => Min,
        "rdb_last_bgsave_status" | "aof_last_bgrewrite_status" | "aof_last_write_status" => Status,
        "instantaneous_input_kbps"
        | "instantaneous_output_kbps"
        | "instantaneous_input_repl_kbps"
        | "instantaneous_output_repl_kbps" => SumDecimal,
        // Scripts and functions are loaded on every master: as many as one master has.
        "number_of_cached_scripts" | "number_of_functions" | "number_of_libraries" => Max,
        "loading"
        | "async_loading"
        | "current_cow_size_age"
        | "rdb_bgsave_in_progress"
        | "rdb_last_bgsave_time_sec"
        | "rdb_current_bgsave_time_sec"
        | "aof_enabled"
        | "aof_rewrite_in_progress"
        | "aof_rewrite_scheduled"
        | "aof_last_rewrite_time_sec"
        | "aof_current_rewrite_time_sec"
        | "aof_rewrites_consecutive_failures"
        | "aof_pending_rewrite"
        | "module_fork_in_progress"
        | "active_defrag_running"
        | "latest_fork_usec" => Max,
        _ if is_summed(key) => Sum,
        _ => return None,
    })
}

/// Fields that are counts or sizes, summed over the masters.
fn is_summed(key: &str) -> bool {
    const MEMORY: &[&str] = &[
        "used_memory",
        "used_memory_rss",
        "used_memory_peak",
        "used_memory_overhead",
        "used_memory_startup",
        "used_memory_dataset",
        "allocator_allocated",
        "allocator_active",
        "allocator_resident",
        "used_memory_lua",
        "used_memory_vm_eval",
        "used_memory_scripts_eval",
        "used_memory_vm_functions",
        "used_memory_vm_total",
        "used_memory_functions",
        "used_memory_scripts",
        "allocator_frag_bytes",
        "allocator_rss_bytes",
        "rss_overhead_bytes",
        "mem_fragmentation_bytes",
        "mem_not_counted_for_evict",
        "mem_replication_backlog",
        "mem_total_replication_buffers",
        "mem_clients_slaves",
        "mem_clients_normal",
        "mem_cluster_links",
        "mem_aof_buffer",
        "lazyfree_pending_objects",
        "lazyfreed_objects",
    ];
    const PERSISTENCE: &[&str] = &[
        "current_cow_peak",
        "current_cow_size",
        "current_save_keys_processed",
        "current_save_keys_total",
        "rdb_changes_since_last_save",
        "rdb_saves",
        "rdb_last_cow_size",
        "rdb_last_load_keys_expired",
        "rdb_last_load_keys_loaded",
        "aof_rewrites",
        "aof_last_cow_size",
        "module_fork_last_cow_size",
        "aof_current_size",
        "aof_base_size",
        "aof_buffer_length",
        "aof_pending_bio_fsync",
        "aof_delayed_fsync",
    ];
    const STATS: &[&str] = &[
        "total_connections_received",
        "total_commands_processed",
        "instantaneous_ops_per_sec",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "total_net_repl_input_bytes",
        "total_net_repl_output_bytes",
        "rejected_connections",
        "sync_full",
        "sync_partial_ok",
        "sync_partial_err",
        "expired_keys",
        "expired_time_cap_reached_count",
        "expire_cycle_cpu_milliseconds",
        "evicted_keys",
        "evicted_clients",
        "total_eviction_exceeded_time",
        "current_eviction_exceeded_time",
        "keyspace_hits",
        "keyspace_misses",
        "pubsub_channels",
        "pubsub_patterns",
        "pubsubshard_channels",
        "total_forks",
        "migrate_cached_sockets",
        "slave_expires_tracked_keys",
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
        "tracking_total_keys",
        "tracking_total_items",
        "tracking_total_prefixes",
        "unexpected_error_replies",
        "total_error_replies",
        "dump_payload_sanitizations",
        "total_reads_processed",
        "total_writes_processed",
        "io_threaded_reads_processed",
        "io_threaded_writes_processed",
        "reply_buffer_shrinks",
        "reply_buffer_expands",
    ];
    const REPLICATION: &[&str] = &["connected_slaves"];
    [MEMORY, PERSISTENCE, STATS, REPLICATION]
        .iter()
        .any(|fields| fields.contains(&key))
}
