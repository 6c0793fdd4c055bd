//! The inventory file format as written by people: one YAML document per site.
//!
//! Fields that need checking beyond their YAML type (serials, MACs, CIDRs, templates)
//! stay strings here so that validation can report every problem at once instead of
//! stopping at the first; [`super::validate`] turns this into a checked [`super::Site`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole site: what is racked where, and the networks that connect it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub site: SiteInfo,
    /// The site's one fileserver (or `fileservers:`, for several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fileserver: Option<Fileserver>,
    /// Several fileservers, each serving the shelves that name it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fileservers: Vec<Fileserver>,
    /// Kernel command line and config.txt defaults for every slot.
    #[serde(default)]
    pub boot: Boot,
    /// DHCP and TFTP service settings.
    #[serde(default)]
    pub netboot: Netboot,
    /// How the slots' roots are exported over NFS.
    #[serde(default)]
    pub exports: Exports,
    /// Boot stage deadlines and what the controller does when a slot misses one.
    #[serde(default)]
    pub watchdog: Watchdog,
    pub shelves: Vec<Shelf>,
    pub switches: Vec<Switch>,
    #[serde(default)]
    pub owners: Vec<Owner>,
    /// Publishing the hosted Pis' names on the site's DNS servers.
    #[serde(default)]
    pub dns: Option<Dns>,
    /// The IPv4→IPv6 front door run by `pirack serve`.
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// Watching the Pis that are up, and where alerts go.
    #[serde(default)]
    pub monitor: Option<Monitor>,
    /// Backups of the slots' roots, encrypted, at every target.
    #[serde(default)]
    pub backup: Option<crate::backup::model::Backup>,
    pub slots: Vec<Slot>,
    #[serde(default)]
    pub boards: Vec<Board>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteInfo {
    /// Short site name, used in hostnames.
    pub name: String,
    /// DNS domain of the hosted Pis, if any (gives each a fully qualified name).
    #[serde(default)]
    pub domain: Option<String>,
    /// Hostname template; placeholders: `{site}`, `{shelf}`, `{position}`, `{port}`.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// What to do with a board whose serial the slot does not know.
    #[serde(default)]
    pub unknown_board: BoardPolicy,
}

fn default_hostname() -> String {
    "{site}-{position}".into()
}

/// Site policy for a board that appears in a slot it was not recorded in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BoardPolicy {
    /// Record the new serial as the slot's board and boot it.
    Adopt,
    /// Raise an event and serve nothing until staff confirm the swap.
    #[default]
    Hold,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fileserver {
    /// Name the Pis know the fileserver by (in their /etc/hosts).
    #[serde(default = "default_fileserver_name")]
    pub name: String,
    /// Interface facing the switch's trunk port, carrying every storage VLAN tagged.
    pub trunk_interface: String,
    /// IPv4 pool the per-slot /30 storage networks are cut from, e.g. `10.46.188.0/23`.
    pub storage_pool: String,
    /// Storage VLAN ids handed to slots, one per slot.
    pub storage_vlans: VlanRange,
    /// Name of each storage VLAN interface; placeholders: `{trunk}`, `{vlan}`.
    #[serde(default = "default_interface_name")]
    pub interface_name: String,
    /// Directory holding every slot's NFS root.
    pub export_root: String,
    /// Name of a slot's root directory under `export_root`;
    /// placeholders: `{pi_ip}`, `{slot}`, `{switch}`, `{port}`, `{vlan}`.
    #[serde(default = "default_root_name")]
    pub root_name: String,
}

fn default_fileserver_name() -> String {
    "fileserver".into()
}
fn default_interface_name() -> String {
    "{trunk}.{vlan}".into()
}
fn default_root_name() -> String {
    "{pi_ip}".into()
}

/// An inclusive range of 802.1Q VLAN ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VlanRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    /// Console arguments placed first on the kernel command line.
    #[serde(default = "default_console")]
    pub console: String,
    /// Further kernel arguments placed after `nfsroot=` and before `rootwait`.
    #[serde(default)]
    pub kernel_args: String,
    /// Lines of every slot's config.txt.
    #[serde(default = "default_config_txt")]
    pub config_txt: Vec<String>,
}

