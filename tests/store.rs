//! The state store, the same tests against SQLite (a file) and PostgreSQL (a fresh
//! database on the server named by PIRACK_TEST_POSTGRES, which `.ci/run` starts).

mod common;

use pirack_controller::store::events::Page;
use pirack_controller::store::ops::OpStatus;
use pirack_controller::store::slots::Changes;
use pirack_controller::store::tokens::Scope;
use pirack_controller::store::{Store, StoreError};
use pirack_core::lifecycle::{State, Trigger};
use pirack_core::plan::Ledger;
use sqlx::Connection;
use std::future::Future;
use std::path::Path;

/// A store under test, and how to clean up after it.
struct Under {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL admin URL and the test's database, dropped afterwards.
    postgres: Option<(String, String)>,
}

async fn admin_sql(admin: &str, sql: String) {
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// A store on each backend available here; PostgreSQL is required under CI.
async fn stores(test: &str) -> Vec<Under> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/state.db", dir.path().display());
    let mut out = vec![Under {
        store: Store::open(&sqlite).await.unwrap(),
        url: sqlite,
        _dir: Some(dir),
        postgres: None,
    }];
    match std::env::var("PIRACK_TEST_POSTGRES") {
        Ok(admin) => {
            sqlx::any::install_default_drivers();
            let name = format!("pirack_{}_{}", test, std::process::id());
            admin_sql(&admin, format!("DROP DATABASE IF EXISTS {name}")).await;
            admin_sql(&admin, format!("CREATE DATABASE {name}")).await;
            let url = match admin.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => panic!("PIRACK_TEST_POSTGRES needs a database path: {admin}"),
            };
            out.push(Under {
                store: Store::open(&url).await.unwrap(),
                url,
                _dir: None,
                postgres: Some((admin, name)),
            });
        }
        Err(_) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{test}: PIRACK_TEST_POSTGRES is not set, and CI must test PostgreSQL"
            );
            eprintln!(
                "{test}: PostgreSQL skipped (set PIRACK_TEST_POSTGRES=postgres://user:pw@host/db)"
            );
        }
    }
    out
}

fn on_each<F, Fut>(test: &str, f: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for under in stores(test).await {
            eprintln!("{test}: {:?}", under.store.backend());
            let pool = under.store.pool().clone();
            f(under.store).await;
            pool.close().await;
            if let Some((admin, name)) = under.postgres {
                admin_sql(&admin, format!("DROP DATABASE {name}")).await;
            }
        }
    });
}

#[test]
fn slots_follow_the_inventory_and_the_lifecycle() {
    on_each("slots", |store| async move {
        let site = common::site("hardware/example-8.yaml");
        store.sync_inventory(&site).await.unwrap();
        store.sync_inventory(&site).await.unwrap(); // twice changes nothing
        let slots = store.slots(None).await.unwrap();
        assert_eq!(slots.len(), 8);
        let a1 = store.slot("A-01").await.unwrap();
        assert_eq!(a1.key, "sw-a/1");
        assert_eq!(a1.owner.as_deref(), Some("acme"));
        assert_eq!(store.slots(Some("globex")).await.unwrap().len(), 2);
        let known = slots.iter().filter(|s| s.board.is_some()).count();
        assert_eq!(
            slots
                .iter()
                .filter(|s| s.state == State::Registered)
                .count(),
            known
        );

        let mut s = a1;
        if s.state == State::Empty {
            s = store
                .transition(&s, Trigger::BoardKnown, "test", Changes::default())
                .await
                .unwrap();
        }
        for t in [
            Trigger::Provision,
            Trigger::RootBuilt,
            Trigger::PowerOn,
            Trigger::DhcpSeen,
        ] {
            s = store
                .transition(&s, t, "test", Changes::default())
                .await
                .unwrap();
        }
        assert_eq!(store.slot("sw-a/1").await.unwrap(), s);
        assert_eq!(s.state, State::Dhcp);

        // Illegal: refused with the reason, nothing written.
        let e = store
            .transition(&s, Trigger::Reimage, "test", Changes::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("power the slot off first"), "{e}");
        assert_eq!(store.slot("A-01").await.unwrap().version, s.version);

        // Two writers decided from the same read: the second is told so.
        let stale = s.clone();
        store
            .transition(&s, Trigger::TftpSeen, "one", Changes::default())
            .await
            .unwrap();
        let e = store
            .transition(&stale, Trigger::TftpSeen, "two", Changes::default())
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");

        let events = store
            .events(0, 100, Some(&["sw-a/1".to_string()]))
            .await
            .unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert!(
            kinds.ends_with(&[
                "provision",
                "root_built",
                "power_on",
                "dhcp_seen",
                "tftp_seen"
            ]),
            "{kinds:?}"
        );
        assert_eq!(events.last().unwrap().detail, "dhcp -> tftp");
        assert_eq!(events.last().unwrap().cause, "one");
        assert!(
            store
                .events(0, 100, Some(&["sw-a/2".to_string()]))
                .await
                .unwrap()
                .is_empty()
        );

        // Leaving the inventory hides a slot but keeps its row.
        let mut smaller = site.clone();
        smaller.slots.retain(|s| s.position != "A-08");
        store.sync_inventory(&smaller).await.unwrap();
        assert_eq!(store.slots(None).await.unwrap().len(), 7);
        assert!(!store.slot("A-08").await.unwrap().in_inventory);
    });
}

