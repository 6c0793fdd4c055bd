//! The watchdog: a slot that stays in a boot stage past its deadline is
//! power-cycled through its switch port (for a Pi 3, the only dependable recovery),
//! with the deadlines doubling after each cycle, and marked `failed` with an alert
//! once it has had its cycles. Deadlines count from the state's start in the store,
//! so they survive a controller restart.

use crate::Controller;
use crate::power::PowerAction;
use crate::store::now_ms;
use crate::store::slots::{Changes, SlotRow};
use pirack_core::inventory::model::Watchdog;
use pirack_core::lifecycle::{State, Trigger};
use std::sync::Arc;
use std::time::Duration;

/// How long a slot may stay in `state` after `recoveries` power cycles (a root
/// build's deadline does not back off: no power cycle helps it).
pub fn deadline(w: &Watchdog, state: State, recoveries: i64) -> Option<Duration> {
    if matches!(state, State::BuildingRoot | State::Reimaging) {
        return Some(Duration::from_secs(w.root_build_s));
    }
    let base = match state {
        State::PoweringOn => w.powering_on_s,
        State::Dhcp => w.dhcp_s,
        State::Tftp => w.tftp_s,
        State::KernelLoaded => w.kernel_loaded_s,
        State::NfsMounted => w.nfs_mounted_s,
        _ => return None,
    };
    let backoff = 1u64 << recoveries.clamp(0, 3);
    Some(Duration::from_secs(base.saturating_mul(backoff)))
}

/// Checks every slot each `tick` until the process ends.
pub async fn run(ctl: Arc<Controller>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let slots = match ctl.store.slots(None).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("watchdog cannot read slots: {e}");
                continue;
            }
        };
        for slot in slots.into_iter().filter(|s| ctl.serves(&s.key)) {
            let Some(limit) = deadline(&ctl.site.watchdog, slot.state, slot.recoveries) else {
                continue;
            };
            let stalled_ms = now_ms() - slot.state_since;
            if stalled_ms < limit.as_millis() as i64 {
                continue;
            }
            let ctl2 = Arc::clone(&ctl);
            // One slot's power cycle must not hold up the others' checks.
            ctl.operations
                .spawn(async move { recover(&ctl2, slot, stalled_ms).await });
        }
    }
}

async fn recover(ctl: &Controller, slot: SlotRow, stalled_ms: i64) {
    let w = &ctl.site.watchdog;
    let stalled = format!(
        "stalled in {} for {:.0} s",
        slot.state,
        stalled_ms as f64 / 1000.0
    );
    if matches!(slot.state, State::BuildingRoot | State::Reimaging) {
        let cause = format!("{stalled}: the root build never ended");
        if let Ok(failed) = ctl
            .store
            .transition(&slot, Trigger::RootFailed, &cause, Changes::default())
            .await
        {
            ctl.metrics.failures.inc();
            alert(ctl, &failed, &format!("{} failed: {cause}", slot.position)).await;
        }
        return;
    }
    if slot.recoveries >= i64::from(w.max_recoveries) {
        let cause = format!(
            "{stalled} after {} power cycle(s): giving up",
            slot.recoveries
        );
        match ctl
            .store
            .transition(&slot, Trigger::GiveUp, &cause, Changes::default())
            .await
        {
            Ok(_) => {
                ctl.metrics.failures.inc();
                alert(ctl, &slot, &format!("{} failed: {cause}", slot.position)).await;
                tracing::error!("{}: {cause}", slot.position);
            }
            Err(e) => tracing::debug!("{}: not given up: {e}", slot.position),
        }
        return;
    }
    // An operator's power operation under way has the slot's power: no cycle
    // beside it (the next tick looks again).
    let Ok(_claim) = ctl.power_claims.claim(&slot.key, None) else {
        tracing::debug!(
            "{}: its power is being switched; no recovery now",
            slot.position
        );
        return;
    };
    // Claim the recovery first (a moved slot refuses it), so two ticks never cycle
    // one slot twice; the deadline then restarts, doubled.
    let changes = Changes {
        recoveries: Some(slot.recoveries + 1),
        ..Changes::default()
    };
    let cause = format!("watchdog: {stalled}, power cycle {}", slot.recoveries + 1);
    if let Err(e) = ctl
        .store
        .transition(&slot, Trigger::Recover, &cause, changes)
        .await
    {
        tracing::debug!("{}: no recovery: {e}", slot.position);
        return;
    }
    ctl.metrics.recoveries.inc();
    tracing::warn!("{}: {cause}", slot.position);
    if let Err(e) = ctl.cycle_port(&slot.key, PowerAction::Cycle, &cause).await {
        let detail = format!("power cycle of {} failed: {e}", slot.position);
        alert(ctl, &slot, &detail).await;
    }
}

/// An alert event about `slot`, from the watchdog.
async fn alert(ctl: &Controller, slot: &SlotRow, detail: &str) {
    ctl.note(slot, slot.board.as_deref(), "alert", "watchdog", detail)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_double_with_each_recovery_and_only_boot_stages_have_one() {
        let w = Watchdog::default();
        assert_eq!(deadline(&w, State::Dhcp, 0), Some(Duration::from_secs(30)));
        assert_eq!(deadline(&w, State::Dhcp, 2), Some(Duration::from_secs(120)));
        assert_eq!(deadline(&w, State::Dhcp, 9), Some(Duration::from_secs(240)));
        assert_eq!(deadline(&w, State::Up, 0), None);
        assert_eq!(deadline(&w, State::Ready, 0), None);
        assert_eq!(
            deadline(&w, State::BuildingRoot, 2),
            Some(Duration::from_secs(1800)),
            "a root build has a deadline, without backoff"
        );
    }
}
