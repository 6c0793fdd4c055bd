//! Pushing the port VLAN plan to a switch over Q-BRIDGE-MIB: read the switch's
//! state, work out the drift, check the switch can take it, write only what
//! differs (make before break), read back to prove it; and if a write fails
//! part-way, read back and undo what was written.

use super::power::SwitchControl;
use super::snmp::{SnmpError, Value, Varbind};
use pirack_core::switch::Oid;
use pirack_core::switch::drift::{self, Change, VlanRow, VlanState};
use pirack_core::switch::layout::SwitchPlan;
use pirack_core::switch::portlist;
use pirack_core::switch::profile::VlanControl;
use pirack_core::switch::qbridge::{CREATE_AND_GO, PVID, VLAN_STATIC_ENTRY, column};

#[derive(Debug, thiserror::Error)]
pub enum VlanError {
    #[error(transparent)]
    Snmp(#[from] SnmpError),
    #[error(
        "switch {switch}: profile `{profile}` sets no VLANs over SNMP; configure its ports from the rendered ports YAML"
    )]
    Unsupported { switch: String, profile: String },
    #[error("switch {switch}: unexpected {what} at {oid}: {got}")]
    Unexpected {
        switch: String,
        what: &'static str,
        oid: Oid,
        got: String,
    },
    #[error("switch {switch}: the planned changes would be refused: {reason}; nothing was written")]
    Inconsistent { switch: String, reason: String },
    #[error("switch {switch}: {limit}; nothing was written")]
    Capacity { switch: String, limit: String },
    /// A write failed part-way: the switch was read back and what was written
    /// undone, as `report` says.
    #[error("switch {switch}: writing `{failed}` failed: {error}\n{report}")]
    Failed {
        switch: String,
        failed: String,
        error: SnmpError,
        report: String,
    },
    #[error("switch {switch}: after writing, {} change(s) still differ, first: {first}", .remaining)]
    Remains {
        switch: String,
        remaining: usize,
        first: String,
    },
}

fn entry() -> Oid {
    VLAN_STATIC_ENTRY.parse().expect("constant OID")
}

fn pvid_column() -> Oid {
    PVID.parse().expect("constant OID")
}

/// Reads the switch's static VLAN table and port VLAN ids.
pub async fn read_state(sw: &SwitchControl) -> Result<VlanState, VlanError> {
    let (rows, pvids) = {
        let mut session = sw.session().lock().await;
        (
            session.walk(&entry()).await?,
            session.walk(&pvid_column()).await?,
        )
    };
    let unexpected = |vb: &Varbind, what| VlanError::Unexpected {
        switch: sw.name.clone(),
        what,
        oid: vb.oid.clone(),
        got: vb.value.to_string(),
    };
    let mut state = VlanState::default();
    let entry = entry();
    for vb in &rows {
        let Some([column, vid]) = vb
            .oid
            .index_after(&entry)
            .map(|i| i.to_vec())
            .as_deref()
            .and_then(|i| <[u32; 2]>::try_from(i).ok())
        else {
            return Err(unexpected(vb, "dot1qVlanStaticEntry instance"));
        };
        let vid = u16::try_from(vid).map_err(|_| unexpected(vb, "VLAN id"))?;
        let row: &mut VlanRow = state.vlans.entry(vid).or_default();
        match (column, &vb.value) {
            (column::NAME, Value::Octets(b)) => row.name = String::from_utf8_lossy(b).into_owned(),
            (column::EGRESS, Value::Octets(b)) => row.egress = portlist::decode(b),
            (column::UNTAGGED, Value::Octets(b)) => row.untagged = portlist::decode(b),
            (column::ROW_STATUS, Value::Integer(i)) => row.status = *i,
            (column::FORBIDDEN, Value::Octets(_)) => {}
            (column::NAME..=column::ROW_STATUS, _) => return Err(unexpected(vb, "value type")),
            _ => {}
        }
    }
    let pvid = pvid_column();
    for vb in &pvids {
        let port = match vb.oid.index_after(&pvid) {
            Some([port]) => *port,
            _ => return Err(unexpected(vb, "dot1qPvid instance")),
        };
        match vb.value {
            Value::Unsigned(v) => state.pvid.insert(port, v),
            _ => return Err(unexpected(vb, "dot1qPvid type (Unsigned32)")),
        };
    }
    Ok(state)
}

/// The SETs for one change; a row is created in a PDU of its own, as agents that
/// check each instance before a SET require.
fn writes(change: &Change, octets: usize) -> Vec<(Oid, Value)> {
    let col = |c: u32, vid: u16| entry().at(&[c, u32::from(vid)]);
    match change {
        Change::Create { vid } => vec![(
            col(column::ROW_STATUS, *vid),
            Value::Integer(CREATE_AND_GO.into()),
        )],
        Change::Name { vid, to, .. } => {
            vec![(
                col(column::NAME, *vid),
                Value::Octets(to.clone().into_bytes()),
            )]
        }
        Change::Egress { vid, to, .. } => vec![(
            col(column::EGRESS, *vid),
            Value::Octets(portlist::encode(to.iter().copied(), octets)),
        )],
        Change::Untagged { vid, to, .. } => vec![(
            col(column::UNTAGGED, *vid),
            Value::Octets(portlist::encode(to.iter().copied(), octets)),
        )],
        Change::Activate { vid } => vec![(col(column::ROW_STATUS, *vid), Value::Integer(1))],
        Change::Destroy { vid } => vec![(col(column::ROW_STATUS, *vid), Value::Integer(6))],
        Change::Pvid { port, to, .. } => vec![(pvid_column().at(&[*port]), Value::Unsigned(*to))],
    }
}

