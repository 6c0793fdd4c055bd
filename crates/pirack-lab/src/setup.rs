//! Whole labs on this machine in one command, each in a network namespace of its
//! own with real peers: `pirack demo` (simulated Pis on an emulated PoE switch) and
//! `pirack hil` (virtual Pi 3s booting a real kernel under QEMU). What they share
//! lives here.

use crate::signals::catch_stop_signals;
use crate::testbed::apt;
use crate::testbed::netns::{self, Netns};
use crate::testbed::nfs::Ganesha;
use crate::testbed::proc::Proc;
use crate::{forward, site};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use pirack_controller::roots::image as roots_image;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Where the API listens inside a lab's namespace.
const API: &str = "127.0.0.1:18080";
/// Where a standby controller's API listens there.
const STANDBY_API: &str = "127.0.0.1:18081";

/// Runs `work` behind a spinner saying `what`, then a line with its time.
pub(crate) fn step<T>(what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new_spinner().with_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let out = work();
    bar.finish_and_clear();
    let verdict = if out.is_ok() { "done" } else { "FAILED" };
    eprintln!(
        "{what}: {verdict} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    out
}

fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let out = std::fs::File::create(log)?;
    let status = cmd
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .with_context(|| format!("{:?}", cmd.get_program()))?;
    match status.success() {
        true => Ok(()),
        false => bail!("{status}; see {}", log.display()),
    }
}

/// The image `images/<name>/recipe` builds (cached in `dir`), imported into
/// `store` as each of `versions`; its boot directory.
fn image(
    source: &Path,
    dir: &Path,
    store: &Path,
    name: &str,
    versions: &[&str],
) -> Result<PathBuf> {
    let built = dir.join(name);
    if !built.join("boot/kernel8.img").exists() || !built.join("root.tar.gz").exists() {
        let what = format!(
            "building the {name} image (images/{name}/recipe: Debian's Pi firmware and kernel, busybox)"
        );
        step(&what, || {
            run_logged(
                Command::new(source.join(format!("images/{name}/recipe"))).arg(&built),
                &dir.join(format!("{name}.log")),
            )
        })?;
    }
    for version in versions {
        let id = format!("{name}-{version}");
        if roots_image::show(store, &id).is_ok() {
            continue;
        }
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template("importing the image [{bar:30}] {bytes}/{total_bytes}")
                .expect("a valid template"),
        );
        let import = roots_image::Import {
            name: name.into(),
            version: version.to_string(),
            root: built.join("root.tar.gz"),
            boot: built.join("boot"),
            cmdline: "console=ttyAMA0,115200".into(),
        };
        roots_image::import(store, &import, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        eprintln!("imported the {name} image as {id}");
    }
    Ok(built.join("boot"))
}

/// The loopback address of a PostgreSQL URL's server (`postgres://u:p@127.0.0.1/db`,
/// port 5432 unless named), if that is where it is.
fn loopback_database(url: &str) -> Option<std::net::SocketAddr> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (host_port, 5432),
    };
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let ip: std::net::IpAddr = host.parse().ok()?;
    ip.is_loopback()
        .then_some(std::net::SocketAddr::new(ip, port))
}

/// An admin token and one for `owner`, made in the store at `db`.
fn tokens(db: &str, owner: &str) -> Result<(String, String)> {
    use pirack_controller::store::owners::Source;
    use pirack_controller::store::{Store, tokens::Scope};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = Store::open(db).await?;
        // The customer is the lab inventory's; the controller records them all
        // when it starts, after this.
        store.add_owner(owner, Source::Inventory).await?;
        let (_, admin) = store.create_token("demo admin", &Scope::Admin).await?;
        let customer = Scope::Customer(owner.to_string());
        let (_, mine) = store.create_token("demo customer", &customer).await?;
        store.pool().close().await;
        Ok((admin, mine))
    })
}