#[test]
fn concurrent_claims_never_share_a_slot() {
    on_each("claims", |store| async move {
        let mut site = common::site("hardware/shelf-96.yaml");
        for s in &mut site.slots {
            s.owner = None;
        }
        store.sync_inventory(&site).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..96 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .claim(&format!("customer-{}", i % 7), "ci-tiny", None)
                    .await
            });
        }
        let mut keys = std::collections::BTreeSet::new();
        while let Some(done) = tasks.join_next().await {
            let slot = done.unwrap().unwrap();
            assert_eq!(slot.state, State::BuildingRoot);
            assert!(
                keys.insert(slot.key.clone()),
                "{} handed out twice",
                slot.key
            );
        }
        assert_eq!(keys.len(), 96);
        let e = store.claim("late", "ci-tiny", None).await.unwrap_err();
        assert_eq!(e.to_string(), "no free slot");
        assert_eq!(store.slots(Some("customer-0")).await.unwrap().len(), 14);
    });
}

#[test]
fn the_ledger_moves_into_the_store() {
    on_each("ledger", |store| async move {
        let file = Ledger::load(Path::new("hardware/example-8.ledger.yaml")).unwrap();
        assert_eq!(store.record_ledger(&file).await.unwrap(), 8);
        assert_eq!(store.record_ledger(&file).await.unwrap(), 0, "idempotent");
        assert_eq!(store.ledger().await.unwrap(), file);

        // The plan against the stored ledger is the plan against the file.
        let site = common::site("hardware/example-8.yaml");
        let (from_store, unchanged) =
            pirack_core::plan::plan(&site, &store.ledger().await.unwrap()).unwrap();
        let (from_file, _) = pirack_core::plan::plan(&site, &file).unwrap();
        assert_eq!(from_store, from_file);
        assert_eq!(unchanged, file);

        // Different addresses for a slot already held: refused, nothing changes.
        let mut other = file.clone();
        let key = "sw-a/1".parse().unwrap();
        other.slots.get_mut(&key).unwrap().vlan = 99;
        let e = store.record_ledger(&other).await.unwrap_err();
        assert!(
            e.to_string().contains("already holds other addresses"),
            "{e}"
        );
        assert_eq!(store.ledger().await.unwrap(), file);

        // A released slot's addresses may go again; the fsid counter never falls.
        assert!(store.release("sw-a/8").await.unwrap());
        assert!(!store.release("sw-a/8").await.unwrap());
        let after = store.ledger().await.unwrap();
        assert_eq!(after.slots.len(), 7);
        assert_eq!(after.next_fsid, file.next_fsid);
        let mut lower = after.clone();
        lower.next_fsid = 1;
        store.record_ledger(&lower).await.unwrap();
        assert_eq!(store.ledger().await.unwrap().next_fsid, file.next_fsid);
    });
}