/// Q-BRIDGE-MIB's dot1qMaxVlanId, dot1qMaxSupportedVlans and dot1qNumVlans.
const LIMITS: [&str; 3] = [
    "1.3.6.1.2.1.17.7.1.1.2.0",
    "1.3.6.1.2.1.17.7.1.1.3.0",
    "1.3.6.1.2.1.17.7.1.1.4.0",
];

/// Refuses, before the first write, rows the switch cannot create: an id above
/// its highest VLAN id, or more rows than it holds. A switch without these
/// objects is not checked.
async fn check_capacity(sw: &SwitchControl, changes: &[Change]) -> Result<(), VlanError> {
    let created: Vec<u16> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Create { vid } => Some(*vid),
            _ => None,
        })
        .collect();
    if created.is_empty() {
        return Ok(());
    }
    let oids: Vec<Oid> = LIMITS
        .iter()
        .map(|o| o.parse().expect("constant OID"))
        .collect();
    let read = sw.session().lock().await.get(&oids).await?;
    let value = |i: usize| match read.get(i).map(|vb| &vb.value) {
        Some(Value::Integer(v)) => u64::try_from(*v).ok(),
        Some(Value::Unsigned(v)) => Some(u64::from(*v)),
        _ => None,
    };
    let limit = |limit: String| VlanError::Capacity {
        switch: sw.name.clone(),
        limit,
    };
    if let Some(max_id) = value(0)
        && let Some(vid) = created.iter().find(|v| u64::from(**v) > max_id)
    {
        return Err(limit(format!(
            "VLAN {vid} is above the highest id it supports ({max_id})"
        )));
    }
    if let (Some(max), Some(now)) = (value(1), value(2))
        && now + created.len() as u64 > max
    {
        return Err(limit(format!(
            "it holds at most {max} VLANs and has {now}: the plan needs {} more",
            created.len()
        )));
    }
    Ok(())
}

/// Writes one change.
async fn write(sw: &SwitchControl, change: &Change) -> Result<(), SnmpError> {
    let octets = portlist::octets(&sw.profile, sw.ports);
    sw.session().lock().await.set(&writes(change, octets)).await
}

/// After a failed write: reads the switch back and writes what brings it back to
/// `before`; says what was written and what was restored.
async fn restore(sw: &SwitchControl, before: &VlanState, written: &[Change]) -> String {
    let shown = |c: &Change| format!("  {}", drift::Shown(c, &sw.profile));
    let mut report = match written.is_empty() {
        true => "written before it: nothing".to_string(),
        false => format!(
            "written before it:\n{}",
            written.iter().map(shown).collect::<Vec<_>>().join("\n")
        ),
    };
    let now = match read_state(sw).await {
        Ok(now) => now,
        Err(e) => {
            report += &format!("\nnot restored: reading the switch back failed: {e}");
            return report;
        }
    };
    let back = drift::diff(&now, before);
    let mut restored = Vec::new();
    for change in &back {
        if let Err(e) = write(sw, change).await {
            report += &format!(
                "\nrestore stopped at `{}`: {e}; restored before it:\n{}",
                drift::Shown(change, &sw.profile),
                restored.iter().map(shown).collect::<Vec<_>>().join("\n")
            );
            return report;
        }
        restored.push(change.clone());
    }
    report += &match restored.is_empty() {
        true => "\nrestored: nothing to undo (the switch reads as before)".to_string(),
        false => format!(
            "\nrestored, as it was before:\n{}",
            restored.iter().map(shown).collect::<Vec<_>>().join("\n")
        ),
    };
    report
}

/// Reads the switch, and unless `dry_run` writes the drift and checks it is gone.
/// Returns the drift found (empty: the switch already matched). A plan the switch
/// would refuse, or could not hold, is refused before the first write; a write
/// that fails part-way is undone.
pub async fn apply(
    sw: &SwitchControl,
    plan: &SwitchPlan,
    dry_run: bool,
) -> Result<Vec<Change>, VlanError> {
    if sw.profile.vlans != VlanControl::QBridge {
        return Err(VlanError::Unsupported {
            switch: sw.name.clone(),
            profile: sw.profile.name.clone(),
        });
    }
    let state = read_state(sw).await?;
    let changes = drift::drift(plan, &sw.profile, &state);
    drift::simulate(&state, &changes).map_err(|r| VlanError::Inconsistent {
        switch: sw.name.clone(),
        reason: r.shown(&sw.profile),
    })?;
    if dry_run || changes.is_empty() {
        return Ok(changes);
    }
    check_capacity(sw, &changes).await?;
    for (i, change) in changes.iter().enumerate() {
        if let Err(error) = write(sw, change).await {
            let report = restore(sw, &state, &changes[..i]).await;
            return Err(VlanError::Failed {
                switch: sw.name.clone(),
                failed: drift::Shown(change, &sw.profile).to_string(),
                error,
                report,
            });
        }
    }
    let after = read_state(sw).await?;
    let remaining = drift::drift(plan, &sw.profile, &after);
    if let Some(first) = remaining.first() {
        return Err(VlanError::Remains {
            switch: sw.name.clone(),
            remaining: remaining.len(),
            first: drift::Shown(first, &sw.profile).to_string(),
        });
    }
    Ok(changes)
}
