//! A root image of about 381 MB in about 20,000 files, for the roots and
//! backup benchmarks.

use std::path::Path;

/// About 381 MB in about 20,000 files: many small, some medium, a few large, in a
/// Debian-like directory spread; returns (files, bytes). With `unique`, every
/// byte is pseudo-random (nothing deduplicates or compresses, as in a real
/// image's binaries); else a cheap pattern.
pub fn make(root: &Path, unique: bool) -> (u64, u64) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let dirs = [
        "usr/bin",
        "usr/lib/aarch64-linux-gnu",
        "usr/share/doc",
        "usr/share/locale",
        "usr/lib/python3",
        "etc",
        "var/lib/dpkg/info",
        "lib/modules",
    ];
    let (mut files, mut bytes) = (0u64, 0u64);
    for (count, size) in [(18_000u64, 4_096u64), (1_900, 100_000), (100, 1_200_000)] {
        for i in 0..count {
            let dir = root
                .join(dirs[(next() % dirs.len() as u64) as usize])
                .join(format!("d{}", i % 97));
            std::fs::create_dir_all(&dir).unwrap();
            let len = size / 2 + next() % size;
            let data: Vec<u8> = if unique {
                (0..len.div_ceil(8))
                    .flat_map(|_| next().to_le_bytes())
                    .take(len as usize)
                    .collect()
            } else {
                (0..len)
                    .map(|j| (j as u8).wrapping_mul(31) ^ (i as u8))
                    .collect()
            };
            std::fs::write(dir.join(format!("f{i}-{size}")), &data).unwrap();
            files += 1;
            bytes += len;
        }
    }
    std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
    (files, bytes)
}
