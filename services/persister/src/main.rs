//! `flick-persister`: see the crate documentation.

/// Every message allocates a handful of small buffers (its subject, headers, decoded strings,
/// the row's JSON columns) that live for one batch: glibc's allocator spent a fifth of the
/// persister's CPU on them, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flick_shared::service::main("flick-persister", flick_persister::run).await
}
