//! A systemd service started the way its unit would start it, on a machine where
//! systemd is not PID 1: the unit's user and group, capabilities (ambient and
//! bounding), no-new-privileges, a clean environment with its environment file,
//! and its view of the file system (ProtectSystem=strict with StateDirectory and
//! ReadWritePaths writable, ProtectHome, PrivateTmp, InaccessiblePaths), inside
//! a network namespace.

use super::Netns;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The `[Service]` settings of a unit file, each key's values in order.
pub struct Unit(BTreeMap<String, Vec<String>>);

impl Unit {
    pub fn load(path: &Path) -> Unit {
        let text = std::fs::read_to_string(path).unwrap();
        let mut section = String::new();
        let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_string();
            } else if section == "[Service]"
                && !line.starts_with('#')
                && let Some((key, value)) = line.split_once('=')
            {
                settings
                    .entry(key.to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
        Unit(settings)
    }

    /// One setting's value (the last, as systemd takes it).
    pub fn one(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    /// A list setting's words, over every line that sets it.
    pub fn words(&self, key: &str) -> Vec<String> {
        let all = self.0.get(key).into_iter().flatten();
        all.flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect()
    }

    /// `ExecStart` in `ns`, as the unit runs it; with `strace`, every system
    /// call of it and its children is written there.
    pub fn command(&self, ns: &Netns, strace: Option<&Path>) -> Command {
        let exec = self.one("ExecStart").expect("ExecStart=");
        self.sandboxed(ns, strace, &exec.split_whitespace().collect::<Vec<_>>())
    }

    /// `argv` in the unit's sandbox, in place of its `ExecStart`.
    pub fn sandboxed(&self, ns: &Netns, strace: Option<&Path>, argv: &[&str]) -> Command {
        let user = self.one("User").expect("User=");
        let group = self.one("Group").unwrap_or(user);
        let caps = |key: &str| {
            let caps: Vec<String> = self
                .words(key)
                .iter()
                .map(|c| format!("+{}", c.to_lowercase().trim_start_matches("cap_")))
                .collect();
            format!("-all,{}", caps.join(","))
        };
        let mut writable: Vec<String> = self
            .words("StateDirectory")
            .iter()
            .map(|d| format!("/var/lib/{d}"))
            .collect();
        writable.extend(
            self.words("ReadWritePaths")
                .iter()
                .map(|p| p.trim_start_matches('-').to_string()),
        );
        let hidden: Vec<String> = self
            .words("InaccessiblePaths")
            .iter()
            .map(|p| p.trim_start_matches('-').to_string())
            .collect();
        assert_eq!(self.one("ProtectSystem"), Some("strict"));
        let mut script = String::from("set -e\nmount --make-rprivate /\n");
        if self.one("PrivateTmp") == Some("yes") {
            script += "mount -t tmpfs -o mode=1777 tmpfs /tmp\nmount -t tmpfs -o mode=1777 tmpfs /var/tmp\n";
        }
        if self.one("ProtectHome") == Some("yes") {
            script += "for d in /home /root /run/user; do [ -d $d ] && mount -t tmpfs -o ro,mode=0755 tmpfs $d; done\n";
        }
        script += ": >/tmp/.gone; chmod 000 /tmp/.gone; mkdir -m 000 /tmp/.gone.d\n";
        for p in &hidden {
            script += &format!(
                "if [ -d {p} ]; then mount --bind /tmp/.gone.d {p}; elif [ -e {p} ]; then mount --bind /tmp/.gone {p}; fi\n"
            );
        }
        for p in &writable {
            script += &format!("[ -e {p} ] && mount --bind {p} {p}\n");
        }
        // Every other mount read-only, but the kernel's API file systems and
        // the private /tmp.
        let keep: Vec<String> = writable
            .iter()
            .chain(["/tmp", "/var/tmp"].map(String::from).iter())
            .flat_map(|p| [p.clone(), format!("{p}/*")])
            .chain(["/proc", "/proc/*", "/sys", "/sys/*", "/dev", "/dev/*"].map(String::from))
            .collect();
        script += &format!(
            "findmnt -rn -o TARGET | while read -r m; do m=$(printf '%b' \"$m\"); case \"$m\" in {}) ;; *) mount -o remount,bind,ro \"$m\" 2>/dev/null || true;; esac; done\n",
            keep.join("|")
        );
        script += "exec \"$@\"\n";
        let mut c = ns.command("unshare");
        c.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "unit",
        ]);
        if let Some(file) = strace {
            c.args(["strace", "-f", "-qq", "-o"]).arg(file);
        }
        c.args([
            "setpriv",
            "--reuid",
            user,
            "--regid",
            group,
            "--init-groups",
        ]);
        if self.one("NoNewPrivileges") == Some("yes") {
            c.arg("--no-new-privs");
        }
        let ambient = caps("AmbientCapabilities");
        c.args(["--inh-caps", &ambient, "--ambient-caps", &ambient]);
        c.args(["--bounding-set", &caps("CapabilityBoundingSet")]);
        c.args(argv);
        c.env_clear();
        c.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin");
        c.env("HOME", format!("/var/lib/{user}"));
        c.env("USER", user).env("LOGNAME", user);
        for file in self.words("EnvironmentFile") {
            let file = file.trim_start_matches('-');
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for line in text.lines().map(str::trim) {
                if let Some((k, v)) = line.split_once('=')
                    && !line.starts_with('#')
                {
                    c.env(k.trim(), v.trim());
                }
            }
        }
        for e in self.words("Environment") {
            if let Some((k, v)) = e.split_once('=') {
                c.env(k, v);
            }
        }
        c
    }
}