#[test]
fn tokens_are_kept_hashed_and_scoped() {
    on_each("tokens", |store| async move {
        let (admin, admin_token) = store.create_token("ops", &Scope::Admin).await.unwrap();
        let (acme, acme_token) = store
            .create_token("acme ci", &Scope::Customer("acme".into()))
            .await
            .unwrap();
        assert!(admin_token.starts_with(&format!("pirack_{}_", admin.id)));
        assert_eq!(
            store
                .authenticate(&admin_token)
                .await
                .unwrap()
                .unwrap()
                .scope,
            Scope::Admin
        );
        assert_eq!(
            store
                .authenticate(&acme_token)
                .await
                .unwrap()
                .unwrap()
                .scope,
            Scope::Customer("acme".into())
        );
        assert_eq!(store.authenticate("pirack_x_y").await.unwrap(), None);
        let stored: Vec<String> = sqlx::query_scalar("SELECT hash FROM tokens")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(
            stored
                .iter()
                .all(|h| h.len() == 64 && !h.contains("pirack_"))
        );
        assert!(store.revoke_token(&acme.id).await.unwrap());
        assert!(!store.revoke_token(&acme.id).await.unwrap());
        assert_eq!(store.authenticate(&acme_token).await.unwrap(), None);
        let listed = store.tokens().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed[1].revoked_at.is_some() || listed[0].revoked_at.is_some());
    });
}

#[test]
fn operations_and_event_pages() {
    on_each("ops", |store| async move {
        let op = store
            .start_op("op-1", "provision", None, Some("acme"))
            .await
            .unwrap();
        assert_eq!(op.status, OpStatus::Running);
        store
            .update_op("op-1", OpStatus::Succeeded, Some("sw-a/3"), "ready", None)
            .await
            .unwrap();
        let op = store.op("op-1").await.unwrap().unwrap();
        assert_eq!(
            (op.status, op.slot.as_deref(), op.detail.as_str()),
            (OpStatus::Succeeded, Some("sw-a/3"), "ready")
        );
        store
            .start_op("op-2", "reimage", Some("sw-a/4"), None)
            .await
            .unwrap();
        store
            .start_op("op-3", "provision", Some("sw-a/5"), None)
            .await
            .unwrap();
        assert_eq!(
            store.running_ops().await.unwrap().len(),
            2,
            "op-1 ended, op-2 and op-3 run"
        );
        // op-3's build resumes under its id; op-2 is cut short (once).
        assert_eq!(
            store.fail_interrupted_ops(&["op-2".into()]).await.unwrap(),
            1
        );
        assert_eq!(
            store.fail_interrupted_ops(&["op-2".into()]).await.unwrap(),
            0
        );
        assert_eq!(
            store.op("op-3").await.unwrap().unwrap().status,
            OpStatus::Running
        );
        assert_eq!(
            store.op("op-2").await.unwrap().unwrap().status,
            OpStatus::Failed
        );
        assert_eq!(
            store.op("op-2").await.unwrap().unwrap().error.as_deref(),
            Some("interrupted")
        );
        assert_eq!(store.op("nope").await.unwrap(), None);

        for i in 0..25 {
            let e = pirack_controller::store::events::NewEvent {
                at: i,
                slot: Some(format!("sw-a/{}", i % 3)),
                board: None,
                kind: "tftp_seen".into(),
                cause: "test".into(),
                detail: format!("file {i}"),
                // The first slot's events: one tenant's, then another's.
                owner: Some(if i < 12 { "acme" } else { "globex" }.to_string()),
                actor: None,
            };
            store.event(&e).await.unwrap();
        }
        let acme = store
            .events_of(Page::After(0), 100, None, Some("acme"))
            .await
            .unwrap();
        assert_eq!(acme.len(), 12, "a tenant reads its own events only");
        assert!(acme.iter().all(|e| e.owner.as_deref() == Some("acme")));
        let first = store.events(0, 10, None).await.unwrap();
        assert_eq!(first.len(), 10);
        let next = store
            .events(first.last().unwrap().id, 10, None)
            .await
            .unwrap();
        assert_eq!(next[0].detail, "file 10");
        let mine = store
            .events(0, 100, Some(&["sw-a/1".to_string()]))
            .await
            .unwrap();
        assert_eq!(mine.len(), 8);
        assert!(mine.iter().all(|e| e.slot.as_deref() == Some("sw-a/1")));
        // Newest first, older pages before the last id of the one before.
        let newest = store
            .events_of(Page::Before(i64::MAX), 10, None, None)
            .await
            .unwrap();
        assert_eq!(newest[0].detail, "file 24");
        let older = store
            .events_of(Page::Before(newest[9].id), 10, None, None)
            .await
            .unwrap();
        assert_eq!(older[0].detail, "file 14");

        // Retention: what is older than the cut goes; running operations stay.
        let p = store.prune(20).await.unwrap();
        assert_eq!((p.events, p.operations), (20, 0));
        assert_eq!(store.events(0, 100, None).await.unwrap().len(), 5);
        let p = store
            .prune(pirack_controller::store::now_ms() + 1)
            .await
            .unwrap();
        assert_eq!((p.events, p.operations), (5, 2), "op-1 and op-2 ended");
        assert!(store.op("op-3").await.unwrap().is_some(), "op-3 runs");
    });
}

