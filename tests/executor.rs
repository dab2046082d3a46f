//! The executor percore runs on every core never sleeps for good while it has a task to run,
//! though glommio 0.9.0 (as released) can park with a woken task waiting. percore starts each
//! core's executor with `percore::spawn_executor` (src/shard/executor.rs), which covers that
//! from the executor's first turn to its end: the thread that waits for the executor signals it
//! out of a park of its first turn, and from its first task on a keep-awake thread
//! (src/shard/keep_awake.rs) ends any park within a period.
//!
//! glommio parks when its preempt timer fired before the run loop ran any task queue, although
//! a task was woken; with no I/O or timer pending, it sleeps for good. percore hit that at
//! start-up (both cores asleep before the first "topology applied") about once in a hundred-odd
//! starts on a loaded two-core machine. Here the preempt timer is about as long as one turn of
//! the loop, so that happens again and again, in later turns and in first turns alike: without
//! the guards these tests hang (see [`PREEMPT_TIMER`] and [`FRESH_EXECUTORS`]); with them,
//! every run must finish.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use glommio::LocalExecutorBuilder;

/// A preempt timer about as long as one turn of the run loop (a few microseconds from arming
/// the timer to running the first task queue in a debug build), so it has often fired by then.
/// Measured on a loaded two-core machine, 5,000 runs: without the keep-awake thread it hung 9
/// times in 10 (after 177 to 2,221 runs); with it, 35 times in 35 it finished, in 0.2 to 1.2 s,
/// the runs that had parked (up to 38) waking within 22 ms. A glommio timer of 25 ms in place
/// of the thread hung once in 12 tries of 20,000 runs: its own wake-up can be preempted alike.
const PREEMPT_TIMER: Duration = Duration::from_micros(30);

/// Times one executor runs a task that runs on a later turn of the loop than the one that
/// spawned it.
const RUNS: usize = 5000;

/// Executors started one after another, each running one task: every one has a first turn,
/// which comes before any task of it has run, so only the signal from the joining thread can
/// end a park there.
const FRESH_EXECUTORS: usize = 200;

/// io_uring buffer memory per executor: percore's own, as these tests start many.
const IO_MEMORY: usize = percore::IO_MEMORY;

/// How long the runs may take: generous for a loaded machine, short next to a hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// An executor built as percore builds a core's, with the short preempt timer.
fn executor_builder() -> LocalExecutorBuilder {
    LocalExecutorBuilder::default()
        .preempt_timer(PREEMPT_TIMER)
        .io_memory(IO_MEMORY)
}

/// Runs `work` on a detached thread and waits for it at most [`PATIENCE`]: a hang fails the
/// test instead of hanging it.
fn finishes_in_time(work: impl FnOnce() + Send + 'static) -> bool {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        work();
        let _ = done.send(());
    });
    finished.recv_timeout(PATIENCE).is_ok()
}

#[test]
fn an_executor_preempted_before_it_ran_anything_still_runs_its_tasks() {
    let finished = finishes_in_time(|| {
        let executor = percore::spawn_executor("later-turns", executor_builder(), || async {
            let mut answers = 0;
            for run in 0..RUNS {
                // Woken, not polled at once: it runs on a later turn of the loop.
                answers +=
                    usize::from(glommio::spawn_local(async move { run * 2 }).await == run * 2);
            }
            answers
        })
        .expect("the executor's thread");
        assert_eq!(executor.join().expect("the executor ran"), RUNS);
    });
    assert!(
        finished,
        "the executor parked with a task to run: {RUNS} runs did not finish in {PATIENCE:?}"
    );
}

#[test]
fn a_fresh_executor_preempted_in_its_first_turn_still_runs_its_first_task() {
    let finished = finishes_in_time(|| {
        for start in 0..FRESH_EXECUTORS {
            let executor =
                percore::spawn_executor("first-turn", executor_builder(), move || async move {
                    glommio::spawn_local(async move { start * 2 }).await
                })
                .expect("the executor's thread");
            assert_eq!(executor.join().expect("the executor ran"), start * 2);
        }
    });
    assert!(
        finished,
        "an executor parked in its first turn for good: {FRESH_EXECUTORS} starts did not finish \
         in {PATIENCE:?} ({} signals sent to one in its first turn)",
        percore::first_turn_kicks()
    );
    eprintln!(
        "{FRESH_EXECUTORS} fresh executors ran; signals sent to one in its first turn: {}",
        percore::first_turn_kicks()
    );
}