/// Refuses to go on unless root, saying exactly what the labs need it for.
pub(crate) fn need_root(command: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "pirack {command} needs root: every Pi gets a network namespace and its own \
             links (a veth pair; a bridge and a tap for a virtual Pi: CAP_NET_ADMIN), the \
             controller serves DHCP and TFTP on ports 67 and 69 and NFS-Ganesha serves \
             the roots (CAP_NET_BIND_SERVICE), and the roots keep the image's owners and \
             modes (CAP_CHOWN, CAP_FOWNER, CAP_MKNOD). Run it as root (sudo -E pirack \
             {command} ...), in a VM or container if you prefer."
        );
    }
    Ok(())
}

/// What a lab boots.
pub(crate) enum LabImage<'a> {
    /// `images/<name>/recipe`'s image, built once into the lab's directory and
    /// imported there as each of `versions`.
    Recipe {
        name: &'a str,
        versions: &'a [&'a str],
    },
    /// Someone's image, readied (once the packages are in) and imported afresh
    /// into this run's store; its boot directory is the site's boot files.
    Given(&'a dyn Fn() -> Result<roots_image::Import>),
}

/// How a lab starts: which command, where, and what it boots.
pub(crate) struct Options<'a> {
    pub(crate) command: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) source: &'a Path,
    pub(crate) no_install: bool,
    /// Debian packages beyond the shared peers'.
    pub(crate) packages: &'a [&'static str],
    pub(crate) image: LabImage<'a>,
    pub(crate) slots: usize,
    pub(crate) virtual_pis: bool,
    pub(crate) community_env: &'a str,
    /// Make a key pair and let it into every Pi as root (needs openssh-client).
    pub(crate) ssh: bool,
    /// The controller's store: a fresh database [default: SQLite in the run
    /// directory].
    pub(crate) db: Option<&'a str>,
}

/// What both labs set up first: root, signals, packages, the image, a fresh run
/// directory with the derived site, and the namespace everything runs in (removed
/// when the lab is dropped, after whatever was started in it).
pub(crate) struct Lab {
    pub(crate) source: PathBuf,
    pub(crate) run: PathBuf,
    pub(crate) store: PathBuf,
    /// The built image's boot directory (also the site's boot files).
    pub(crate) boot: PathBuf,
    pub(crate) site: site::DemoSite,
    pub(crate) inventory: PathBuf,
    pub(crate) profiles: PathBuf,
    pub(crate) exports: PathBuf,
    pub(crate) ganesha_pid: PathBuf,
    pub(crate) community: String,
    pub(crate) community_env: String,
    pub(crate) ns: Netns,
    /// The private key every Pi lets in as root, when asked for.
    pub(crate) ssh_identity: Option<PathBuf>,
    /// The controller's store's URL.
    pub(crate) db: String,
}