#[test]
fn one_controller_holds_the_lease_until_it_lapses_or_its_process_is_gone() {
    use pirack_controller::store::StoreError;
    use pirack_controller::store::lease::{DEFAULT_TTL_MS, Lease};
    const RACK: &str = "rack:fs1";
    on_each("lease", |store| async move {
        assert_eq!(store.lease(RACK).await.unwrap(), None);
        let me = Lease::mine(RACK, "pirack serve", DEFAULT_TTL_MS);
        let taken = store.take_lease(&me).await.unwrap();
        assert_eq!(taken.generation, 1);
        let again = store.take_lease(&me).await.unwrap(); // its own again
        assert_eq!(again.generation, 1, "the same holder keeps its generation");
        assert_eq!(store.lease(RACK).await.unwrap(), Some(taken.clone()));
        let other = Lease {
            host: "fs2.example".into(),
            pid: 4242,
            ..Lease::mine(RACK, "pirack serve", DEFAULT_TTL_MS)
        };
        let refused = store.take_lease(&other).await.unwrap_err();
        assert!(
            matches!(&refused, StoreError::Held(h) if **h == taken),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("pirack serve (pid"),
            "{refused}"
        );
        assert!(store.renew_lease(&taken).await.unwrap());
        // Another lease is another's to take: the region's leader.
        let leader = Lease {
            name: "region".into(),
            ..other.clone()
        };
        assert_eq!(store.take_lease(&leader).await.unwrap().generation, 1);
        let still = store.lease(RACK).await.unwrap().unwrap();
        assert_eq!((still.pid, still.generation), (taken.pid, 1));
        // Given up on a clean stop: the next one takes it at once, with the
        // next generation, and that is no failover.
        store.drop_lease(&taken).await.unwrap();
        assert_eq!(store.lease(RACK).await.unwrap(), None);
        assert_eq!(store.take_lease(&other).await.unwrap().generation, 2);
        assert!(store.failovers(10).await.unwrap().is_empty());
        assert!(!store.renew_lease(&taken).await.unwrap(), "no longer mine");
        // Another host's lease lapses only when it is not renewed within its
        // own lifetime.
        let short = Lease {
            renewed_at: other.renewed_at - 2_001,
            ttl_ms: 2_000,
            ..other.clone()
        };
        store.take_lease(&short).await.unwrap();
        assert_eq!(store.lease(RACK).await.unwrap(), None, "lapsed");
        let third = store.take_lease(&me).await.unwrap();
        assert_eq!(third.generation, 3);
        let failovers = store.failovers(10).await.unwrap();
        assert_eq!(failovers.len(), 1, "{failovers:?}");
        assert!(failovers[0].from_holder.contains("fs2.example"));
        assert!(failovers[0].lapsed_ms > 2_000 && failovers[0].generation == 3);
        // A holder on this host whose process is gone (a killed controller)
        // gives way at once.
        let dead = Lease {
            pid: i64::from(i32::MAX),
            ..Lease::mine(RACK, "pirack serve", DEFAULT_TTL_MS)
        };
        store.drop_lease(&third).await.unwrap();
        store.take_lease(&dead).await.unwrap();
        store.take_lease(&me).await.unwrap();
    });
}

