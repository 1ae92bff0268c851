//! What `/proc` tells about other processes: who holds a lock on a file (`/proc/locks`) and
//! which `dockerd` processes run on which data root (`/proc/<pid>/{comm,cmdline,cwd}`).
//!
//! Everything here is best effort: a process that exits while it is being read, or whose files
//! cannot be read, is left out.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::{DEFAULT_DAEMON_JSON, DEFAULT_DOCKERD_ROOT, DaemonConfig};

/// The major and minor numbers of a device as `/proc/locks` prints them (glibc's
/// `major`/`minor` on the kernel's user-space encoding).
fn major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// The processes holding a `flock` lock on `path` (not those waiting for one), from
/// `/proc/locks`, sorted. Entries match on device and inode; when none does (some file
/// systems show another device number there than `stat` does), on the inode alone.
pub(crate) fn lock_holders(path: &Path) -> Vec<u32> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    holders_in(&text, major_minor(meta.dev()), meta.ino())
}

fn holders_in(locks: &str, (major, minor): (u64, u64), ino: u64) -> Vec<u32> {
    let mut exact = Vec::new();
    let mut by_inode = Vec::new();
    for line in locks.lines() {
        let mut fields = line.split_whitespace().skip(1);
        let Some(kind) = fields.next() else { continue };
        if kind != "FLOCK" {
            // "->" marks a waiter; POSIX and OFD locks are not ours.
            continue;
        }
        let mut fields = fields.skip(2);
        let (Some(pid), Some(file)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let mut parts = file.split(':');
        let (Some(maj), Some(min), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if i.parse::<u64>() != Ok(ino) {
            continue;
        }
        by_inode.push(pid);
        if u64::from_str_radix(maj, 16) == Ok(major) && u64::from_str_radix(min, 16) == Ok(minor) {
            exact.push(pid);
        }
    }
    let mut out = if exact.is_empty() { by_inode } else { exact };
    out.sort_unstable();
    out.dedup();
    out
}

/// A running `dockerd` and the data root it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dockerd {
    /// Its process ID.
    pub(crate) pid: u32,
    /// Its data root as it names it (relative paths resolved against its working directory).
    pub(crate) root: PathBuf,
    /// The same directory reached through `/proc/<pid>/root` (or `cwd`), so that it is the
    /// one dockerd sees even from another mount namespace; only readable with the right
    /// privileges.
    via_proc: PathBuf,
}

impl Dockerd {
    /// Whether this dockerd's data root is the directory `ours` (compared by device and
    /// inode: the same directory whatever the path, symbolic links or mount namespace).
    pub(crate) fn uses(&self, ours: &std::fs::Metadata) -> bool {
        let same = |m: std::fs::Metadata| m.dev() == ours.dev() && m.ino() == ours.ino();
        match std::fs::metadata(&self.via_proc) {
            Ok(m) => same(m),
            Err(_) => std::fs::metadata(&self.root).is_ok_and(same),
        }
    }
}

/// Every process whose `comm` or `argv[0]` base name is `dockerd`, with its data root.
pub(crate) fn dockerds() -> Vec<Dockerd> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let proc_dir = entry.path();
        let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<&OsStr> = cmdline.split(|b| *b == 0).map(OsStr::from_bytes).collect();
        let argv0_is_dockerd = args
            .first()
            .and_then(|a| Path::new(a).file_name())
            .is_some_and(|n| n == "dockerd");
        let comm_is_dockerd =
            || std::fs::read(proc_dir.join("comm")).is_ok_and(|c| c.trim_ascii_end() == b"dockerd");
        if !argv0_is_dockerd && !comm_is_dockerd() {
            continue;
        }
        let cwd = std::fs::read_link(proc_dir.join("cwd")).ok();
        let flags = DockerdFlags::parse(args.get(1..).unwrap_or_default());
        let root = match flags.data_root {
            Some(r) => r,
            None => {
                let config = flags
                    .config_file
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DAEMON_JSON));
                data_root_in_config(&via_proc(&proc_dir, &config))
                    .or_else(|| data_root_in_config(&resolve(cwd.as_deref(), config)))
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DOCKERD_ROOT))
            }
        };
        out.push(Dockerd {
            pid,
            via_proc: via_proc(&proc_dir, &root),
            root: resolve(cwd.as_deref(), root),
        });
    }
    out.sort_by_key(|d| d.pid);
    out
}

/// `path` as the process of `/proc/<pid>` (`proc_dir`) sees it, through its root or working
/// directory.
fn via_proc(proc_dir: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) => proc_dir.join("root").join(rel),
        Err(_) => proc_dir.join("cwd").join(path),
    }
}

/// `path` as the process whose working directory is `cwd` means it.
fn resolve(cwd: Option<&Path>, path: PathBuf) -> PathBuf {
    match cwd {
        Some(cwd) if path.is_relative() => cwd.join(path),
        _ => path,
    }
}