impl Default for Boot {
    fn default() -> Self {
        Boot {
            console: default_console(),
            kernel_args: String::new(),
            config_txt: default_config_txt(),
        }
    }
}

fn default_console() -> String {
    "console=ttyAMA0,115200 console=tty1".into()
}
fn default_config_txt() -> Vec<String> {
    ["arm_64bit=1", "enable_uart=1", "dtparam=sd_poll_once"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Netboot {
    /// The site's boot files, where `bootcode.bin` (the one file served before a
    /// Pi's slot is known) comes from; without one there, from the image imported
    /// last. Each slot's other boot files come from its image. Relative to the
    /// inventory file.
    #[serde(default = "default_boot_files")]
    pub boot_files: String,
    /// Delay before answering a Pi's PXE DISCOVER: the 3B ROM wedges on fast replies.
    #[serde(default = "default_reply_delay")]
    pub reply_delay_ms: u64,
    /// Also answer DHCP clients that are neither a Pi nor a slot's recorded board.
    #[serde(default)]
    pub serve_non_pi: bool,
}

impl Default for Netboot {
    fn default() -> Self {
        Netboot {
            boot_files: default_boot_files(),
            reply_delay_ms: default_reply_delay(),
            serve_non_pi: false,
        }
    }
}

/// Each boot stage's deadline (seconds in the stage before the slot counts as
/// stalled), the power cycles allowed per boot, and how "up" is checked. A stalled
/// slot's next deadlines double with each power cycle (backoff).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Watchdog {
    /// Power on to the boot ROM's first DHCP request (a Pi 3 waits about 5 s).
    #[serde(default = "d30")]
    pub powering_on_s: u64,
    /// DHCP to the first boot file.
    #[serde(default = "d30")]
    pub dhcp_s: u64,
    /// Boot files to the kernel.
    #[serde(default = "d60")]
    pub tftp_s: u64,
    /// Kernel to the root's NFS mount.
    #[serde(default = "d120")]
    pub kernel_loaded_s: u64,
    /// NFS mount to the public address answering.
    #[serde(default = "d120")]
    pub nfs_mounted_s: u64,
    /// Power cycles per boot before the slot is marked failed.
    #[serde(default = "d3")]
    pub max_recoveries: u32,
    /// TCP port on the Pi's public address that answers once it is up.
    #[serde(default = "d22")]
    pub reach_port: u16,
    /// A root build or reimage that has not ended by then is marked failed (a
    /// hung copy or key generation must not hold a slot for ever).
    #[serde(default = "d1800")]
    pub root_build_s: u64,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            powering_on_s: d30(),
            dhcp_s: d30(),
            tftp_s: d60(),
            kernel_loaded_s: d120(),
            nfs_mounted_s: d120(),
            max_recoveries: d3(),
            reach_port: d22(),
            root_build_s: d1800(),
        }
    }
}

fn d30() -> u64 {
    30
}

fn d1800() -> u64 {
    1800
}
fn d60() -> u64 {
    60
}
fn d120() -> u64 {
    120
}
fn d3() -> u32 {
    3
}
fn d22() -> u16 {
    22
}

fn default_boot_files() -> String {
    "/var/lib/pirack/boot".into()
}
fn default_reply_delay() -> u64 {
    1000
}

/// The NFS server that exports the roots.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exports {
    #[serde(default)]
    pub backend: ExportBackend,
    /// File pirack writes its exports to [default: /etc/exports.d/pirack.exports for
    /// the kernel, /etc/ganesha/pirack-exports.conf for ganesha, which must
    /// `%include` it].
    #[serde(default)]
    pub file: Option<String>,
    /// Where the running ganesha.nfsd keeps its pid (told to reload by SIGHUP).
    #[serde(default = "default_ganesha_pid")]
    pub ganesha_pid_file: String,
}

impl Default for Exports {
    fn default() -> Self {
        Exports {
            backend: ExportBackend::default(),
            file: None,
            ganesha_pid_file: default_ganesha_pid(),
        }
    }
}