impl Lab {
    pub(crate) fn open(o: &Options) -> Result<Lab> {
        let command = o.command;
        need_root(command)?;
        catch_stop_signals()?;
        std::fs::create_dir_all(o.dir)?;
        let dir = std::fs::canonicalize(o.dir)?;
        let source = std::fs::canonicalize(o.source)
            .with_context(|| format!("the pirack checkout {}", o.source.display()))?;
        if !source.join("switch-profiles").is_dir() || !source.join("images").is_dir() {
            bail!(
                "{} is not a pirack checkout: run from the repository's top directory, or pass --source",
                source.display()
            );
        }
        let missing = apt::missing_packages(o.packages)?;
        if !missing.is_empty() {
            if o.no_install {
                bail!("missing Debian packages: {}", missing.join(" "));
            }
            let what = format!("installing {} with apt-get", missing.join(" "));
            step(&what, || Ok(apt::install(&missing, &dir.join("apt.log"))?))?;
        }
        // A fresh shelf every run: the controller's state, roots and logs.
        let run = dir.join("run");
        if run.exists() {
            std::fs::remove_dir_all(&run).with_context(|| format!("clearing {}", run.display()))?;
        }
        std::fs::create_dir_all(run.join("nfs"))?;
        let (store, boot) = match &o.image {
            LabImage::Recipe { name, versions } => {
                let store = dir.join("images");
                let boot = image(&source, &dir, &store, name, versions)?;
                (store, boot)
            }
            LabImage::Given(ready) => {
                let import = ready()?;
                let store = run.join("images");
                let what = format!("importing {}-{}", import.name, import.version);
                step(&what, || {
                    Ok(roots_image::import(&store, &import, &|_, _| {})?)
                })?;
                (store, import.boot.clone())
            }
        };
        let example = site::example_for(o.slots)?;
        let text = std::fs::read_to_string(source.join(example))
            .with_context(|| format!("reading {example}"))?;
        let (exports, ganesha_pid) = (run.join("nfs/exports.conf"), run.join("nfs/ganesha.pid"));
        let ssh = match o.ssh {
            true => Some(crate::hil::exec::keypair(&run.join("ssh"))?),
            false => None,
        };
        let layout = site::Layout {
            export_root: &run.join("export"),
            boot_files: &boot,
            exports_file: &exports,
            ganesha_pid_file: &ganesha_pid,
            community_env: o.community_env,
            virtual_pis: o.virtual_pis,
            ssh_key: ssh.as_ref().map(|(_, public)| public.as_str()),
        };
        let site = site::derive(example, &text, o.slots, &layout)?;
        let inventory = run.join("site.yaml");
        std::fs::write(&inventory, &site.yaml)?;

        // Namespaces of labs and simulators killed outright: `pirack-demo-PID`,
        // `pirack-hil-PID[-fw-SLOT]` and `pirack-sim-PID-N`.
        netns::clear_stale(&["pirack-demo-", "pirack-hil-", "pirack-sim-"]);
        let ns = Netns::new(&format!("pirack-{command}-{}", std::process::id()))?;
        let db = o.db.map_or_else(
            || format!("sqlite://{}", run.join("state.db").display()),
            String::from,
        );
        if let Some(at) = loopback_database(&db) {
            // The controllers, inside the namespace, reach it at the same address.
            forward::out_of(ns.name(), at)?;
        }
        Ok(Lab {
            profiles: source.join("switch-profiles"),
            source,
            run,
            store,
            boot,
            site,
            inventory,
            exports,
            ganesha_pid,
            community: pirack_controller::store::random_hex(12)?,
            community_env: o.community_env.to_string(),
            ns,
            ssh_identity: ssh.map(|(key, _)| key),
            db,
        })
    }

    /// `pirack <args>` with the lab's inventory, profiles and switch community.
    pub(crate) fn pirack(&self, netns: bool, args: &[&str]) -> Result<Command> {
        let exe = std::env::current_exe()?;
        let mut c = if netns {
            self.ns.command(&exe)
        } else {
            Command::new(&exe)
        };
        c.args(args)
            .arg("--inventory")
            .arg(&self.inventory)
            .arg("--profiles")
            .arg(&self.profiles)
            .env(&self.community_env, &self.community);
        Ok(c)
    }

    /// NFS-Ganesha in the namespace, serving the exports the controller writes.
    pub(crate) fn nfs(&self) -> Result<Ganesha> {
        step("starting NFS-Ganesha (and rpcbind)", || {
            Ok(Ganesha::start(
                self.ns.name(),
                &self.run.join("nfs"),
                &self.exports,
                &self.ganesha_pid,
            )?)
        })
    }

