//! Replicas on one PostgreSQL ledger, through the real binary: kills, a database restart
//! and a database outage longer than a lease. Skipped (one line) without
//! `KPIBOT_TEST_POSTGRES_URL`; `.ci/run` starts a throwaway server. These tests restart
//! or stop that server, so they take turns.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::bot::*;
use common::fake_slack::{FakeSlack, Fault, TOKEN};

/// One test at a time touches the shared server's life.
static SERVER: Mutex<()> = Mutex::new(());

/// Three `serve` replicas on one PostgreSQL ledger, a report every 2 s, for
/// `KPIBOT_CHAOS_SECONDS` (default 180): every 10 s one replica (seeded) is SIGKILLed and
/// restarted 3 s later, and once PostgreSQL itself restarts. Every slot in the span is
/// posted exactly once, none later than the lease + 5 s after its time.
#[test]
#[ignore = "wall-clock: run by .ci/run serialised"]
fn three_replicas_on_postgres_survive_kills_and_a_database_restart() {
    let Some(server) = common::postgres::server_url() else {
        return;
    };
    let _turn = SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let url = block_on(common::postgres::fresh_database(&server));
    // Without the command (a server .ci/postgres did not start), the kills still run.
    let restart_database = common::postgres::server_var(
        "KPIBOT_TEST_POSTGRES_RESTART",
        "the database restart in the replicas test",
    );
    let span = Duration::from_secs(
        std::env::var("KPIBOT_CHAOS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    );
    let lease_seconds = 2;
    let slack = FakeSlack::start_in_background(&[
        ("C0KPICHAOS", "kpi-chaos", true),
        ("C0DATATEAM", "data-team", true),
    ]);
    let dir = setup(&[(
        "chaos.toml",
        report_toml("Chaos", EVERY_TWO_SECONDS, "#kpi-chaos"),
    )]);
    let lease = lease_seconds.to_string();
    let env = [
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__LEDGER__URL", url.as_str()),
        ("KPIBOT__LEDGER__TIMEOUT_MS", "1000"),
        ("KPIBOT__SCHEDULER__LEASE_SECONDS", lease.as_str()),
        ("RUST_LOG", "kpibot=warn"),
    ];
    let replicas: Vec<Bot> = (0..3).map(|_| Bot::new(dir.path(), &env)).collect();
    let mut running: Vec<Option<Running>> = replicas
        .iter()
        .enumerate()
        .map(|(i, bot)| Some(bot.start(&format!("replica-{i}-0.log"))))
        .collect();
    // Wall-clock time of the fake's `Instant`s, to compare posts with their slots.
    let (start_instant, start_wall) = (Instant::now(), chrono::Utc::now());
    let wall = |at: Instant| start_wall + chrono::Duration::from_std(at - start_instant).unwrap();
    let mut random = seed();
    eprintln!("chaos test seed: {random} (replay with KPIBOT_CRASH_SEED={random})");
    let mut pick = |n: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        (random % n) as usize
    };
    let mut restarts = 0;
    let mut database_restarted = false;
    while start_instant.elapsed() + Duration::from_secs(10) <= span {
        // The chaos schedule, not synchronisation: a kill every 10 s.
        std::thread::sleep(Duration::from_secs(7));
        let victim = pick(3);
        if let Some(replica) = running[victim].take() {
            replica.sigkill();
        }
        std::thread::sleep(Duration::from_secs(3));
        restarts += 1;
        running[victim] = Some(replicas[victim].start(&format!("replica-{victim}-{restarts}.log")));
        if !database_restarted
            && start_instant.elapsed() >= span / 2
            && let Some(command) = &restart_database
        {
            common::postgres::run_server_command(command);
            database_restarted = true;
            eprintln!("PostgreSQL restarted at {:?}", start_instant.elapsed());
        }
    }
    let end_wall = chrono::Utc::now();
    // Slots from the first one after all three started to 10 s before the end.
    let first_slot = start_wall + chrono::Duration::seconds(4);
    let last_slot = end_wall - chrono::Duration::seconds(10);
    let settle = Instant::now() + Duration::from_secs(lease_seconds + 10);
    let expected = || {
        let mut slots = Vec::new();
        let mut slot = first_slot.with_nanosecond(0).unwrap()
            + chrono::Duration::seconds(first_slot.timestamp() % 2);
        while slot <= last_slot {
            slots.push(slot);
            slot += chrono::Duration::seconds(2);
        }
        slots
    };
    use chrono::Timelike;
    let posts = || -> BTreeMap<chrono::DateTime<chrono::Utc>, Vec<Instant>> {
        let mut posts: BTreeMap<_, Vec<Instant>> = BTreeMap::new();
        for m in slack.messages_in("C0KPICHAOS") {
            let slot = chrono::DateTime::parse_from_rfc3339(
                m.body["metadata"]["event_payload"]["slot"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap()
            .to_utc();
            posts.entry(slot).or_default().push(m.at);
        }
        posts
    };
    while Instant::now() < settle && expected().iter().any(|slot| !posts().contains_key(slot)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    for replica in running.into_iter().flatten() {
        assert!(terminate(replica).success());
    }
    let posts = posts();
    let twice: Vec<_> = posts
        .iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(s, _)| s)
        .collect();
    let missing: Vec<_> = expected()
        .into_iter()
        .filter(|s| !posts.contains_key(s))
        .collect();
    let late: Vec<_> = expected()
        .into_iter()
        .filter_map(|slot| {
            let at = wall(*posts.get(&slot)?.first()?);
            let lateness = (at - slot).num_milliseconds();
            (lateness > (lease_seconds as i64 + 5) * 1000).then_some((slot, lateness))
        })
        .collect();
    let logs = || {
        let mut text = String::new();
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("replica-") {
                text.push_str(&format!(
                    "--- {name}\n{}\n",
                    std::fs::read_to_string(entry.path()).unwrap_or_default()
                ));
            }
        }
        text
    };
    eprintln!(
        "chaos test: {} slots checked, {restarts} SIGKILLs, database restarted: {database_restarted}",
        expected().len()
    );
    assert!(twice.is_empty(), "posted twice: {twice:?}");
    // For a missing slot, the log lines that mention its time (UTC or Tokyo).
    let about = |slots: &[chrono::DateTime<chrono::Utc>]| {
        let all = logs();
        let mut lines = Vec::new();
        for slot in slots {
            let utc = slot.format("%H:%M:%S").to_string();
            let tokyo = slot
                .with_timezone(&chrono_tz::Asia::Tokyo)
                .format("%H:%M:%S")
                .to_string();
            lines.extend(
                all.lines()
                    .filter(|l| l.starts_with("---") || l.contains(&utc) || l.contains(&tokyo))
                    .map(str::to_string),
            );
        }
        lines.join("\n")
    };
    assert!(
        missing.is_empty(),
        "never posted: {missing:?}\n{}",
        about(&missing)
    );
    assert!(
        late.is_empty(),
        "posted later than the lease + 5 s (slot, ms late): {late:?}\n{}",
        logs()
    );
    assert!(restart_database.is_none() || database_restarted);
}

/// A replica killed while it holds two slots (each stalled in its upload): the survivor
/// takes both over and posts each once, and its `kpibot_ledger_takeovers_total` rises by
/// exactly the slots the ledger shows were left open.
#[test]
fn a_survivor_counts_each_slot_it_takes_over_from_a_killed_replica() {
    let Some(server) = common::postgres::server_url() else {
        return;
    };
    let _turn = SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let url = block_on(common::postgres::fresh_database(&server));
    let slack = FakeSlack::start_in_background(&[
        ("C0KPITAKE1", "kpi-take-1", true),
        ("C0KPITAKE2", "kpi-take-2", true),
        ("C0DATATEAM", "data-team", true),
    ]);
    // Due 20 s from now: time for the replicas to start on a loaded machine (a start that
    // missed the slot would take nothing over, and the test would fail, not pass).
    let due = chrono::Utc::now() + chrono::Duration::seconds(20);
    let dir = setup(&[
        ("one.toml", due_once_report("One", "#kpi-take-1", due)),
        ("two.toml", due_once_report("Two", "#kpi-take-2", due)),
    ]);
    let env = [
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__LEDGER__URL", url.as_str()),
        ("KPIBOT__LEDGER__TIMEOUT_MS", "1000"),
        ("RUST_LOG", "kpibot=info"),
    ];
    // The first replica's two uploads hang: it is mid-run on both slots when it dies.
    slack.fail_next(
        "files.getUploadURLExternal",
        [
            Fault::Slow(Duration::from_secs(60)),
            Fault::Slow(Duration::from_secs(60)),
        ],
    );
    let (doomed, survivor) = (Bot::new(dir.path(), &env), Bot::new(dir.path(), &env));
    let victim = doomed.start("doomed.log");
    wait_for("both slots mid-upload", Duration::from_secs(30), || {
        slack.calls_of("files.getUploadURLExternal").len() >= 2
    });
    let running = survivor.start("survivor.log");
    let takeovers = "kpibot_ledger_takeovers_total";
    let before = survivor.metric(takeovers);
    // What the dead replica leaves behind, as the ledger records it.
    let left_open = block_on(async {
        kpibot::ledger::Ledger::postgres(&url, &kpibot::settings::LedgerSettings::default())
            .await
            .unwrap()
            .open_runs()
            .await
            .unwrap()
            .len()
    });
    assert_eq!(left_open, 2, "both slots held by the first replica");
    victim.sigkill();
    wait_for(
        "both slots posted by the survivor",
        Duration::from_secs(60),
        || {
            ["C0KPITAKE1", "C0KPITAKE2"]
                .iter()
                .all(|c| !slack.messages_in(c).is_empty())
        },
    );
    let after = survivor.metric(takeovers);
    assert!(terminate(running).success());
    assert_eq!(
        after - before,
        left_open as f64,
        "takeovers counted by the survivor\n{}",
        survivor.log("survivor.log")
    );
    for channel in ["C0KPITAKE1", "C0KPITAKE2"] {
        assert_eq!(slack.messages_in(channel).len(), 1, "{channel}");
    }
}

/// The database stops for longer than a lease and starts again: meanwhile `/readyz` says
/// not ready and runs wait; afterwards every slot of the outage is posted, once, and the
/// pool reconnected by itself (no restart of kpibot).
#[test]
fn a_database_outage_longer_than_a_lease_delays_slots_and_loses_none() {
    let Some(server) = common::postgres::server_url() else {
        return;
    };
    let outage = "the database outage test";
    let (Some(stop), Some(start)) = (
        common::postgres::server_var("KPIBOT_TEST_POSTGRES_STOP", outage),
        common::postgres::server_var("KPIBOT_TEST_POSTGRES_START", outage),
    ) else {
        return;
    };
    let _turn = SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let url = block_on(common::postgres::fresh_database(&server));
    let slack = FakeSlack::start_in_background(&[
        ("C0KPIDOWN", "kpi-down", true),
        ("C0DATATEAM", "data-team", true),
    ]);
    let dir = setup(&[(
        "down.toml",
        report_toml("Down", EVERY_TWO_SECONDS, "#kpi-down"),
    )]);
    let bot = Bot::new(
        dir.path(),
        &[
            ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
            ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
            ("KPIBOT__LEDGER__URL", url.as_str()),
            ("KPIBOT__LEDGER__TIMEOUT_MS", "1000"),
            ("RUST_LOG", "kpibot=warn"),
        ],
    );
    let child = bot.start("serve.log");
    wait_for("a first post", Duration::from_secs(30), || {
        !slack.messages_in("C0KPIDOWN").is_empty()
    });
    // Started again however the test ends: a failure here must not leave the server that
    // every later PostgreSQL test uses stopped.
    let stopped = common::postgres::StoppedServer::stop(&stop, &start);
    let down_at = chrono::Utc::now();
    wait_for("/readyz to say not ready", Duration::from_secs(30), || {
        bot.get("/readyz").is_some_and(|(status, _)| status == 503)
    });
    // Down for three leases (the lease is 2 s): the outage schedule, not synchronisation.
    std::thread::sleep(Duration::from_secs(6));
    stopped.start();
    let up_at = chrono::Utc::now();
    wait_for(
        "/readyz to say ready again",
        Duration::from_secs(30),
        || bot.get("/readyz").is_some_and(|(status, _)| status == 200),
    );
    let slots = || posts_per_slot(&slack, "C0KPIDOWN");
    let outage_slots = || {
        let mut expected = Vec::new();
        let mut slot = down_at + chrono::Duration::seconds(2 - down_at.timestamp() % 2);
        while slot <= up_at {
            use chrono::Timelike;
            let slot_text = slot
                .with_nanosecond(0)
                .unwrap()
                .with_timezone(&chrono_tz::Asia::Tokyo)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
            expected.push(slot_text);
            slot += chrono::Duration::seconds(2);
        }
        expected
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !outage_slots().iter().all(|slot| slots().contains_key(slot)) {
        assert!(
            Instant::now() < deadline,
            "slots of the outage never posted: expected {:?}, posted {:?}\n{}",
            outage_slots(),
            slots().keys().collect::<Vec<_>>(),
            bot.log("serve.log")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(terminate(child).success());
    let posted: BTreeMap<String, usize> = slots();
    assert!(posted.values().all(|n| *n == 1), "posted twice: {posted:?}");
    assert!(
        outage_slots().len() >= 3,
        "the outage spanned several slots"
    );
    let log = bot.log("serve.log");
    assert!(log.contains("the ledger is unavailable"), "{log}");
}

/// A load balancer as Kubernetes builds one: it probes each backend's `/readyz` on its
/// operations port every 200 ms and sends each new connection to the public port of the
/// next ready backend.
struct Balancer {
    port: u16,
    /// (public port, operations port, ready)
    backends: std::sync::Arc<Mutex<Vec<(u16, u16, bool)>>>,
}

impl Balancer {
    fn start() -> Self {
        let backends: std::sync::Arc<Mutex<Vec<(u16, u16, bool)>>> = Default::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let probed = backends.clone();
        std::thread::spawn(move || {
            loop {
                let ports: Vec<(u16, u16)> = probed
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(p, ops, _)| (*p, *ops))
                    .collect();
                let ready: Vec<(u16, bool)> = ports
                    .into_iter()
                    .map(|(p, ops)| (p, get_on(ops, "/readyz").is_some_and(|(s, _)| s == 200)))
                    .collect();
                let mut backends = probed.lock().unwrap();
                for (port, ok) in ready {
                    if let Some(entry) = backends.iter_mut().find(|(p, _, _)| *p == port) {
                        entry.2 = ok;
                    }
                }
                drop(backends);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let routed = backends.clone();
        std::thread::spawn(move || {
            let mut next = 0usize;
            for client in listener.incoming().flatten() {
                let ready: Vec<u16> = routed
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, _, ok)| *ok)
                    .map(|(p, _, _)| *p)
                    .collect();
                if ready.is_empty() {
                    continue; // dropped: the client sees no answer, and the test fails
                }
                next = next.wrapping_add(1);
                let backend = ready[next % ready.len()];
                std::thread::spawn(move || {
                    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", backend)) else {
                        return;
                    };
                    let (mut client_read, mut server_write) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let upstream = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut client_read, &mut server_write);
                    });
                    let (mut server_read, mut client_write) = (server, client);
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                    // The backend closed (Connection: close): so does the client's side.
                    let _ = client_write.shutdown(std::net::Shutdown::Both);
                    let _ = server_read.shutdown(std::net::Shutdown::Both);
                    let _ = upstream.join();
                });
            }
        });
        Self { port, backends }
    }

    fn add(&self, bot: &Bot) {
        self.backends
            .lock()
            .unwrap()
            .push((bot.port(), bot.ops_port(), false));
    }

    fn remove(&self, port: u16) {
        self.backends.lock().unwrap().retain(|(p, _, _)| *p != port);
    }

    fn is_ready(&self, port: u16) -> bool {
        self.backends
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _, ok)| *p == port && *ok)
    }
}