fn default_ganesha_pid() -> String {
    "/run/ganesha/ganesha.pid".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportBackend {
    /// The kernel's nfsd: an exports(5) file and `exportfs -ra`.
    #[default]
    Kernel,
    /// NFS-Ganesha: EXPORT blocks, reloaded with SIGHUP.
    Ganesha,
}

/// A shelf of Pis behind one switch, sharing one public VLAN.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shelf {
    pub name: String,
    /// The fileserver serving this shelf's Pis (needed when there are several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fileserver: Option<String>,
    /// Tagged VLAN carrying the Pis' public IPv6 traffic.
    pub public_vlan: u16,
    pub ipv6: ShelfIpv6,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShelfIpv6 {
    /// Prefix each Pi's public address is allocated from, e.g. `2001:db8:0:84:1000:1::/96`.
    pub prefix: String,
    /// Prefix length of the public link the address is configured with.
    #[serde(default = "default_on_link")]
    pub on_link: u8,
    /// Default router on the public link.
    pub gateway: String,
}

fn default_on_link() -> u8 {
    64
}

/// A managed PoE switch, reached over SNMP.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub name: String,
    /// The shelf whose Pis this switch powers.
    pub shelf: String,
    /// Management IP address.
    pub address: String,
    #[serde(default = "default_snmp_port")]
    pub snmp_port: u16,
    /// A profile name: `switch-profiles/<profile>.yaml`.
    pub profile: String,
    pub snmp: Snmp,
    /// Number of front-panel ports.
    pub ports: u16,
    /// Port facing the fileserver; tagged with every VLAN of the shelf.
    pub trunk_port: u16,
    /// How long to wait for each SNMP reply before trying again.
    #[serde(default = "default_snmp_timeout_ms")]
    pub snmp_timeout_ms: u64,
    /// Further attempts after a request goes unanswered.
    #[serde(default = "default_snmp_retries")]
    pub snmp_retries: u32,
    #[serde(default)]
    pub power: PowerPolicy,
}

fn default_snmp_port() -> u16 {
    161
}

fn default_snmp_timeout_ms() -> u64 {
    1000
}

fn default_snmp_retries() -> u32 {
    2
}

/// How this switch's PoE ports are switched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerPolicy {
    /// Time a port stays off during a power cycle, so the board fully drains.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
    /// Ports switched on together when powering many on (limits inrush current and
    /// DHCP bursts).
    #[serde(default = "default_batch")]
    pub batch: u16,
    /// Pause between two batches of ports switched on.
    #[serde(default = "default_batch_interval_ms")]
    pub batch_interval_ms: u64,
    /// How long a port may take to read back the state it was set to.
    #[serde(default = "default_readback_ms")]
    pub readback_ms: u64,
}

impl Default for PowerPolicy {
    fn default() -> Self {
        PowerPolicy {
            drain_ms: default_drain_ms(),
            batch: default_batch(),
            batch_interval_ms: default_batch_interval_ms(),
            readback_ms: default_readback_ms(),
        }
    }
}

fn default_drain_ms() -> u64 {
    5000
}

fn default_batch() -> u16 {
    8
}

fn default_batch_interval_ms() -> u64 {
    2000
}

fn default_readback_ms() -> u64 {
    5000
}

