//! Work spread over a few threads, stopping at the first failure: the layer transfers of a
//! pull or a push.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs `work(i)` for every `i` in `0..count` on up to `workers` threads; items not started
/// yet are skipped once one fails. Returns every result in order, or the first error.
pub(crate) fn run_all<T: Send, E: Send>(
    count: usize,
    workers: usize,
    work: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, count.max(1)) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return;
                    }
                    match work(i) {
                        Ok(t) => lock(&results)[i] = Some(t),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            lock(&first_error).get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = lock(&first_error).take() {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // Every item ran: no failure stopped the workers.
    Ok(results.into_iter().flatten().collect())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_their_order_and_the_first_error_wins() {
        let squares = run_all(10, 3, |i| Ok::<_, String>(i * i)).unwrap();
        assert_eq!(squares, (0..10).map(|i| i * i).collect::<Vec<_>>());
        let err = run_all(10, 1, |i| if i == 4 { Err(i) } else { Ok(i) }).unwrap_err();
        assert_eq!(err, 4);
        assert!(run_all(0, 4, |_| Ok::<u8, ()>(0)).unwrap().is_empty());
    }
}
