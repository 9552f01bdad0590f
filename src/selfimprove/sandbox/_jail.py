"""The jail's file system: a minimal read-only root built once per worker, and each job's fresh /proc and
/tmp.

Stdlib only (imported by ``_worker.py``, which runs with ``python -I -S``). Allowlist, not denylist: the
worker enters a mount namespace of its own and ``pivot_root``s into a small tmpfs that holds only

- the system directories the interpreter and the standard library need (``SYSTEM_DIRS``: /usr and the /lib*,
  /bin, /sbin links), bound read-only;
- the Python prefix (``sys.base_prefix``; e.g. ``/root/.pyenv/versions/3.11.7``) at its own path, read-only;
  the directories above it are empty except for the path down to it;
- a handful of /etc entries (``ETC_KEEP``: the dynamic linker's cache and the time zone) and /dev nodes
  (``DEV_KEEP``);
- empty /proc and /tmp, on which each job mounts a fresh procfs of its pid namespace and a size-capped tmpfs.

Every other top-level directory (/home, /root, /work, /srv, /opt, /mnt, /var, /run, /sys, a project's or a
data set's folder, a directory created after the worker started) and every other file in /etc is absent. The
old root is detached, so nothing in the job's mount namespace leads back to it.
"""

import ctypes
import os
import platform

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = (1024, 2048, 4096, 16384, 1 << 18,
                                                                       1 << 21)
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
"""Top-level entries a job sees (read-only); symbolic links (merged /usr) are kept as links."""
ETC_KEEP = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone")
"""The only /etc entries a job sees: what the dynamic linker and ``time.localtime`` read."""
DEV_KEEP = ("null", "zero", "full", "random", "urandom")
"""The only device nodes a job sees."""

_libc = ctypes.CDLL(None, use_errno=True)


def check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, target, fstype, flags, data=None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
          f"mount {target}")


def under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _keep(src: str, new: str) -> None:
    """Show host path ``src`` at the same path under ``new``: a link as a link, a file or directory bound."""
    dst = new + src
    os.makedirs(os.path.dirname(dst), 0o755, exist_ok=True)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    if not os.path.exists(src):
        return
    if os.path.isdir(src):
        os.makedirs(dst, 0o755, exist_ok=True)
    else:
        with open(dst, "a"):
            pass
    mount(src, dst, None, MS_BIND | MS_REC)


def _mount_points(new: str) -> list[str]:
    """Mount points at or under ``new`` (from mountinfo; octal escapes such as \\040 decoded)."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    points = [p.encode().decode("unicode_escape") for p in points]
    return [p for p in points if under(p, new)]


def _remount_read_only(point: str, devices: bool) -> None:
    """Make one mount read-only and nosuid (nodev too unless it holds ``devices``), keeping its noexec and
    atime flags (clearing a flag can be refused)."""
    st = os.statvfs(point).f_flag
    keep = [(os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
            (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME)]
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | (0 if devices else MS_NODEV)
    for st_flag, ms_flag in keep:
        if st & st_flag:
            flags |= ms_flag
    mount(None, point, None, flags)


def build_root(expose: list[str], hide: list[str]) -> None:
    """Enter a private mount namespace and pivot_root into the minimal read-only root (see the module
    docstring). ``expose``: host directories shown at their own path (the Python prefix); ``hide``:
    directories inside a shown tree to cover with an empty read-only tmpfs (ancestors of ``expose`` are
    skipped: only the path down to the prefix exists there anyway). Runs as root; raises OSError saying which
    step failed."""
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown system call number on {platform.machine()}")
    new = "/tmp"  # a tmpfs mounted over /tmp in this private namespace only: the host's /tmp is untouched
    if any(under(p, new) for p in expose):
        raise OSError(0, f"the Python prefix {expose} is under {new}, which the jail replaces")
    check(_libc.unshare(CLONE_NEWNS), "unshare mount")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    shown = []
    for name in SYSTEM_DIRS:
        if os.path.exists("/" + name):
            shown.append(os.path.realpath("/" + name))
    mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for name in SYSTEM_DIRS:
        _keep("/" + name, new)
    os.mkdir(new + "/etc", 0o755)
    for name in ETC_KEEP:
        _keep("/etc/" + name, new)
    os.mkdir(new + "/dev", 0o755)
    for name in DEV_KEEP:
        _keep("/dev/" + name, new)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    for path in expose:
        if not any(under(path, s) for s in shown):
            _keep(path, new)
    for path in hide:
        if not any(under(p, path) for p in expose) and os.path.isdir(new + path):
            mount("tmpfs", new + path, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,nr_inodes=16,mode=0755")
    os.mkdir(new + "/proc", 0o555)
    os.mkdir(new + "/tmp", 0o755)
    for point in sorted(_mount_points(new), key=len):
        _remount_read_only(point, devices=under(point, new + "/dev"))
    os.chdir(new)
    check(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")  # old root now stacked on "/"
    check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")


def job_mounts(tmp_mb: float) -> None:
    """In a job's new mount + pid namespace (as root): a fresh /proc of that pid namespace and a private
    size-capped tmpfs /tmp; everything else stays the worker's read-only minimal root."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(tmp_mb)}m,nr_inodes=4096,mode=0755")