/// SNMP credentials, always by reference to a secret.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "version", rename_all = "lowercase", deny_unknown_fields)]
pub enum Snmp {
    V2c {
        community: SecretRef,
    },
    V3 {
        user: String,
        auth: V3Auth,
        privacy: V3Privacy,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct V3Auth {
    pub protocol: AuthProtocol,
    pub password: SecretRef,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct V3Privacy {
    pub protocol: PrivProtocol,
    pub password: SecretRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrivProtocol {
    Des,
    Aes128,
    Aes192,
    Aes256,
}

/// Where a secret lives. Secrets are never written into the inventory itself, so the
/// inventory can be committed and shown to anyone.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    /// Name of an environment variable holding the secret.
    Env(String),
    /// Path of a file holding the secret (trailing newline ignored).
    File(String),
    /// A secret written straight into the inventory: kept only so validation can
    /// refuse it at its line; the value itself is dropped.
    #[schemars(skip)]
    Inline,
}

impl SecretRef {
    /// The secret itself, read when it is needed and never kept in the inventory. A
    /// secret file others can read is refused, as ssh refuses such a key.
    pub fn read(&self) -> Result<Vec<u8>, SecretError> {
        use std::os::unix::fs::PermissionsExt;
        match self {
            SecretRef::Env(var) => std::env::var_os(var)
                .map(std::os::unix::ffi::OsStringExt::into_vec)
                .ok_or_else(|| SecretError::Env(var.clone())),
            SecretRef::File(path) => {
                let err = |source| SecretError::File {
                    path: path.clone(),
                    source,
                };
                let meta = std::fs::metadata(path).map_err(err)?;
                if meta.permissions().mode() & 0o004 != 0 {
                    return Err(SecretError::WorldReadable(path.clone()));
                }
                let mut bytes = std::fs::read(path).map_err(err)?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                Ok(bytes)
            }
            SecretRef::Inline => Err(SecretError::Inline),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    Env(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("secret file {0} is readable by everyone; chmod o-r it")]
    WorldReadable(String),
    #[error("inline secrets are refused")]
    Inline,
}

/// Written as the one-key map it is read from (`{ env: VAR }`), not as a YAML tag.
impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (k, v) = match self {
            SecretRef::Env(v) => ("env", v),
            SecretRef::File(p) => ("file", p),
            SecretRef::Inline => {
                return Err(serde::ser::Error::custom(
                    "inline secrets are never written",
                ));
            }
        };
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(k, v)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Env { env: String },
            File { file: String },
            // Matched only to refuse it; the secret itself is dropped at once.
            Inline(#[allow(dead_code)] String),
        }
        match Raw::deserialize(d)? {
            Raw::Env { env } => Ok(SecretRef::Env(env)),
            Raw::File { file } => Ok(SecretRef::File(file)),
            Raw::Inline(_) => Ok(SecretRef::Inline),
        }
    }
}

/// The proxy in front of the Pis: TLS routed by SNI, HTTP by Host, each to the
/// Pi owning the name over IPv6.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// Addresses listened on: the shared IPv4 address, and optionally IPv6.
    pub listen: Vec<String>,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    #[serde(default = "default_tls_port")]
    pub tls_port: u16,
    /// How long a client has to send its ClientHello or request head.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// How long a connection may carry nothing before it is closed.
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u64,
    /// How long each of a Pi's addresses is given to answer.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Connections open at once, in all.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections open at once to one Pi.
    #[serde(default = "default_per_backend")]
    pub per_backend: usize,
    /// Where a TLS connection for an unknown name (or none) goes: a backend
    /// (`[2001:db8::1]:443`) [default: a TLS `unrecognized_name` alert].
    #[serde(default)]
    pub tls_default: Option<String>,
    /// Threads serving connections [default: one per CPU].
    #[serde(default)]
    pub threads: Option<u64>,
}

fn default_http_port() -> u16 {
    80
}

fn default_tls_port() -> u16 {
    443
}

fn default_header_timeout_ms() -> u64 {
    10_000
}

fn default_idle_timeout_s() -> u64 {
    300
}

fn default_connect_timeout_ms() -> u64 {
    3_000
}

fn default_max_connections() -> usize {
    20_000
}

fn default_per_backend() -> usize {
    1_000
}

/// The authoritative DNS servers pirack updates (RFC 2136, signed with TSIG) and
/// what it publishes there.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// The zones' primary servers: zones are read (AXFR) and updated on the
    /// first that answers.
    pub servers: Vec<DnsServer>,
    /// Forward zone of the slots' names [default: `site.domain`].
    #[serde(default)]
    pub zone: Option<String>,
    /// Reverse zones for the PTR records [default: one per shelf, its IPv6
    /// prefix rounded down to a nibble under ip6.arpa].
    #[serde(default)]
    pub reverse_zones: Vec<String>,
    /// The TSIG key that may update and transfer the zones.
    pub key: TsigKey,
    /// TTL of the records pirack writes, in seconds.
    #[serde(default = "default_dns_ttl")]
    pub ttl: u32,
    /// The IPv4→IPv6 proxy's shared address: each slot's name gets it as A.
    #[serde(default)]
    pub proxy_ipv4: Option<String>,
    /// Seconds between full reconciliations (lifecycle changes apply at once).
    #[serde(default = "default_reconcile_s")]
    pub reconcile_s: u64,
    /// How customers' ANAME targets are resolved.
    #[serde(default)]
    pub aname: Aname,
}

/// Resolving customers' ANAME targets. Targets in the site's own zones are asked
/// of `servers` (they hold pirack's records); others only when `allow` lets them,
/// of `resolvers`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Aname {
    /// Servers asked for targets outside the site's zones: the targets'
    /// authoritative servers, or a recursive resolver.
    #[serde(default)]
    pub resolvers: Vec<DnsServer>,
    /// Targets outside the site's zones a customer may follow: `example.net`,
    /// `*.example.net` (names under it), or `*` [default: none].
    #[serde(default)]
    pub allow: Vec<String>,
    /// Least seconds between two resolutions of a name, and least TTL taken
    /// from an answer (a recursive resolver's TTLs have already counted down).
    #[serde(default = "default_aname_floor_s")]
    pub floor_s: u32,
    /// Most CNAME hops followed from a target.
    #[serde(default = "default_aname_max_chain")]
    pub max_chain: usize,
    /// How long one server is given to answer, in milliseconds.
    #[serde(default = "default_aname_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for Aname {
    fn default() -> Self {
        Aname {
            resolvers: Vec::new(),
            allow: Vec::new(),
            floor_s: default_aname_floor_s(),
            max_chain: default_aname_max_chain(),
            timeout_ms: default_aname_timeout_ms(),
        }
    }
}

