//! A user's image made bootable by a virtual Pi 3. QEMU's raspi3b gives the Pi a
//! USB network card and the Pi boots its root over NFS, which a stock arm64 kernel
//! (Debian's) can do only from an initramfs: so the image's boot files are staged
//! with the HIL initramfs (`images/hil/initramfs`) built from the modules of the
//! image's own kernel, found in its root or, for a root without modules (the CI
//! image), in Debian's kernel package of the same version. The root is imported
//! as it is; pirack's customisation is all that changes it.

use anyhow::{Context, Result, bail};
use pirack_controller::roots::image::{self as roots_image, Import};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The id an image handed over as files gets in the run's store.
pub(crate) const NAME: &str = "under-test";
pub(crate) const VERSION: &str = "1";

/// The import of `root` with `boot` staged in `work` for a virtual Pi, as
/// `name`-`version`.
pub(crate) fn prepare(
    source: &Path,
    (root, boot): (&Path, &Path),
    work: &Path,
    (name, version): (&str, &str),
) -> Result<Import> {
    let files = roots_image::check_boot(boot)?;
    let kernel = std::fs::read(boot.join(&files.kernel))
        .with_context(|| format!("reading {}", boot.join(&files.kernel).display()))?;
    let release = kernel_version(&kernel).with_context(|| {
        format!(
            "{}: no `Linux version` in it, so not a kernel whose modules can be found",
            boot.join(&files.kernel).display()
        )
    })?;
    let modules = modules_for(source, root, &release, work)?;

    let staged = work.join("boot");
    if staged.exists() {
        std::fs::remove_dir_all(&staged)?;
    }
    std::fs::create_dir_all(work)?;
    run(Command::new("cp").arg("-a").arg(boot).arg(&staged)).context("staging the boot files")?;
    if let Some(theirs) = &files.initramfs {
        eprintln!(
            "the image's initramfs {theirs} is replaced by the virtual Pi's (USB network, NFS root)"
        );
        std::fs::remove_file(staged.join(theirs))?;
    }
    run(Command::new(source.join("images/hil/initramfs"))
        .arg(&modules)
        .arg(staged.join("initrd.img")))
    .context("building the virtual Pi's initramfs")?;
    Ok(Import {
        name: name.into(),
        version: version.into(),
        root: root.to_path_buf(),
        boot: staged,
        cmdline: "console=ttyAMA0,115200".into(),
    })
}

/// The release a Linux kernel image says it is (`Linux version 6.1.0-28-arm64 ...`),
/// from the image as it is or gzip-compressed.
pub(crate) fn kernel_version(kernel: &[u8]) -> Option<String> {
    let unpacked;
    let bytes = if kernel.starts_with(&[0x1f, 0x8b]) {
        let mut gunzip = std::process::Command::new("gzip")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut stdin = gunzip.stdin.take()?;
        let input = kernel.to_vec();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        unpacked = gunzip.wait_with_output().ok()?.stdout;
        let _ = feeder.join();
        &unpacked
    } else {
        kernel
    };
    let marker = b"Linux version ";
    let at = bytes.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let end = bytes[at..].iter().position(|b| *b == b' ')?;
    let version = std::str::from_utf8(&bytes[at..at + end]).ok()?;
    (!version.is_empty() && version.len() < 100).then(|| version.to_string())
}

/// The modules of kernel `version`: the root's (a directory, or unpacked from a
/// tarball into `work`), else Debian's kernel package's in the image cache.
fn modules_for(source: &Path, root: &Path, version: &str, work: &Path) -> Result<PathBuf> {
    let tree = if root.is_dir() {
        root.to_path_buf()
    } else {
        let out = work.join("modules-root");
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        std::fs::create_dir_all(&out)?;
        // Only the modules; a tarball without any is not an error here.
        let _ = Command::new("tar")
            .arg("-xf")
            .arg(root)
            .arg("-C")
            .arg(&out)
            .args([
                "--wildcards",
                "--no-anchored",
                &format!("lib/modules/{version}/*"),
            ])
            .output()?;
        out
    };
    for dir in ["lib/modules", "usr/lib/modules"] {
        let found = tree.join(dir).join(version);
        if found.join("kernel").is_dir() {
            return Ok(found);
        }
    }
    let cache = std::env::var_os("PIRACK_DEBIAN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| source.join("target/debian"));
    let debian = cache.join("linux-image-arm64/lib/modules").join(version);
    if debian.join("kernel").is_dir() {
        return Ok(debian);
    }
    bail!(
        "the image's kernel is Linux {version}, and neither its root (lib/modules/{version}) \
         nor Debian's kernel package in {} has that kernel's modules",
        cache.display()
    )
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("{:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?}: {}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::kernel_version;

    #[test]
    fn a_kernel_says_its_release_plain_or_gzipped() {
        let image = b"\x4d\x5a junk Linux version 6.1.0-28-arm64 (debian-kernel@lists) #1 SMP";
        assert_eq!(kernel_version(image).as_deref(), Some("6.1.0-28-arm64"));
        let mut gz = std::process::Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut gz.stdin.take().unwrap(), image).unwrap();
        let packed = gz.wait_with_output().unwrap().stdout;
        assert_eq!(kernel_version(&packed).as_deref(), Some("6.1.0-28-arm64"));
        assert_eq!(kernel_version(b"no kernel here"), None);
        assert_eq!(kernel_version(b"Linux version "), None);
    }
}