/// `data-root` (or the deprecated `graph`) in a daemon.json; `None` when the file is
/// missing or unusable (dockerd's default then applies).
fn data_root_in_config(path: &Path) -> Option<PathBuf> {
    DaemonConfig::load(path).ok()?.data_root
}

/// The dockerd flags that choose its data root, as Go's `pflag` reads them: `--data-root X`,
/// `--data-root=X`, the deprecated `--graph`/`-g` (also `-gX`), and `--config-file`. The last
/// one given wins; `--` ends the flags.
#[derive(Debug, Default, PartialEq, Eq)]
struct DockerdFlags {
    data_root: Option<PathBuf>,
    config_file: Option<PathBuf>,
}

impl DockerdFlags {
    fn parse(args: &[&OsStr]) -> DockerdFlags {
        let mut out = DockerdFlags::default();
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_bytes();
            i += 1;
            if arg == b"--" {
                break;
            }
            let (slot, inline) = if let Some(rest) = long_flag(arg, &[b"data-root", b"graph"]) {
                (&mut out.data_root, rest)
            } else if let Some(rest) = long_flag(arg, &[b"config-file"]) {
                (&mut out.config_file, rest)
            } else if let Some(rest) = arg.strip_prefix(b"-g") {
                let rest = rest.strip_prefix(b"=").unwrap_or(rest);
                (&mut out.data_root, (!rest.is_empty()).then_some(rest))
            } else {
                continue;
            };
            let value = match inline {
                Some(v) => v,
                None => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.as_bytes()
                    }
                    None => break,
                },
            };
            *slot = Some(PathBuf::from(OsStr::from_bytes(value)));
        }
        out
    }
}

/// `Some(None)` for `--name`, `Some(Some(value))` for `--name=value`, for any of `names`.
fn long_flag<'a>(arg: &'a [u8], names: &[&[u8]]) -> Option<Option<&'a [u8]>> {
    let body = arg.strip_prefix(b"--")?;
    names.iter().find_map(|name| {
        let rest = body.strip_prefix(*name)?;
        match rest {
            [] => Some(None),
            [b'=', value @ ..] => Some(Some(value)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> DockerdFlags {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        DockerdFlags::parse(&args)
    }

    #[test]
    fn dockerd_flags_as_pflag_reads_them() {
        let root = |s: &str| Some(PathBuf::from(s));
        assert_eq!(flags(&["--data-root", "/a"]).data_root, root("/a"));
        assert_eq!(flags(&["--data-root=/a"]).data_root, root("/a"));
        assert_eq!(flags(&["-g", "/a"]).data_root, root("/a"));
        assert_eq!(flags(&["-g=/a"]).data_root, root("/a"));
        assert_eq!(flags(&["-g/a"]).data_root, root("/a"));
        assert_eq!(flags(&["--graph", "/a"]).data_root, root("/a"));
        assert_eq!(
            flags(&["--graph=/b", "--data-root", "/a"]).data_root,
            root("/a")
        );
        assert_eq!(flags(&["--data-rootx", "/a"]).data_root, None);
        assert_eq!(flags(&["--", "--data-root", "/a"]).data_root, None);
        assert_eq!(flags(&["--data-root"]).data_root, None);
        let f = flags(&["--debug", "--config-file", "/etc/d.json", "-H", "unix://x"]);
        assert_eq!(f.config_file, root("/etc/d.json"));
        assert_eq!(f.data_root, None);
    }

    #[test]
    fn lock_holders_match_device_and_inode() {
        let locks = "\
1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4343 08:01:1234 0 EOF
2: POSIX  ADVISORY  WRITE 99 08:01:1234 0 EOF
3: FLOCK  ADVISORY  READ 17 00:2d:1234 0 EOF
4: FLOCK  ADVISORY  READ 18 fd:10:1234 0 EOF
5: FLOCK  ADVISORY  READ 19 08:01:12345 0 EOF
";
        assert_eq!(holders_in(locks, (8, 1), 1234), vec![4242]);
        assert_eq!(holders_in(locks, (0xfd, 0x10), 1234), vec![18]);
        // No exact device: every holder of that inode.
        assert_eq!(holders_in(locks, (9, 9), 1234), vec![17, 18, 4242]);
        assert_eq!(holders_in(locks, (8, 1), 1), Vec::<u32>::new());
    }

    #[test]
    fn device_numbers_split_as_glibc_does() {
        assert_eq!(major_minor(0x0801), (8, 1));
        assert_eq!(major_minor(0xfd10), (0xfd, 0x10));
        // A large minor (e.g. 0:2d is small; 259:100000 is not).
        let dev = (259u64 << 8) | (100_000u64 & 0xff) | ((100_000u64 & !0xff) << 12);
        assert_eq!(major_minor(dev), (259, 100_000));
    }
}
