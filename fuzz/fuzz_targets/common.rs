//! What the targets share: a one-thread runtime for the engine's async plan.

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime").block_on(future)
}
