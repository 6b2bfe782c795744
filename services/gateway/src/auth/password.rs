//! Argon2id with OWASP's parameters (19 MiB, 2 iterations, 1 lane), off the async runtime, with
//! bounded work.
//!
//! Every hash needs 19 MiB and a core for tens of milliseconds: 300 concurrent logins once took
//! a gateway from 261 MiB to 5.4 GB, and the allocator kept 4.7 GB afterwards. So at most
//! `workers` hashes run at once (one per core by default), each in a 19 MiB buffer allocated
//! once and reused; a request waits for a worker at most `queue_timeout`, then gets 503 with
//! `Retry-After`. The memory is bounded by `workers × 19 MiB` whatever arrives, and nothing is
//! allocated per request. A request that gives up while its hash runs keeps the worker until
//! the hash ends (the bound holds even for abandoned work).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::ApiError;

/// Shortest and longest passwords accepted (bytes): long passphrases welcome, megabyte ones
/// (a denial of service on the hasher) not.
pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 256;

/// OWASP's Argon2id parameters: 19 MiB, 2 iterations, 1 lane, 32-byte output.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default()
}

/// The hashing workers and their reusable memory.
#[derive(Debug)]
pub struct Hasher {
    workers: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    queue_timeout: Duration,
    dummy: OnceCell<String>,
}

impl Hasher {
    /// `workers` hashes at once (0: one per core); a request waits at most `queue_timeout`.
    pub fn new(workers: usize, queue_timeout: Duration) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        Self {
            workers: Arc::new(Semaphore::new(workers)),
            memory: Arc::new(Mutex::new(Vec::with_capacity(workers))),
            queue_timeout,
            dummy: OnceCell::new(),
        }
    }

    /// Runs `work` on a blocking thread with a worker's memory, once a worker is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.workers.clone().acquire_owned())
            .await
            .map_err(|_| {
                metrics::counter!("flick_gateway_password_hash_rejected_total").increment(1);
                ApiError::Busy {
                    message: "too many sign-ins at once; retry shortly".into(),
                    retry_after_secs: 2,
                }
            })?
            .map_err(|err| ApiError::Internal(err.into()))?;
        let pool = self.memory.clone();
        let task = tokio::task::spawn_blocking(move || {
            let taken = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut memory =
                taken.unwrap_or_else(|| vec![Block::default(); params().block_count()]);
            let result = work(&mut memory);
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(memory);
            // The worker is free only once its memory is back.
            drop(permit);
            result
        });
        task.await.map_err(|err| ApiError::Internal(err.into()))
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("system random: {err}")))?;
        self.run(move |memory| hash_with(password.as_bytes(), &salt, memory))
            .await?
            .map_err(ApiError::Internal)
    }

    /// Whether `password` matches `phc`. A malformed stored hash counts as no match.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ApiError> {
        self.run(move |memory| verify_with(password.as_bytes(), &phc, memory))
            .await
    }

    /// A hash to verify against when the account does not exist, so that an unknown email costs
    /// the same time as a wrong password and cannot be told apart by timing.
    pub async fn dummy_hash(&self) -> Result<String, ApiError> {
        self.dummy
            .get_or_try_init(|| self.hash("not a real password, never matches".to_owned()))
            .await
            .cloned()
    }
}

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_with(password: &[u8], salt: &[u8], memory: &mut [Block]) -> anyhow::Result<String> {
    let params = params();
    let mut out = [0u8; 32];
    argon2(params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, memory)
        .map_err(|err| anyhow::anyhow!("hash a password: {err}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|err| anyhow::anyhow!("encode Argon2 parameters: {err}"))?,
        salt: Some(Salt::new(salt).map_err(|err| anyhow::anyhow!("salt: {err}"))?),
        hash: Some(Output::new(&out).map_err(|err| anyhow::anyhow!("output: {err}"))?),
    };
    Ok(phc.to_string())
}

fn verify_with(password: &[u8], phc: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let (Ok(algorithm), Ok(version)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Version::try_from(parsed.version.unwrap_or(0x13)),
    ) else {
        return false;
    };
    // Hashes made with more memory than a worker holds (not this gateway's) get their own.
    let mut own;
    let memory = if params.block_count() <= memory.len() {
        memory
    } else {
        own = vec![Block::default(); params.block_count()];
        &mut own[..]
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, memory);
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|out| &out == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_argon2id_owasp_parameters_and_verifies() {
        let hasher = Hasher::new(1, Duration::from_secs(30));
        let phc = hasher
            .hash("correct horse battery".into())
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            hasher
                .verify("correct horse battery".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("x".into(), "not a hash".into())
                .await
                .expect("verify")
        );
        // Hashes of the argon2 crate's own hasher (every stored hash so far) still verify.
        use argon2::password_hash::PasswordHasher as _;
        let theirs = argon2(params())
            .hash_password(b"an older account")
            .expect("hash")
            .to_string();
        assert!(
            hasher
                .verify("an older account".into(), theirs)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn a_request_waits_for_a_worker_at_most_the_queue_timeout() {
        let hasher = Arc::new(Hasher::new(1, Duration::from_millis(1)));
        let busy = hasher
            .workers
            .clone()
            .acquire_owned()
            .await
            .expect("permit");
        match hasher.hash("correct horse battery".into()).await {
            Err(ApiError::Busy {
                retry_after_secs, ..
            }) => assert!(retry_after_secs >= 1),
            other => panic!("expected 503, got {other:?}"),
        }
        drop(busy);
        hasher
            .hash("correct horse battery".into())
            .await
            .expect("a worker is free again");
    }
}
