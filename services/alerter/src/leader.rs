//! What the leader does: read samples in order, evaluate, commit state and transitions
//! together, acknowledge, publish.
//!
//! Exactly once, across restarts and failover: every commit records the stream sequence it
//! covers, the thresholds it changed and the transitions it decided, in one transaction that
//! only succeeds while this leader's fencing epoch is current. A new leader recreates the
//! durable consumer `alerter` just after the last committed sequence, so it sees exactly the
//! samples whose effects were not committed, in stream order, and resumes from the committed
//! state: it cannot decide a transition twice, nor skip one.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{
    self,
    consumer::{PullConsumer, pull},
};
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use flick_shared::backoff::Backoff;
use flick_shared::batch::Batcher;
use flick_shared::shutdown::CancellationToken;
use flick_shared::subjects::{ALERTER_CONSUMER, StreamKind};
use flick_shared::wire::{
    AlertEvent, MetricSample, ServerId, ServerStatus, StatusState, decode, decode_on,
};

use crate::evaluate::Evaluator;
use crate::lease::Lease;
use crate::rules::{Metric, RuleSet};
use crate::store::{CommitError, Outgoing};
use crate::watch::OfflineWatch;
use crate::{Context, notify};

/// Commit at least this often while samples flow, even without transitions, so a restart
/// replays little.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// How a term ended.
#[derive(Debug)]
pub enum TermEnd {
    Shutdown,
    LeaseLost,
    Fenced,
}

struct Term {
    epoch: i64,
    /// Everything up to this stream sequence is committed or about to be.
    sequence: u64,
    committed_sequence: u64,
    /// No leader ever ran: start at the end of the stream, not at its beginning.
    first_ever: bool,
    last_commit: Instant,
    rules: RuleSet,
    evaluator: Evaluator,
    watch: OfflineWatch,
    /// Servers seen in the `servers` table during this term.
    in_fleet: HashSet<ServerId>,
    gaps: Gaps,
    to_publisher: mpsc::UnboundedSender<Vec<Outgoing>>,
}

/// Leads until shutdown, until the lease is lost, or until another replica fences this one.
pub async fn lead(
    ctx: &Context,
    mut lease: Lease,
    shutdown: &CancellationToken,
) -> anyhow::Result<TermEnd> {
    let term_token = shutdown.child_token();
    let (epoch, sequence) = ctx
        .store
        .begin_term(&ctx.leader_name)
        .await
        .context("begin a leadership term")?;
    let span = tracing::info_span!("leader", epoch);
    let result = async {
        tracing::info!(resume_after = ?sequence, "Leading: evaluating alerts");
        metrics::gauge!("flick_alerter_leader").set(1.0);
        let (to_publisher, from_leader) = mpsc::unbounded_channel();
        let publisher = tokio::spawn(crate::publish::run(
            ctx.clone(),
            from_leader,
            term_token.clone(),
        ));
        let notifier = tokio::spawn(
            notify::dispatch::run(
                ctx.store.pool().clone(),
                ctx.notifier.clone(),
                notify::dispatch::Settings {
                    group: Duration::from_secs(ctx.settings.notify_group_secs),
                    ack_clear: chrono::Duration::seconds(
                        i64::try_from(ctx.settings.ack_clear_secs).unwrap_or(i64::MAX),
                    ),
                },
                epoch,
                ctx.subjects.stream_name(StreamKind::Metrics),
                ctx.notify_wake.clone(),
                term_token.clone(),
            )
            .instrument(tracing::info_span!("notifier")),
        );
        let mut term = start_term(ctx, epoch, sequence, to_publisher).await?;
        let end = run_term(ctx, &mut term, &mut lease, &term_token).await;
        term_token.cancel();
        let _ = publisher.await;
        let _ = notifier.await;
        metrics::gauge!("flick_alerter_leader").set(0.0);
        end
    }
    .instrument(span)
    .await;
    lease.release().await;
    result
}

async fn start_term(
    ctx: &Context,
    epoch: i64,
    sequence: Option<u64>,
    to_publisher: mpsc::UnboundedSender<Vec<Outgoing>>,
) -> anyhow::Result<Term> {
    let rules = ctx
        .store
        .load_rules(&ctx.defaults, ctx.settings.margin)
        .await?;
    let evaluator = Evaluator::resume(ctx.store.load_phases().await?);
    let mut watch = OfflineWatch::default();
    // Every known server gets a full offline timeout from now: a new leader does not page
    // for silence it did not witness.
    let now = Instant::now();
    for server in ctx
        .store
        .known_servers()
        .await?
        .iter()
        .chain(evaluator.servers().iter())
    {
        watch.heard(server, now);
    }
    reload_channels(ctx).await;
    Ok(Term {
        epoch,
        sequence: sequence.unwrap_or(0),
        committed_sequence: sequence.unwrap_or(0),
        first_ever: sequence.is_none(),
        last_commit: Instant::now(),
        rules,
        evaluator,
        watch,
        in_fleet: HashSet::new(),
        gaps: Gaps::default(),
        to_publisher,
    })
}