fn default_aname_floor_s() -> u32 {
    30
}

fn default_aname_max_chain() -> usize {
    8
}

fn default_aname_timeout_ms() -> u64 {
    2000
}

fn default_dns_ttl() -> u32 {
    300
}

fn default_reconcile_s() -> u64 {
    300
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsServer {
    pub address: String,
    #[serde(default = "default_dns_port")]
    pub port: u16,
}

fn default_dns_port() -> u16 {
    53
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TsigKey {
    /// The key's name as the servers know it.
    pub name: String,
    pub algorithm: TsigAlgorithm,
    /// The base64 secret, or a file holding `tsig-keygen`'s `key` clause.
    pub secret: SecretRef,
}

/// HMAC algorithms that sign; MD5 and SHA-1 keys are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

/// A customer who owns slots.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub name: String,
    #[serde(default)]
    pub contact: Option<String>,
    /// SSH public keys written to the root's authorized_keys.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// DNS zones (on the `dns:` servers) in which this customer manages names.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// A place for a Pi: one port of one switch. The slot, not the board, owns the
/// addresses, the root and the customer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// Physical position label staff read on the shelf, e.g. `A-07`.
    pub position: String,
    pub switch: String,
    pub port: u16,
    /// Storage VLAN fixed by hand instead of allocated.
    #[serde(default)]
    pub vlan: Option<u16>,
    #[serde(default)]
    pub owner: Option<String>,
    /// What sits in the slot: a Pi 3 on a PoE port, or a virtual one.
    #[serde(default)]
    pub kind: SlotKind,
}

/// A slot's hardware: what powers it and what boots in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SlotKind {
    /// A Raspberry Pi 3 powered by its switch port (PoE over SNMP).
    #[default]
    Pi3,
    /// A virtual Pi 3 for hardware-in-loop tests: the boot ROM's stage is played,
    /// then QEMU's raspi3b machine boots the kernel; powered by starting and
    /// stopping QEMU.
    QemuRaspi3b,
}

impl SlotKind {
    pub fn is_pi3(&self) -> bool {
        *self == SlotKind::Pi3
    }

