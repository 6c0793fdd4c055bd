//! A target's free space as OpenSSH's `sftp` prints it for `df` (the
//! server's `statvfs@openssh.com`): a header, then size, used, available
//! and the root's share, in KiB, and the capacity used.
//!
//! ```text
//! sftp> df /srv/backup
//!         Size         Used        Avail       (Root)    %Capacity
//!     20509264      5066512     14377792     15443752          24%
//! ```

/// A filesystem's size and what is free to an unprivileged writer, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub free: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sftp's df: {0}")]
pub struct DfError(&'static str);

/// Reads the figures under `df`'s header.
pub fn sftp_df(text: &str) -> Result<Space, DfError> {
    let mut lines = text.lines().map(str::trim);
    lines
        .by_ref()
        .find(|l| l.starts_with("Size") && l.contains("Avail"))
        .ok_or(DfError("no header"))?;
    let figures = lines.next().ok_or(DfError("no figures under the header"))?;
    let mut fields = figures.split_whitespace();
    let mut kib = || -> Result<u64, DfError> {
        fields
            .next()
            .ok_or(DfError("too few figures"))?
            .parse::<u64>()
            .map_err(|_| DfError("a figure is not a number"))?
            .checked_mul(1024)
            .ok_or(DfError("a figure is too large"))
    };
    let (total, _used, free) = (kib()?, kib()?, kib()?);
    if free > total {
        return Err(DfError("more available than the size"));
    }
    Ok(Space { total, free })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openssh_9_df() {
        let out = "sftp> df /srv/backup\n        Size         Used        Avail       (Root)    %Capacity\n    20509264      5066512     14377792     15443752          24%\n";
        assert_eq!(
            sftp_df(out),
            Ok(Space {
                total: 20_509_264 * 1024,
                free: 14_377_792 * 1024
            })
        );
        for bad in [
            "",
            "Size Used Avail\n",
            "Size Used Avail\n1 2\n",
            "Size Avail\n1 x 3\n",
            "Size Avail\n5 1 9\n",
        ] {
            assert!(sftp_df(bad).is_err(), "{bad:?}");
        }
    }
}