async fn run_term(
    ctx: &Context,
    term: &mut Term,
    lease: &mut Lease,
    stop: &CancellationToken,
) -> anyhow::Result<TermEnd> {
    if term.first_ever {
        // The very first term: history from before is not evaluated, but everything from now
        // on is, even if this leader stops before its first sample.
        let name = ctx.subjects.stream_name(StreamKind::Metrics);
        let mut stream = ctx
            .js
            .get_stream(&name)
            .await
            .with_context(|| format!("stream {name}"))?;
        term.sequence = stream
            .info()
            .await
            .with_context(|| format!("stream {name}"))?
            .state
            .last_sequence;
        if let Some(end) = commit(ctx, term, Vec::new(), stop, true).await? {
            return Ok(end);
        }
    }
    let mut messages = open_samples(ctx, term.sequence).await?;
    // Pull errors while NATS is away: one WARN, reminders, one INFO, not a line per attempt.
    let pulling = flick_shared::outage::Outage::new("Pulling samples from JetStream");
    let mut statuses = ctx
        .client
        .subscribe(ctx.subjects.status_all())
        .await
        .context("subscribe to collector statuses")?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut reload = tokio::time::interval(Duration::from_millis(ctx.settings.reload_interval_ms));
    let mut pending = Batcher::new(
        ctx.settings.batch_size,
        Duration::from_millis(ctx.settings.batch_wait_ms),
    );

    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => {
                if !pending.is_empty() {
                    process(ctx, term, pending.take(), stop).await?;
                }
                return Ok(TermEnd::Shutdown);
            }
            _ = tick.tick() => {
                if !lease.holds().await {
                    tracing::warn!("Lost the lease: stepping down");
                    return Ok(TermEnd::LeaseLost);
                }
                if let Some(end) = check_silence(ctx, term, stop).await? {
                    return Ok(end);
                }
            }
            _ = reload.tick() => {
                if let Some(end) = reload_all(ctx, term, stop).await? {
                    return Ok(end);
                }
            }
            Some(status) = statuses.next() => {
                if let Ok(status) = decode::<ServerStatus>(&status.payload, Utc::now()) {
                    match status.state {
                        StatusState::Stopping => term.watch.stopping(&status.server_id),
                        StatusState::Starting => {}
                    }
                }
            }
            () = pending.due() => match process(ctx, term, pending.take(), stop).await? {
                Step::Go => {}
                Step::End(end) => return Ok(end),
                Step::Resume => messages = open_samples(ctx, term.sequence).await?,
            },
            next = messages.next() => match next {
                Some(Ok(message)) => {
                    pulling.recovered();
                    if let Some(batch) = pending.push(message, Instant::now()) {
                        match process(ctx, term, batch, stop).await? {
                            Step::Go => {}
                            Step::End(end) => return Ok(end),
                            Step::Resume => {
                                messages = open_samples(ctx, term.sequence).await?;
                            }
                        }
                    }
                }
                Some(Err(err)) => {
                    pulling.failed(&err);
                    if matches!(err.kind(), jetstream::consumer::pull::MessagesErrorKind::ConsumerDeleted) {
                        anyhow::bail!("the alerter's consumer was deleted");
                    }
                }
                None => anyhow::bail!("the sample stream ended"),
            },
        }
    }
}

/// The samples after `sequence`, in stream order, through a freshly created consumer.
async fn open_samples(ctx: &Context, sequence: u64) -> anyhow::Result<pull::Stream> {
    recreate_consumer(ctx, sequence)
        .await?
        .stream()
        .max_messages_per_batch(ctx.settings.batch_size.clamp(1, 1_000))
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .context("pull from the metrics stream")
}