    /// The name the inventory and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Pi3 => "pi3",
            SlotKind::QemuRaspi3b => "qemu-raspi3b",
        }
    }
}

/// A Raspberry Pi board, a replaceable part placed in a slot.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Low 32 bits of the board serial as 8 lower-case hex digits (its TFTP directory).
    #[schemars(regex(pattern = r"^[0-9a-f]{8}$"))]
    pub serial: String,
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"))]
    pub mac: String,
    pub model: Model,
    /// Position label of the slot the board sits in.
    pub slot: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Model {
    #[serde(rename = "3B")]
    Pi3B,
    #[serde(rename = "3B+")]
    Pi3BPlus,
}

impl Model {
    /// The name the inventory uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Pi3B => "3B",
            Model::Pi3BPlus => "3B+",
        }
    }
}

/// Checks of every slot that is `up`, and the staff's alert routes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// The site's checks.
    #[serde(default)]
    pub checks: Checks,
    /// Changes to the checks per owner (by name).
    #[serde(default)]
    pub owners: std::collections::BTreeMap<String, ChecksOverride>,
    /// Changes to the checks per slot (by position), over its owner's.
    #[serde(default)]
    pub slots: std::collections::BTreeMap<String, ChecksOverride>,
    /// The staff's routes, each a URI (`ntfy://host/topic`, `prowl:KEY`,
    /// `mailto:noc@example.com`, ...): every alert of the site.
    #[serde(default)]
    pub routes: Vec<String>,
    /// An alert still firing is sent again after this long.
    #[serde(default = "default_repeat_s")]
    pub repeat_s: u64,
    /// Calls one route may take in `per_s` (Prowl allows 1,000 an hour).
    #[serde(default = "default_rate_max")]
    pub rate_max: u32,
    #[serde(default = "default_rate_per_s")]
    pub rate_per_s: u64,
    /// A fault that opens `flap_opens` times within `flap_window_s` is
    /// flapping: its alert stays open (told nobody again) until the fault has
    /// been gone for `flap_quiet_s`.
    #[serde(default = "default_flap_opens")]
    pub flap_opens: u32,
    #[serde(default = "default_flap_window_s")]
    pub flap_window_s: u64,
    #[serde(default = "default_flap_quiet_s")]
    pub flap_quiet_s: u64,
    /// The providers' base URLs, for compatible servers (and tests).
    #[serde(default)]
    pub providers: Providers,
    /// The relay `mailto:` routes are sent through.
    #[serde(default)]
    pub smtp: Option<Smtp>,
    /// Each switch's PoE budget in watts (by switch name): an alert when its
    /// supply draws `poe_warn_pct` of it (where its profile reads the total).
    #[serde(default)]
    pub poe_budget_w: std::collections::BTreeMap<String, u32>,
    #[serde(default = "default_poe_warn_pct")]
    pub poe_warn_pct: u8,
    /// An alert when the roots' filesystem or the image store has less than
    /// this share free...
    #[serde(default = "default_disk_warn_pct")]
    pub disk_warn_pct: u8,
    /// ...or is projected to fill within this many days.
    #[serde(default = "default_disk_horizon_days")]
    pub disk_horizon_days: u32,
    /// Networks outside the public Internet that customers' routes may still
    /// reach (a push server on the site's own network); others are refused, so
    /// a customer cannot make the controller call its neighbours.
    #[serde(default)]
    pub customer_route_networks: Vec<String>,
}

fn default_poe_warn_pct() -> u8 {
    90
}

fn default_disk_warn_pct() -> u8 {
    10
}

fn default_disk_horizon_days() -> u32 {
    14
}

/// How a slot is checked.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    #[serde(default = "default_check_interval_s")]
    pub interval_s: u64,
    /// How long one probe may take.
    #[serde(default = "default_check_timeout_ms")]
    pub timeout_ms: u64,
    /// Failures in a row before a check is down.
    #[serde(default = "default_down_after")]
    pub down_after: u32,
    /// Successes in a row before it is up again.
    #[serde(default = "default_up_after")]
    pub up_after: u32,
    /// ICMPv6 echo to the Pi's public address.
    #[serde(default = "default_true")]
    pub ping: bool,
    /// TCP ports connected to on the Pi's public address.
    #[serde(default = "default_check_ports")]
    pub ports: Vec<u16>,
    /// A request through the proxy, as the Pi's visitors make it [default: none].
    #[serde(default)]
    pub http: Option<HttpCheck>,
}