#[test]
fn a_controller_whose_lease_passed_to_another_writes_nothing_more() {
    use pirack_controller::store::lease::{self, Lease};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for under in stores("fence").await {
            let old = under.store;
            let me = Lease::mine("rack:fs1", "pirack serve", 2_000);
            let taken = old.take_lease(&me).await.unwrap();
            old.fence_by(taken.clone());
            old.add_owner("acme", pirack_controller::store::owners::Source::Inventory)
                .await
                .unwrap();
            // It stalls past its lease; another controller takes over.
            let new = Store::open(&under.url).await.unwrap();
            let successor = Lease {
                host: "fs2.example".into(),
                pid: 4242,
                renewed_at: me.renewed_at + 2_001,
                ..me.clone()
            };
            let stale = Lease {
                renewed_at: me.renewed_at - 2_001,
                ..me.clone()
            };
            // (Its last renewal, back-dated past the lifetime.)
            old.take_lease(&stale).await.unwrap();
            assert_eq!(new.take_lease(&successor).await.unwrap().generation, 2);
            let fenced = old
                .add_owner(
                    "globex",
                    pirack_controller::store::owners::Source::Inventory,
                )
                .await
                .unwrap_err();
            assert!(
                matches!(fenced, StoreError::Fenced(1)),
                "{:?}: {fenced}",
                old.backend()
            );
            assert!(
                !old.renew_lease(&taken).await.unwrap(),
                "its renewal says so"
            );
            // A duty under a lease of its own (the region's) is fenced by
            // that one alone.
            let region = Lease {
                name: "region".into(),
                ..me.clone()
            };
            let leading = old.take_lease(&region).await.unwrap();
            let owner = pirack_controller::store::owners::Source::Inventory;
            lease::under(leading.clone(), old.add_owner("initech", owner))
                .await
                .unwrap();
            let next = Lease {
                generation: leading.generation + 1,
                ..leading.clone()
            };
            let gone = lease::under(next, old.add_owner("umbrella", owner)).await;
            assert!(matches!(gone, Err(StoreError::Fenced(_))), "{gone:?}");
            new.add_owner(
                "globex",
                pirack_controller::store::owners::Source::Inventory,
            )
            .await
            .unwrap();
            for s in [old, new] {
                s.pool().close().await;
            }
            if let Some((admin, name)) = under.postgres {
                admin_sql(&admin, format!("DROP DATABASE {name}")).await;
            }
        }
    });
}

#[test]
fn boards_are_remembered_by_serial_and_slot() {
    on_each("boards", |store| async move {
        store
            .saw_board("7285c0f2", "b8:27:eb:85:c0:f2", "pi3", "sw-a/1", false)
            .await
            .unwrap();
        store
            .saw_board("1111aaaa", "b8:27:eb:00:00:01", "pi3", "sw-a/2", true)
            .await
            .unwrap();
        // The first board moved to slot 2 (staff swapped them): one row per serial.
        store
            .saw_board("7285c0f2", "b8:27:eb:85:c0:f2", "pi3", "sw-a/2", false)
            .await
            .unwrap();
        assert!(store.boards_in("sw-a/1").await.unwrap().is_empty());
        let in2 = store.boards_in("sw-a/2").await.unwrap();
        assert_eq!(in2.len(), 2);
        assert!(in2.contains(&("1111aaaa".into(), "b8:27:eb:00:00:01".into(), true)));
        assert!(in2.contains(&("7285c0f2".into(), "b8:27:eb:85:c0:f2".into(), false)));
        // A slot keeps its newest held boards only; its own board stays.
        for i in 0..40 {
            store
                .saw_board(
                    &format!("f{i:07x}"),
                    "b8:27:eb:00:00:02",
                    "pi3",
                    "sw-a/2",
                    true,
                )
                .await
                .unwrap();
        }
        let in2 = store.boards_in("sw-a/2").await.unwrap();
        let held = in2.iter().filter(|b| b.2).count();
        assert_eq!(held as i64, pirack_controller::store::boards::HELD_PER_SLOT);
        assert!(in2.iter().any(|b| b.0 == "7285c0f2"));
    });
}

#[test]
fn power_operations_images_and_roots_are_recorded() {
    use pirack_controller::store::records::PowerOp;
    on_each("records", |store| async move {
        let op = |ok: bool| PowerOp {
            slot: "sw-a/3".into(),
            action: "cycle".into(),
            cause: "watchdog".into(),
            ok,
            detail: "port 3 on, delivering-power".into(),
            started_at: 1,
            finished_at: 2,
        };
        store.record_power(&op(false)).await.unwrap();
        store.record_power(&op(true)).await.unwrap();
        assert_eq!(
            store.power_ops("sw-a/3").await.unwrap(),
            [op(false), op(true)]
        );
        assert!(store.power_ops("sw-a/4").await.unwrap().is_empty());
        assert_eq!(
            store.prune(2).await.unwrap().power,
            0,
            "kept until old enough"
        );
        assert_eq!(store.prune(3).await.unwrap().power, 2);
        assert!(store.power_ops("sw-a/3").await.unwrap().is_empty());

        store
            .record_image("tiny-1", "tiny", "1", "{}")
            .await
            .unwrap();
        store
            .record_image("tiny-1", "tiny", "1", "{}")
            .await
            .unwrap();
        assert_eq!(store.images().await.unwrap(), ["tiny-1"]);

        store.record_root("sw-a/3", "tiny-1", None).await.unwrap();
        store
            .record_root("sw-a/3", "tiny-2", Some("tiny-1"))
            .await
            .unwrap();
        assert_eq!(
            store.root("sw-a/3").await.unwrap(),
            Some(("tiny-2".to_string(), Some("tiny-1".to_string())))
        );
        store.forget_root("sw-a/3").await.unwrap();
        assert_eq!(store.root("sw-a/3").await.unwrap(), None);
    });
}