/// The durable consumer `alerter`, recreated to start right after `sequence`, so the leader
/// sees exactly what was not committed, in order.
async fn recreate_consumer(ctx: &Context, sequence: u64) -> anyhow::Result<PullConsumer> {
    use jetstream::consumer::{AckPolicy, DeliverPolicy};
    let name = ctx.subjects.stream_name(StreamKind::Metrics);
    let stream = ctx
        .js
        .get_stream(&name)
        .await
        .with_context(|| format!("stream {name}"))?;
    let _ = stream.delete_consumer(ALERTER_CONSUMER).await;
    let deliver_policy = DeliverPolicy::ByStartSequence {
        start_sequence: sequence + 1,
    };
    stream
        .create_consumer(pull::Config {
            durable_name: Some(ALERTER_CONSUMER.to_owned()),
            description: Some("FLick alerter (recreated by each leader)".to_owned()),
            deliver_policy,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: i64::try_from(ctx.settings.batch_size * 10).unwrap_or(10_000),
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .with_context(|| format!("create consumer {ALERTER_CONSUMER} on {name}"))
}

/// What the leader does after a batch.
#[derive(Debug)]
enum Step {
    Go,
    End(TermEnd),
    /// A sample is missing from what the consumer delivered: read again from the last one
    /// evaluated.
    Resume,
}

/// Evaluates a batch of samples, commits, acknowledges, hands transitions to the publisher.
///
/// Samples are evaluated in stream order without a hole. A message the consumer handed out
/// but that never arrived (its consumer leader died with it in flight, or another client
/// pulled it) would otherwise be skipped for good: the next acknowledgement (AckAll) covers
/// it, and a redelivery is older than what was evaluated. So a gap stops the batch there
/// and the leader reads again from the last sample it evaluated.
async fn process(
    ctx: &Context,
    term: &mut Term,
    batch: Vec<jetstream::Message>,
    stop: &CancellationToken,
) -> anyhow::Result<Step> {
    let started = Instant::now();
    let now = Instant::now();
    let mut events = Vec::new();
    let mut evaluated = 0u64;
    let mut last = None;
    let mut resume = false;
    for message in batch {
        let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
        if sequence > term.sequence {
            if sequence > term.sequence + 1
                && !term.gaps.passable(ctx, term.sequence, sequence).await
            {
                resume = true;
                break;
            }
            match decode_on::<MetricSample>(
                &ctx.subjects,
                &message.subject,
                &message.payload,
                Utc::now(),
            ) {
                Ok(sample) => {
                    term.watch.heard(&sample.server_id, now);
                    term.evaluator
                        .heard_from(&sample.server_id, Utc::now(), &mut events);
                    term.evaluator.observe(&sample, &term.rules, &mut events);
                    evaluated += 1;
                }
                Err(err) => {
                    ctx.deadletters
                        .forward(
                            &message.subject,
                            message.payload.clone(),
                            err.kind(),
                            &err.to_string(),
                        )
                        .await;
                }
            }
            term.sequence = sequence;
        }
        last = Some(message);
    }
    metrics::counter!("flick_alerter_samples_evaluated_total").increment(evaluated);
    let end = commit(ctx, term, events, stop, false).await?;
    if end.is_none()
        && let Some(last) = last
        && let Err(err) = last.ack().await
    {
        // AckAll: the next acknowledgement covers this one; a redelivery is skipped by sequence.
        tracing::debug!(error = %err, "Cannot acknowledge a batch");
    }
    metrics::histogram!("flick_alerter_batch_seconds").record(started.elapsed().as_secs_f64());
    Ok(match end {
        Some(end) => Step::End(end),
        None if resume => Step::Resume,
        None => Step::Go,
    })
}

/// How many times the leader reads again from one sample before accepting that the samples
/// after it are gone from the stream (deleted by hand).
const RESUMES_PER_GAP: u32 = 3;

/// Tells a sample the consumer failed to deliver from one no longer in the stream.
#[derive(Debug, Default)]
struct Gaps {
    after: u64,
    resumes: u32,
}

impl Gaps {
    /// Whether the leader, having evaluated up to `evaluated`, may go on with `next`: only when
    /// the samples between are no longer in the stream (aged out, or still missing after
    /// [`RESUMES_PER_GAP`] fresh reads).
    async fn passable(&mut self, ctx: &Context, evaluated: u64, next: u64) -> bool {
        let missing = next - evaluated - 1;
        let name = ctx.subjects.stream_name(StreamKind::Metrics);
        let first = match ctx.js.get_stream(&name).await {
            Ok(mut stream) => stream
                .info()
                .await
                .ok()
                .map(|info| info.state.first_sequence),
            Err(_) => None,
        };
        if self.after != evaluated {
            *self = Self {
                after: evaluated,
                resumes: 0,
            };
        }
        let gone = first.is_some_and(|first| first >= next);
        if gone || self.resumes >= RESUMES_PER_GAP {
            tracing::warn!(
                after = evaluated,
                missing,
                "Samples left the metrics stream before the alerter evaluated them"
            );
            metrics::counter!("flick_alerter_samples_skipped_total").increment(missing);
            return true;
        }
        self.resumes += 1;
        tracing::info!(
            after = evaluated,
            missing,
            "A sample was not delivered: reading again from the last one evaluated"
        );
        metrics::counter!("flick_alerter_consumer_resumes_total").increment(1);
        false
    }
}

/// Fires `offline` for servers silent past their timeout, and checkpoints.
async fn check_silence(
    ctx: &Context,
    term: &mut Term,
    stop: &CancellationToken,
) -> anyhow::Result<Option<TermEnd>> {
    let rules = &term.rules;
    let silent = term.watch.silent(
        Instant::now(),
        |server| {
            let rule = rules.rule(server.as_str(), Metric::Offline);
            rule.enabled.then(|| rule.hold.to_std().unwrap_or_default())
        },
        Duration::from_secs(u64::from(ctx.settings.offline_after_stop_secs)),
    );
    let mut events = Vec::new();
    let at = Utc::now();
    for (server, silence) in silent {
        term.evaluator.silent(
            &server,
            i64::try_from(silence.as_secs()).unwrap_or(i64::MAX),
            at,
            &mut events,
        );
    }
    let checkpoint =
        term.sequence > term.committed_sequence && term.last_commit.elapsed() >= CHECKPOINT_EVERY;
    commit(ctx, term, events, stop, checkpoint).await
}

/// Re-reads rules and channels, and forgets servers deleted from the fleet.
async fn reload_all(
    ctx: &Context,
    term: &mut Term,
    stop: &CancellationToken,
) -> anyhow::Result<Option<TermEnd>> {
    match ctx
        .store
        .load_rules(&ctx.defaults, ctx.settings.margin)
        .await
    {
        Ok(rules) => {
            if rules != term.rules {
                tracing::info!(overrides = rules.overrides().len(), "Alert rules changed");
                term.rules = rules;
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "Cannot reload alert rules; keeping the current ones")
        }
    }
    reload_channels(ctx).await;
    // A server is forgotten only once it was seen in `servers` and is gone from it (deleted
    // through the gateway): a server the persister has not recorded yet, or cannot record
    // while the database or the persister is down, keeps its alerts.
    let watched: Vec<_> = term.watch.servers().cloned().collect();
    let mut events = Vec::new();
    if let Ok(existing) = ctx.store.existing(&watched).await {
        for server in watched {
            if existing.contains(&server) {
                term.in_fleet.insert(server);
            } else if term.in_fleet.remove(&server) {
                tracing::info!(server = %server, "Server removed from the fleet: its alerts are closed");
                term.watch.forget(&server);
                term.evaluator.forget(&server, Utc::now(), &mut events);
            }
        }
    }
    metrics::gauge!("flick_alerter_active_alerts").set(term.evaluator.firing() as f64);
    commit(ctx, term, events, stop, false).await
}

async fn reload_channels(ctx: &Context) {
    match notify::load_channels(&ctx.store, ctx.keys.as_ref()).await {
        Ok(channels) => ctx.notifier.set_channels(channels),
        Err(err) => tracing::warn!(error = %err, "Cannot reload notification channels"),
    }
}

/// Commits what changed (and the progress), retrying while the database is away. `Some(end)`
/// when this replica must stop leading.
async fn commit(
    ctx: &Context,
    term: &mut Term,
    events: Vec<AlertEvent>,
    stop: &CancellationToken,
    checkpoint: bool,
) -> anyhow::Result<Option<TermEnd>> {
    if events.is_empty() && !term.evaluator.has_changes() && !checkpoint {
        return Ok(None);
    }
    let mut events = events;
    crate::culprits::attach(&ctx.js, &ctx.subjects, &mut events).await;
    let changes = term.evaluator.take_changes();
    let outgoing: Vec<Outgoing> = events
        .into_iter()
        .map(|event| Outgoing {
            id: event.id,
            subject: ctx.subjects.alerts(&event.server_id),
            payload: serde_json::to_string(&event).unwrap_or_default(),
            event: Some(event),
        })
        .collect();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        match ctx
            .store
            .commit(term.epoch, term.sequence, &changes, &outgoing)
            .await
        {
            Ok(()) => break,
            Err(CommitError::Fenced(epoch)) => {
                tracing::warn!(epoch, "Another replica leads now: stepping down");
                return Ok(Some(TermEnd::Fenced));
            }
            Err(CommitError::Database(err)) => {
                tracing::warn!(error = %err, "Cannot commit alert state; retrying");
                tokio::select! {
                    // State in memory is ahead of the database: a replica that gives up here
                    // must stop leading, and the next leader replays from the last commit.
                    () = stop.cancelled() => return Ok(Some(TermEnd::Shutdown)),
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    term.committed_sequence = term.sequence;
    term.last_commit = Instant::now();
    if !outgoing.is_empty() {
        let _ = term.to_publisher.send(outgoing);
        ctx.notify_wake.notify_one();
    }
    Ok(None)
}