/// A signed `/kpi help` through `port`, one connection: the HTTP status, if any.
fn ask_help(port: u16) -> Option<u16> {
    // Each request its own, as Slack's are: a signed request sent twice is refused.
    static TRIGGERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let trigger = TRIGGERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = &format!(
        "command=%2Fkpi&text=help&user_id=U0ALICE&channel_id=C0KPIROLL&response_url=http%3A%2F%2F127.0.0.1%3A9%2Fnone&trigger_id={trigger}"
    );
    let response = post_signed_command(port, ROLL_SECRET, body)?;
    response.split_whitespace().nth(1)?.parse().ok()
}

const ROLL_SECRET: &str = "rolling-restart-secret";

/// Two replicas behind a readiness-following balancer are replaced one by one (a new one
/// started and ready, then the old one sent SIGTERM), while `/kpi` arrives at 20 per
/// second: every request is acknowledged with 200.
#[test]
fn slash_commands_keep_being_answered_through_a_rolling_restart() {
    let Some(server) = common::postgres::server_url() else {
        return;
    };
    let _turn = SERVER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let url = block_on(common::postgres::fresh_database(&server));
    let slack = FakeSlack::start_in_background(&[("C0KPIROLL", "kpi-roll", true)]);
    let dir = setup(&[]);
    let env = [
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__SLACK__SIGNING_SECRET", ROLL_SECRET),
        ("KPIBOT__LEDGER__URL", url.as_str()),
        // As deployed: readiness turns "not ready" at SIGTERM, the listener answers on.
        ("KPIBOT__HTTP__DRAIN_SECONDS", "2"),
        ("RUST_LOG", "kpibot=warn"),
    ];
    let balancer = Balancer::start();
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let bot = Bot::new(dir.path(), &env);
        let running = bot.start(&format!("{name}.log"));
        balancer.add(&bot);
        replicas.push((bot, running));
    }
    wait_for(
        "both replicas in the balancer",
        Duration::from_secs(30),
        || {
            replicas
                .iter()
                .all(|(bot, _)| balancer.is_ready(bot.port()))
        },
    );
    // The request stream: one `/kpi help` every 50 ms until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = {
        let (stop, port) = (stop.clone(), balancer.port);
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            let mut next = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                answers.push(ask_help(port));
                next += Duration::from_millis(50);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            answers
        })
    };
    for generation in 1..=2 {
        for (index, replica) in replicas.iter_mut().enumerate() {
            let bot = Bot::new(dir.path(), &env);
            let running = bot.start(&format!("replica-{index}-gen-{generation}.log"));
            balancer.add(&bot);
            wait_for(
                "the new replica to be ready",
                Duration::from_secs(30),
                || balancer.is_ready(bot.port()),
            );
            let (old_bot, old) = std::mem::replace(replica, (bot, running));
            assert!(terminate(old).success(), "the old replica stops cleanly");
            balancer.remove(old_bot.port());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers = stream.join().unwrap();
    for (_, running) in replicas {
        assert!(terminate(running).success());
    }
    let failed: Vec<_> = answers.iter().filter(|a| **a != Some(200)).collect();
    eprintln!(
        "rolling restart: {} requests through 4 replacements, {} not acknowledged with 200",
        answers.len(),
        failed.len()
    );
    assert!(answers.len() >= 40, "the stream ran through the restarts");
    assert!(
        failed.is_empty(),
        "refused or dropped during the rolling restart: {failed:?}"
    );
}
