//! PoE power per port: on, off, cycle and status, each confirmed by reading the port
//! back, so pirack never reports a change that did not happen. One operation per
//! port at a time (a port lock held for the whole of a cycle); many ports switched on
//! in staggered batches to limit inrush current and DHCP bursts.

use super::snmp::{Session, SnmpError, SnmpErrorKind, Target, Value, Varbind};
use pirack_core::inventory::model::PowerPolicy;
use pirack_core::inventory::{Site, Switch};
use pirack_core::switch::Oid;
use pirack_core::switch::Profile;
use pirack_core::switch::Profiles;
use pirack_core::switch::port::{Admin, Detection, PortStatus, Supply, SupplyStatus};
use pirack_core::switch::profile::MibObject;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Pause between two read-backs of a port that has not settled yet.
const READBACK_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error(transparent)]
    Snmp(#[from] SnmpError),
    #[error(
        "switch {switch} port {port}: set {wanted}, but after {:.1} s it reads admin {}, {}",
        waited.as_secs_f64(), got.admin, got.detection
    )]
    ReadBack {
        switch: String,
        port: u16,
        wanted: Admin,
        got: PortStatus,
        waited: Duration,
    },
    #[error("switch {switch} has no port {port} (ports 1..={count})")]
    NoPort {
        switch: String,
        port: u16,
        count: u16,
    },
    #[error("switch {switch}: no profile `{profile}`")]
    NoProfile { switch: String, profile: String },
    #[error("no switch `{0}` in the inventory")]
    NoSwitch(String),
    /// A failure of the whole switch, repeated for each of its ports in a run.
    #[error("{0}")]
    Failed(String),
}

/// One switch: its session (operations serialised), profile and port locks.
pub struct SwitchControl {
    pub name: String,
    pub profile: Profile,
    pub policy: PowerPolicy,
    pub ports: u16,
    addr: SocketAddr,
    session: Mutex<Session>,
    locks: std::sync::Mutex<HashMap<u16, Arc<Mutex<()>>>>,
    /// When each port last read back off: it is not switched on again before
    /// the policy's drain has passed, however the requests come.
    switched_off: std::sync::Mutex<HashMap<u16, Instant>>,
}