    /// The controller (`pirack serve` plus `extra`) in the namespace, its API
    /// carried to a loopback `port`, and a client with an admin token; also a
    /// token for the first slot's customer.
    pub(crate) fn controller(&self, extra: &[&str], port: u16) -> Result<Controller> {
        let owner = self.site.slots[0].1.clone();
        let (admin, customer) = tokens(&self.db, &owner)?;
        let mut serve = self.pirack(true, &["serve", "--db", &self.db, "--api", API])?;
        serve.arg("--images").arg(&self.store).args(extra);
        let log = self.run.join("serve.log");
        let mut proc = Proc::spawn("pirack serve", &mut serve, &log, false)?;
        let local = forward::start(port, self.ns.name(), API.parse()?)?;
        let api = pirack_controller::api::client::Client::new(
            &format!("http://{local}"),
            admin.clone(),
            None,
        )?;
        step("starting the controller", || {
            let started = Instant::now();
            while api.call("GET", "/healthz", None).is_err() {
                proc.check()?;
                if started.elapsed() > Duration::from_secs(30) {
                    bail!("the controller did not answer; see {}", log.display());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        })?;
        Ok(Controller {
            proc,
            api,
            url: format!("http://{local}"),
            admin,
            owner,
            customer,
        })
    }
}

impl Lab {
    /// A second controller on the lab's store, standing by (`pirack serve
    /// --standby`, `extra` as the first's) on the same ports in the namespace,
    /// as a fileserver's second machine would; its API carried to loopback
    /// `port`, with the first's `admin` token. Not waited for: it answers once
    /// it has taken over.
    pub(crate) fn standby(
        &self,
        extra: &[&str],
        port: u16,
        admin: &str,
    ) -> Result<(Proc, pirack_controller::api::client::Client, String)> {
        let mut serve = self.pirack(
            true,
            &["serve", "--standby", "--db", &self.db, "--api", STANDBY_API],
        )?;
        serve.arg("--images").arg(&self.store).args(extra);
        let log = self.run.join("standby.log");
        let proc = Proc::spawn("pirack serve --standby", &mut serve, &log, false)?;
        let local = forward::start(port, self.ns.name(), STANDBY_API.parse()?)?;
        let url = format!("http://{local}");
        let api = pirack_controller::api::client::Client::new(&url, admin.to_string(), None)?;
        Ok((proc, api, url))
    }

    /// Provisions every slot of the lab with `image` for its customer, through
    /// the API, and waits for the roots.
    pub(crate) fn provision(
        &self,
        api: &pirack_controller::api::client::Client,
        image: &str,
    ) -> Result<()> {
        let what = format!("provisioning {} slots with {image}", self.site.slots.len());
        step(&what, || {
            let ops = self
                .site
                .slots
                .iter()
                .map(|(slot, owner)| {
                    let body = serde_json::json!({ "image": image, "owner": owner, "slot": slot });
                    api.call("POST", "/v1/slots", Some(&body))
                })
                .collect::<Result<Vec<_>, _>>()?;
            ops.iter().try_for_each(|op| api.wait(op).map(drop))?;
            Ok(())
        })
    }

    /// Switches every slot of the lab on through the API, and waits for the
    /// switch to have done it.
    pub(crate) fn power_on(&self, api: &pirack_controller::api::client::Client) -> Result<()> {
        let body = serde_json::json!({ "action": "on" });
        let ops = self
            .site
            .slots
            .iter()
            .map(|(slot, _)| api.call("POST", &format!("/v1/slots/{slot}/power"), Some(&body)))
            .collect::<Result<Vec<_>, _>>()?;
        ops.iter().try_for_each(|op| api.wait(op).map(drop))?;
        Ok(())
    }
}

/// A running controller of a lab.
pub(crate) struct Controller {
    pub(crate) proc: Proc,
    pub(crate) api: pirack_controller::api::client::Client,
    pub(crate) url: String,
    pub(crate) admin: String,
    pub(crate) owner: String,
    pub(crate) customer: String,
}

#[cfg(test)]
mod tests {
    use super::loopback_database;

    #[test]
    fn a_database_on_this_machines_loopback_is_found_in_its_url() {
        let at = |u: &str| loopback_database(u).map(|a| a.to_string());
        assert_eq!(
            at("postgres://p:w@127.0.0.1/db").as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            at("postgresql://localhost:5433/db").as_deref(),
            Some("127.0.0.1:5433")
        );
        assert_eq!(at("postgres://p:w@db.example/db"), None);
        assert_eq!(at("sqlite:///tmp/state.db"), None);
    }
}
