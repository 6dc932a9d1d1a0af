//! Runs each fuzz input on a worker thread with a 1 MiB stack, half a tokio
//! worker's: recursion on a peer's bytes (a nested field table) overflows it
//! at depths a few hundred levels deep, well inside the inputs libFuzzer
//! makes from the committed deep seeds, instead of hiding behind the main
//! thread's 8 MiB. A panic there aborts the process, and an overflow runs
//! libFuzzer's crash handler on an alternate stack: either way libFuzzer
//! reports a crash and saves the current input. Shared by every target
//! (`#[path]`-included).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

struct Worker {
    inputs: SyncSender<Vec<u8>>,
    done: Receiver<()>,
}

fn worker(run: fn(&[u8])) -> &'static Mutex<Worker> {
    static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (inputs, rx) = sync_channel::<Vec<u8>>(0);
        let (tx, done) = sync_channel::<()>(0);
        std::thread::Builder::new()
            .name("fuzz-worker".into())
            .stack_size(1 << 20)
            .spawn(move || {
                report_overflows_on_this_thread();
                for data in rx {
                    run(&data);
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the fuzz worker");
        Mutex::new(Worker { inputs, done })
    })
}

/// Without a sanitizer nothing gives this thread an alternate signal stack,
/// and libFuzzer installs its SIGSEGV handler without SA_ONSTACK: a stack
/// overflow would then kill the process before the handler could save the
/// input. Give the thread one, and the handler the flag.
fn report_overflows_on_this_thread() {
    const ALT_STACK: usize = 1 << 20;
    let stack: &'static mut [u8] = Box::leak(vec![0u8; ALT_STACK].into_boxed_slice());
    // SAFETY: `stack` is ALT_STACK bytes that live for the rest of the
    // process (leaked) and nothing else uses; sigaltstack records it for
    // this thread only. The sigaction calls read the installed SIGSEGV
    // action (libFuzzer's) into a zeroed struct and write it back with one
    // more flag; both pointers are to valid, initialized values.
    unsafe {
        let ss = libc::stack_t { ss_sp: stack.as_mut_ptr().cast(), ss_flags: 0, ss_size: ALT_STACK };
        if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
            return;
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut action) == 0 {
            action.sa_flags |= libc::SA_ONSTACK;
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
        }
    }
}

/// Runs `data` through `run` on the worker (the first call fixes `run`).
pub fn fuzz_on_worker(run: fn(&[u8]), data: &[u8]) {
    let w = worker(run).lock().unwrap_or_else(|e| e.into_inner());
    w.inputs.send(data.to_vec()).expect("the fuzz worker is gone");
    // If the worker panicked without aborting, its channel closes: crash here.
    w.done.recv().expect("the fuzz worker died on this input");
}