impl SwitchControl {
    pub fn new(sw: &Switch, profile: Profile) -> SwitchControl {
        let addr = SocketAddr::new(sw.address, sw.snmp_port);
        let target = Target {
            switch: sw.name.clone(),
            addr,
            credentials: sw.snmp.clone(),
            timeout: sw.snmp_timeout,
            retries: sw.snmp_retries,
        };
        SwitchControl {
            name: sw.name.clone(),
            profile,
            policy: sw.power.clone(),
            ports: sw.ports,
            addr,
            session: Mutex::new(Session::new(target)),
            locks: std::sync::Mutex::new(HashMap::new()),
            switched_off: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The session, for other subsystems (VLANs) and counters.
    pub fn session(&self) -> &Mutex<Session> {
        &self.session
    }

    fn check_port(&self, port: u16) -> Result<(), PowerError> {
        if port == 0 || port > self.ports {
            return Err(PowerError::NoPort {
                switch: self.name.clone(),
                port,
                count: self.ports,
            });
        }
        Ok(())
    }

    /// Waits for the port to be free and holds it until the guard drops.
    pub async fn lock_port(&self, port: u16) -> Result<OwnedMutexGuard<()>, PowerError> {
        self.check_port(port)?;
        let lock = self
            .locks
            .lock()
            .expect("port lock map poisoned")
            .entry(port)
            .or_default()
            .clone();
        Ok(lock.lock_owned().await)
    }

    fn port_oids(&self, port: u16) -> Vec<Oid> {
        let poe = &self.profile.poe;
        let index = self.profile.ports.pse_index(port);
        let mut oids = vec![poe.admin.oid.at(&index), poe.detection.oid.at(&index)];
        if let Some(pp) = &poe.port_power {
            oids.push(pp.column.oid.at(&index));
        }
        oids
    }

    /// Admin state, detection and draw of each port, read in as few GETs as fit.
    pub async fn status(&self, ports: &[u16]) -> Result<Vec<PortStatus>, PowerError> {
        for p in ports {
            self.check_port(*p)?;
        }
        let oids: Vec<Oid> = ports.iter().flat_map(|p| self.port_oids(*p)).collect();
        let got = self.session.lock().await.get(&oids).await?;
        let per_port = got.len() / ports.len().max(1);
        ports
            .iter()
            .zip(got.chunks(per_port.max(1)))
            .map(|(port, vbs)| self.decode(*port, vbs))
            .collect()
    }

    fn decode(&self, port: u16, vbs: &[Varbind]) -> Result<PortStatus, PowerError> {
        let poe = &self.profile.poe;
        let admin = match self.int(&vbs[0], &poe.admin.object)? {
            1 => Admin::On,
            2 => Admin::Off,
            v => {
                return Err(self.unexpected(
                    &vbs[0],
                    &poe.admin.object,
                    v,
                    "a TruthValue is 1 or 2",
                ));
            }
        };
        let detection = match self.int(&vbs[1], &poe.detection.object)? {
            1 => Detection::Disabled,
            2 => Detection::Searching,
            3 => Detection::DeliveringPower,
            4 => Detection::Fault,
            5 => Detection::Test,
            6 => Detection::OtherFault,
            v => {
                return Err(self.unexpected(
                    &vbs[1],
                    &poe.detection.object,
                    v,
                    "RFC 3621 defines 1..=6",
                ));
            }
        };
        let draw_mw = match (&poe.port_power, vbs.get(2)) {
            (Some(pp), Some(vb)) => {
                let raw = self.int(vb, &pp.column.object)?;
                let raw = u64::try_from(raw).map_err(|_| {
                    self.unexpected(vb, &pp.column.object, raw, "power is never negative")
                })?;
                Some(pp.unit.to_milliwatts(raw))
            }
            _ => None,
        };
        Ok(PortStatus {
            port,
            admin,
            detection,
            draw_mw,
        })
    }

    fn unexpected(&self, vb: &Varbind, object: &str, got: i64, why: &str) -> PowerError {
        let session_err = SnmpErrorKind::Unexpected {
            object: object.to_string(),
            oid: vb.oid.clone(),
            got: got.to_string(),
            why: why.to_string(),
        };
        self.snmp_error(session_err)
    }

    fn snmp_error(&self, kind: SnmpErrorKind) -> PowerError {
        PowerError::Snmp(SnmpError {
            switch: self.name.clone(),
            addr: self.addr,
            kind: Box::new(kind),
        })
    }

    fn int(&self, vb: &Varbind, object: &str) -> Result<i64, PowerError> {
        int(vb, object).map_err(|k| self.snmp_error(k))
    }

    /// The PSE's state and draw, each where the profile has it, in one request.
    pub async fn supply(&self) -> Result<Supply, PowerError> {
        let poe = &self.profile.poe;
        // (is it the state, the object)
        let asked: Vec<(bool, &MibObject)> =
            [(true, &poe.main_status), (false, &poe.main_consumption)]
                .into_iter()
                .filter_map(|(state, o)| Some((state, o.as_ref()?)))
                .collect();
        let mut supply = Supply {
            status: None,
            draw_w: None,
        };
        if asked.is_empty() {
            return Ok(supply);
        }
        let group = [self.profile.ports.pse_group];
        let oids: Vec<Oid> = asked.iter().map(|(_, o)| o.oid.at(&group)).collect();
        let got = self.session.lock().await.get(&oids).await?;
        for (vb, (state, obj)) in got.iter().zip(&asked) {
            // A switch without the object (firmware that leaves out the main
            // table) reads as not having it, not as a broken switch.
            if matches!(vb.value, Value::NoSuchObject | Value::NoSuchInstance) {
                continue;
            }
            let v = self.int(vb, &obj.object)?;
            if *state {
                let status = SupplyStatus::from_mib(v).ok_or_else(|| {
                    self.unexpected(vb, &obj.object, v, "1 on, 2 off or 3 faulty")
                })?;
                supply.status = Some(status);
            } else {
                let w = u64::try_from(v)
                    .map_err(|_| self.unexpected(vb, &obj.object, v, "power is never negative"))?;
                supply.draw_w = Some(w);
            }
        }
        Ok(supply)
    }

    /// Sets the port's admin state and reads it back until it settles; a port
    /// switched off is switched on only once `power.drain_ms` has passed, so the
    /// board drains whatever is asked how fast. The caller holds the port's lock.
    pub async fn set_locked(&self, port: u16, want: Admin) -> Result<PortStatus, PowerError> {
        if want == Admin::On {
            let off = self
                .switched_off
                .lock()
                .expect("not poisoned")
                .get(&port)
                .copied();
            let drain = Duration::from_millis(self.policy.drain_ms);
            if let Some(left) = off.and_then(|at| drain.checked_sub(at.elapsed())) {
                tokio::time::sleep(left).await;
            }
        }
        let oid = self
            .profile
            .poe
            .admin
            .oid
            .at(&self.profile.ports.pse_index(port));
        let value = Value::Integer(if want == Admin::On { 1 } else { 2 });
        self.session.lock().await.set(&[(oid, value)]).await?;
        let started = Instant::now();
        let deadline = Duration::from_millis(self.policy.readback_ms);
        loop {
            let status = self.status(&[port]).await?.remove(0);
            if status.settled(want) {
                let mut off = self.switched_off.lock().expect("not poisoned");
                match want {
                    Admin::Off => off.insert(port, Instant::now()),
                    Admin::On => off.remove(&port),
                };
                return Ok(status);
            }
            if started.elapsed() >= deadline {
                return Err(PowerError::ReadBack {
                    switch: self.name.clone(),
                    port,
                    wanted: want,
                    got: status,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(READBACK_POLL).await;
        }
    }

    /// Switches one port on or off.
    pub async fn set(&self, port: u16, want: Admin) -> Result<PortStatus, PowerError> {
        let _held = self.lock_port(port).await?;
        self.set_locked(port, want).await
    }

    /// Off, read back until off, wait `drain` (the policy's at least), on, read
    /// back.
    pub async fn cycle(&self, port: u16, drain: Duration) -> Result<PortStatus, PowerError> {
        let _held = self.lock_port(port).await?;
        self.set_locked(port, Admin::Off).await?;
        tokio::time::sleep(drain).await;
        self.set_locked(port, Admin::On).await
    }
}

/// An integer-valued column (INTEGER, Gauge32, Counter32), or why it is not one.
fn int(vb: &Varbind, object: &str) -> Result<i64, SnmpErrorKind> {
    match &vb.value {
        Value::Integer(i) => Ok(*i),
        Value::Unsigned(u) | Value::Counter32(u) => Ok(i64::from(*u)),
        v @ (Value::NoSuchObject | Value::NoSuchInstance) => Err(SnmpErrorKind::NoSuch {
            object: object.to_string(),
            oid: vb.oid.clone(),
            value: v.kind(),
        }),
        other => Err(SnmpErrorKind::WrongType {
            object: object.to_string(),
            oid: vb.oid.clone(),
            expected: "an INTEGER or Gauge32",
            got: other.to_string(),
        }),
    }
}

/// Every switch of a site, by name.
pub struct Fleet {
    switches: BTreeMap<String, Arc<SwitchControl>>,
}

impl Fleet {
    pub fn new(site: &Site, profiles: &Profiles) -> Result<Fleet, PowerError> {
        let mut switches = BTreeMap::new();
        for sw in &site.switches {
            let profile = profiles
                .get(&sw.profile)
                .ok_or_else(|| PowerError::NoProfile {
                    switch: sw.name.clone(),
                    profile: sw.profile.clone(),
                })?;
            switches.insert(
                sw.name.clone(),
                Arc::new(SwitchControl::new(sw, profile.clone())),
            );
        }
        Ok(Fleet { switches })
    }

    pub fn get(&self, name: &str) -> Result<&Arc<SwitchControl>, PowerError> {
        self.switches
            .get(name)
            .ok_or_else(|| PowerError::NoSwitch(name.to_string()))
    }

    pub fn switches(&self) -> impl Iterator<Item = &Arc<SwitchControl>> {
        self.switches.values()
    }
}
