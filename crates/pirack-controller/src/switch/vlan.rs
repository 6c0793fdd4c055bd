//! Pushing the port VLAN plan to a switch over Q-BRIDGE-MIB: read the switch's
//! state, work out the drift, write only what differs, and read back to prove it.

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
    #[error("switch {switch}: the planned changes would be refused ({0}); nothing was written", .reason)]
    Inconsistent { switch: String, reason: String },
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
        Change::Pvid { port, to, .. } => vec![(pvid_column().at(&[*port]), Value::Unsigned(*to))],
    }
}

/// Reads the switch, and unless `dry_run` writes the drift and checks it is gone.
/// Returns the drift found (empty: the switch already matched).
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
    drift::simulate(&state, &changes).map_err(|reason| VlanError::Inconsistent {
        switch: sw.name.clone(),
        reason,
    })?;
    if dry_run || changes.is_empty() {
        return Ok(changes);
    }
    let octets = portlist::octets(&sw.profile, sw.ports);
    for change in &changes {
        let binds = writes(change, octets);
        sw.session().lock().await.set(&binds).await?;
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