#[test]
fn a_sqlite_store_is_created_private_whatever_the_umask_and_directory() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = tmp.path().join("state/pirack.db");
    // A permissive umask, as a careless unit file would leave it.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" token create --name t --admin --db \"$1\"")
        .arg(env!("CARGO_BIN_EXE_pirack"))
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600, "the store file");
    assert_eq!(
        mode(db.parent().unwrap()),
        0o700,
        "its directory, made for it"
    );
    for side in ["pirack.db-wal", "pirack.db-shm"] {
        let p = db.with_file_name(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
}

#[test]
fn alerts_deliveries_routes_and_windows_are_kept() {
    use pirack_controller::store::alerts::{Covered, DeliveryRow, WindowRow};
    on_each("alerts", |store| async move {
        let covered = |key: &str, owner: &str| Covered {
            key: key.into(),
            position: key.to_uppercase(),
            owner: Some(owner.into()),
            why: "ping: no answer".into(),
        };
        let both = [covered("sw-a/1", "acme"), covered("sw-a/5", "globex")];
        let id = store
            .open_alert("switch:sw-a", "switch sw-a does not answer", &both)
            .await
            .unwrap();
        store.alert_sent(id, 1_000, false).await.unwrap();
        store.alert_sent(id, 2_000, true).await.unwrap();
        let open = store.open_alerts().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].sent_at, open[0].repeats), (Some(2_000), 1));
        assert_eq!(open[0].slots, both);
        // A customer sees the alert with its own slots only; another none.
        let mine = store.alerts(Some("acme"), 10).await.unwrap();
        assert_eq!(mine[0].slots, [both[0].clone()]);
        assert!(store.alerts(Some("initech"), 10).await.unwrap().is_empty());
        for owner in [None, Some("acme")] {
            let d = DeliveryRow {
                alert_id: id,
                route: "site:0".into(),
                owner: owner.map(str::to_string),
                notice: "fire".into(),
                status: "sent".into(),
                attempts: 1,
                detail: String::new(),
                at: 1_000,
            };
            store.record_delivery(&d).await.unwrap();
        }
        assert_eq!(store.deliveries(id, None).await.unwrap().len(), 2);
        assert_eq!(store.deliveries(id, Some("acme")).await.unwrap().len(), 1);
        store.resolve_alert(id).await.unwrap();
        assert!(store.open_alerts().await.unwrap().is_empty());
        assert!(
            store
                .alert(id)
                .await
                .unwrap()
                .unwrap()
                .resolved_at
                .is_some()
        );

        let r = store
            .add_alert_route(Some("acme"), "ntfy://h/t")
            .await
            .unwrap();
        let staff = store.add_alert_route(None, "prowl:k").await.unwrap();
        assert!(
            !store
                .delete_alert_route(&r.id, Some("globex"))
                .await
                .unwrap()
        );
        assert!(store.delete_alert_route(&r.id, Some("acme")).await.unwrap());
        assert_eq!(store.alert_routes().await.unwrap(), [staff]);

        let now = pirack_controller::store::now_ms();
        let w = WindowRow {
            id: "mw-1".into(),
            scope: "slot:sw-a/5".into(),
            owner: Some("globex".into()),
            starts_at: now,
            ends_at: now + 60_000,
            reason: "upgrade".into(),
        };
        store.add_maintenance(&w).await.unwrap();
        assert_eq!(store.maintenance(now).await.unwrap(), [w]);
        assert!(!store.end_maintenance("mw-1", Some("acme")).await.unwrap());
        assert!(store.end_maintenance("mw-1", Some("globex")).await.unwrap());
        assert!(
            store
                .maintenance(pirack_controller::store::now_ms() + 1)
                .await
                .unwrap()
                .is_empty()
        );
    });
}