/// `GET path` for the slot's first name, sent to the proxy's IPv4 listener
/// (TLS with the name as SNI, or plain HTTP with it as Host). It proves the
/// whole path works: the proxy, its route, the PROXY header and the Pi's
/// server; the Pi's certificate is its owner's business and is not judged.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// False turns off a check the site or owner set.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// HTTPS through the proxy's TLS port, else HTTP through its HTTP port.
    #[serde(default)]
    pub tls: bool,
    #[serde(default = "default_http_path")]
    pub path: String,
    /// The lowest and highest status that count as up.
    #[serde(default = "default_http_ok")]
    pub ok_status: [u16; 2],
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            interval_s: default_check_interval_s(),
            timeout_ms: default_check_timeout_ms(),
            down_after: default_down_after(),
            up_after: default_up_after(),
            ping: true,
            ports: default_check_ports(),
            http: None,
        }
    }
}

/// Any of [`Checks`]' fields, changed for an owner or a slot.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecksOverride {
    #[serde(default)]
    pub interval_s: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub down_after: Option<u32>,
    #[serde(default)]
    pub up_after: Option<u32>,
    #[serde(default)]
    pub ping: Option<bool>,
    #[serde(default)]
    pub ports: Option<Vec<u16>>,
    #[serde(default)]
    pub http: Option<HttpCheck>,
}

impl Checks {
    /// These checks with `o`'s changes.
    pub fn with(&self, o: &ChecksOverride) -> Checks {
        Checks {
            interval_s: o.interval_s.unwrap_or(self.interval_s),
            timeout_ms: o.timeout_ms.unwrap_or(self.timeout_ms),
            down_after: o.down_after.unwrap_or(self.down_after),
            up_after: o.up_after.unwrap_or(self.up_after),
            ping: o.ping.unwrap_or(self.ping),
            ports: o.ports.clone().unwrap_or_else(|| self.ports.clone()),
            http: o.http.clone().or_else(|| self.http.clone()),
        }
    }
}

/// Base URLs of the push services (their public ones by default).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Providers {
    #[serde(default = "default_prowl")]
    pub prowl: String,
    /// No default that works: NMA's public service closed in 2018.
    #[serde(default = "default_nma")]
    pub nma: String,
    #[serde(default = "default_pushover")]
    pub pushover: String,
}

impl Default for Providers {
    fn default() -> Self {
        Providers {
            prowl: default_prowl(),
            nma: default_nma(),
            pushover: default_pushover(),
        }
    }
}

/// An SMTP relay that takes mail from the controller without authentication.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    /// `host:port`.
    pub server: String,
    pub from: String,
}

fn default_repeat_s() -> u64 {
    3_600
}

fn default_rate_max() -> u32 {
    1_000
}

fn default_rate_per_s() -> u64 {
    3_600
}

fn default_flap_opens() -> u32 {
    3
}

fn default_flap_window_s() -> u64 {
    1_800
}

fn default_flap_quiet_s() -> u64 {
    300
}

fn default_check_interval_s() -> u64 {
    10
}

fn default_check_timeout_ms() -> u64 {
    1_000
}

fn default_down_after() -> u32 {
    3
}

fn default_up_after() -> u32 {
    2
}

fn default_true() -> bool {
    true
}

fn default_check_ports() -> Vec<u16> {
    vec![22]
}

fn default_http_path() -> String {
    "/".into()
}

fn default_http_ok() -> [u16; 2] {
    [200, 399]
}

fn default_prowl() -> String {
    "https://api.prowlapp.com".into()
}

fn default_nma() -> String {
    "https://www.notifymyandroid.com".into()
}

fn default_pushover() -> String {
    "https://api.pushover.net".into()
}
