"""Facts about this machine and its software stack, read in one place.

Everything the project records about the machine (run.json ``machine``/``versions``/``host_load``, the
system description of a submission, the bench and training reports, CPU feature checks) comes from here.
Facts are read from Linux sources: ``/proc`` and ``/sys`` always, ``dmidecode`` and ``nvidia-smi`` only if
they are installed and allowed (never required). A fact that cannot be read is ``None``, never a guess.

Every reader takes ``root`` (default ``/``): tests point it at a tiny fake tree of ``proc/`` and ``sys/``
files. External tools are only run when ``root`` is ``/``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path("/")

#: Python packages of the software stack recorded with every run (distribution names).
SOFTWARE_PACKAGES = ("mlcommons-loadgen", "numpy", "tokenizers", "onnxruntime", "torch", "transformers",
                     "tensorflow-cpu", "tensorflow", "onnx", "safetensors")
#: A host is *busy* when other processes used more than this share of all its CPUs (0..1).
BUSY_CPU_SHARE = 0.20


def _read(root: Path, rel: str) -> str | None:
    try:
        return (Path(root) / rel).read_text(errors="replace")
    except OSError:
        return None


def _tool(args: list[str], root: Path, timeout: float = 10.0) -> str | None:
    """stdout of an installed tool, only for the real root; None when absent, failing or not allowed."""
    if Path(root) != ROOT or shutil.which(args[0]) is None:
        return None
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


# -- CPU -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuFacts:
    """The host processor.

    Attributes:
        model: ``model name`` of /proc/cpuinfo, e.g. ``Intel(R) Xeon(R) Platinum 8480+``.
        vendor: ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``).
        sockets: physical packages (distinct ``physical id``).
        cores_per_socket: physical cores of one package (``cpu cores``).
        cores: physical cores in all packages.
        threads: logical CPUs online (``processor`` entries).
        max_mhz: highest frequency in MHz (cpufreq ``cpuinfo_max_freq``, else ``cpu MHz``).
        caches: ``(name, size)`` per cache of CPU 0, e.g. ``("L1d", "48 KiB")``, from
            /sys/devices/system/cpu/cpu0/cache.
        flags: the ``flags`` of the first CPU (``avx512f``, ``amx_bf16`` ...).
        hypervisor: ``hypervisor`` in flags (a virtual machine), from /proc/cpuinfo.
    """

    model: str | None = None
    vendor: str | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    cores: int | None = None
    threads: int | None = None
    max_mhz: float | None = None
    caches: tuple = ()
    flags: frozenset = frozenset()

    @property
    def hypervisor(self) -> bool:
        return "hypervisor" in self.flags

    def caches_text(self) -> str | None:
        """e.g. ``L1d 48 KiB, L1i 32 KiB, L2 2 MiB, L3 105 MiB`` (as CPU 0 sees them), or None."""
        if not self.caches:
            return None
        return ", ".join(f"{name} {size}" for name, size in self.caches)


def _cache_size(size: str) -> str:
    """sysfs cache size (``48K``, ``491520K``) as ``48 KiB`` / ``480 MiB``."""
    if size.endswith("K") and size[:-1].isdigit():
        kib = int(size[:-1])
        return f"{kib // 1024} MiB" if kib >= 1024 and kib % 1024 == 0 else f"{kib} KiB"
    return size


def read_cpu(root: Path = ROOT) -> CpuFacts:
    """CPU facts from /proc/cpuinfo and /sys/devices/system/cpu (see ``CpuFacts``)."""
    text = _read(root, "proc/cpuinfo") or ""
    model = vendor = None
    packages: set[str] = set()
    cores_per_socket = mhz = None
    threads = 0
    flags: frozenset = frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            threads += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "vendor_id" and vendor is None:
            vendor = value
        elif key == "physical id":
            packages.add(value)
        elif key == "cpu cores" and cores_per_socket is None and value.isdigit():
            cores_per_socket = int(value)
        elif key == "cpu MHz" and mhz is None:
            try:
                mhz = float(value)
            except ValueError:
                pass
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    max_khz = (_read(root, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") or "").strip()
    if max_khz.isdigit():
        mhz = int(max_khz) / 1000.0
    sockets = len(packages) or None
    cores = cores_per_socket * sockets if cores_per_socket and sockets else None
    caches = []
    cache_dir = Path(root) / "sys/devices/system/cpu/cpu0/cache"
    for idx in sorted(cache_dir.glob("index*")) if cache_dir.is_dir() else []:
        level = (_read(idx, "level") or "").strip()
        kind = (_read(idx, "type") or "").strip()
        size = (_read(idx, "size") or "").strip()
        if level and size:
            caches.append((f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}",
                           _cache_size(size)))
    return CpuFacts(model=model, vendor=vendor, sockets=sockets, cores_per_socket=cores_per_socket, cores=cores,
                    threads=threads or None, max_mhz=round(mhz, 1) if mhz else None, caches=tuple(caches),
                    flags=flags)


def cpu_flags(root: Path = ROOT) -> frozenset:
    """The CPU feature flags of /proc/cpuinfo (empty when unreadable, e.g. not Linux)."""
    return read_cpu(root).flags


def physical_cores(root: Path = ROOT) -> int:
    """Physical cores available to this process (SMT siblings counted once, CPU affinity respected), >= 1."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
    seen = set()
    for cpu in cpus:
        siblings = _read(root, f"sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        seen.add(siblings.strip() if siblings else str(cpu))
    return max(1, len(seen))


# -- memory, storage, network, accelerators --------------------------------------------------------
@dataclass(frozen=True)
class MemoryFacts:
    """Host memory.

    Attributes:
        capacity_bytes: ``MemTotal`` of /proc/meminfo (what the kernel manages; a little below installed).
        configuration: DIMM layout, e.g. ``8x 32 GB DDR5 4800 MT/s``, from ``dmidecode -t 17`` (needs root
            and DMI tables); None when it cannot be read.
    """

    capacity_bytes: int | None = None
    configuration: str | None = None


def _dimm_configuration(text: str) -> str | None:
    """``N x SIZE TYPE SPEED`` groups from ``dmidecode -t 17`` output (populated slots only)."""
    groups: dict[str, int] = {}
    for block in text.split("\n\n"):
        if "Memory Device" not in block:
            continue
        fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines())
                      if _)
        size = fields.get("Size", "")
        if not size or size.startswith("No Module") or size == "Unknown":
            continue
        desc = " ".join(x for x in (size, fields.get("Type", ""),
                                    fields.get("Configured Memory Speed") or fields.get("Speed", ""))
                        if x and x != "Unknown")
        groups[desc] = groups.get(desc, 0) + 1
    return ", ".join(f"{n}x {d}" for d, n in sorted(groups.items())) or None


def read_memory(root: Path = ROOT, use_tools: bool = True) -> MemoryFacts:
    """Memory capacity (/proc/meminfo) and DIMM configuration (dmidecode, when present and allowed)."""
    cap = None
    for line in (_read(root, "proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                cap = int(parts[1]) * 1024
            break
    conf = None
    if use_tools:
        out = _tool(["dmidecode", "-t", "17"], root)
        conf = _dimm_configuration(out) if out else None
    return MemoryFacts(capacity_bytes=cap, configuration=conf)


@dataclass(frozen=True)
class StorageFacts:
    """The disk holding the working directory.

    Attributes:
        device: block device name (``nvme0n1``, ``sda``, ``vda``).
        capacity_bytes: size of that whole device (sysfs ``size`` x 512), else of the filesystem.
        kind: ``NVMe SSD``, ``SSD``, ``HDD`` (rotational) or ``virtio disk``; None when unknown.
    """

    device: str | None = None
    capacity_bytes: int | None = None
    kind: str | None = None


def _block_device_dir(root: Path, devno: str) -> Path | None:
    link = Path(root) / "sys/dev/block" / devno
    try:
        path = link.resolve(strict=True)
    except OSError:
        return None
    if (path / "partition").is_file():  # a partition: the disk is its parent
        path = path.parent
    return path


def read_storage(root: Path = ROOT, path: Path | str = ".", devno: str | None = None) -> StorageFacts:
    """The block device of the filesystem holding ``path`` (or device ``devno`` = ``"MAJOR:MINOR"``)."""
    if devno is None:
        try:
            st = os.stat(path)
            devno = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
        except OSError:
            devno = None
    dev = _block_device_dir(root, devno) if devno else None
    name = cap = kind = None
    if dev is not None:
        name = dev.name
        sectors = (_read(dev, "size") or "").strip()
        cap = int(sectors) * 512 if sectors.isdigit() and int(sectors) > 0 else None
        rotational = (_read(dev, "queue/rotational") or "").strip()
        try:
            driver = (dev / "device" / "driver").resolve(strict=True).name
        except OSError:
            driver = ""
        if name.startswith("nvme"):
            kind = "NVMe SSD"
        elif driver.startswith("virtio") or name.startswith("vd"):
            kind = "virtio disk"  # a VM's disk: its rotational flag says nothing about the medium
        elif rotational == "0":
            kind = "SSD"
        elif rotational == "1":
            kind = "HDD"
    if cap is None and Path(root) == ROOT:
        try:
            cap = shutil.disk_usage(path).total
        except OSError:
            pass
    return StorageFacts(device=name, capacity_bytes=cap, kind=kind)


@dataclass(frozen=True)
class NetworkCard:
    """A physical network interface: name (``eth0``), driver (``ixgbe``), link speed in Mb/s (None if down)."""

    name: str
    driver: str | None = None
    speed_mbps: int | None = None

    def text(self) -> str:
        speed = f" {self.speed_mbps / 1000:g} Gb/s" if self.speed_mbps else ""
        return f"{self.name} ({self.driver or 'unknown driver'}{speed})"


def read_network(root: Path = ROOT) -> tuple[NetworkCard, ...]:
    """Interfaces of /sys/class/net backed by a device (virtual ones such as lo, veth, bridges are left out)."""
    base = Path(root) / "sys/class/net"
    cards = []
    for iface in sorted(base.iterdir()) if base.is_dir() else []:
        if not (iface / "device").exists():
            continue
        try:
            driver = (iface / "device" / "driver").resolve(strict=True).name
        except OSError:
            driver = None
        speed = (_read(iface, "speed") or "").strip()
        cards.append(NetworkCard(iface.name, driver, int(speed) if speed.isdigit() and int(speed) > 0 else None))
    return tuple(cards)


@dataclass(frozen=True)
class Accelerator:
    """An accelerator: model name and memory in bytes (None when unknown)."""

    model: str
    memory_bytes: int | None = None


def read_accelerators(root: Path = ROOT, use_tools: bool = True) -> tuple[Accelerator, ...]:
    """NVIDIA GPUs (``nvidia-smi`` when installed, else /proc/driver/nvidia/gpus); () when there are none."""
    out = _tool(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"], root) \
        if use_tools else None
    if out:
        accs = []
        for line in out.strip().splitlines():
            name, _, mem = line.partition(",")
            mem = mem.strip()
            accs.append(Accelerator(name.strip(), int(float(mem)) * 2**20 if mem.replace(".", "").isdigit() else None))
        return tuple(accs)
    base = Path(root) / "proc/driver/nvidia/gpus"
    accs = []
    for gpu in sorted(base.iterdir()) if base.is_dir() else []:
        for line in (_read(gpu, "information") or "").splitlines():
            if line.startswith("Model:"):
                accs.append(Accelerator(line.split(":", 1)[1].strip()))
    return tuple(accs)


def read_os(root: Path = ROOT) -> tuple[str | None, str | None]:
    """(``PRETTY_NAME`` of /etc/os-release, kernel release)."""
    pretty = None
    for line in (_read(root, "etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"') or None
    kernel = (_read(root, "proc/sys/kernel/osrelease") or "").strip() or None
    if kernel is None and Path(root) == ROOT:
        kernel = platform.release() or None
    return pretty, kernel


@dataclass(frozen=True)
class MachineFacts:
    """Everything ``read_machine`` found; each fact None (or empty) when it could not be read."""

    cpu: CpuFacts
    memory: MemoryFacts
    storage: StorageFacts
    network: tuple = ()
    accelerators: tuple = ()
    os_name: str | None = None
    kernel: str | None = None

    @property
    def operating_system(self) -> str | None:
        """e.g. ``Debian GNU/Linux 12 (bookworm) (kernel 6.1.0-18-amd64)``."""
        if self.os_name is None and self.kernel is None:
            return None
        return f"{self.os_name or 'Linux'}" + (f" (kernel {self.kernel})" if self.kernel else "")

    def summary(self) -> dict:
        """The run.json ``machine`` entry: cpu, sockets, cores, logical_cpus, mhz, memory_gib, os."""
        mem = self.memory.capacity_bytes
        return {"cpu": self.cpu.model, "sockets": self.cpu.sockets, "cores": self.cpu.cores,
                "logical_cpus": self.cpu.threads or os.cpu_count(), "mhz": self.cpu.max_mhz,
                "memory_gib": round(mem / 2**30, 1) if mem else None,
                "os": self.operating_system or platform.platform()}


def read_machine(root: Path = ROOT, use_tools: bool = True, storage_path: Path | str = ".") -> MachineFacts:
    """All machine facts (see ``MachineFacts``); ``use_tools=False`` reads only /proc and /sys."""
    os_name, kernel = read_os(root)
    return MachineFacts(cpu=read_cpu(root), memory=read_memory(root, use_tools),
                        storage=read_storage(root, storage_path), network=read_network(root),
                        accelerators=read_accelerators(root, use_tools), os_name=os_name, kernel=kernel)


def machine_summary() -> dict:
    """The short description stored in run.json (``MachineFacts.summary`` of this machine, no tools run)."""
    return read_machine(use_tools=False).summary()


# -- software --------------------------------------------------------------------------------------
def package_versions(packages: tuple[str, ...] = SOFTWARE_PACKAGES) -> dict:
    """``{"mlperf_bert": ..., "python": ..., <package>: <version>}`` for the installed ``packages``."""
    from mlperf_bert import __version__

    out = {"mlperf_bert": __version__, "python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


# -- load ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HostLoad:
    """How busy the host was just before a run.

    Attributes:
        loadavg: 1, 5 and 15 minute load averages (/proc/loadavg).
        cpus: logical CPUs online.
        others_cpu_share: share of all CPUs (0..1) that processes other than this one used during the
            ``interval_s`` sample (/proc/stat minus /proc/self/stat).
        interval_s: sampling interval, seconds.
    """

    loadavg: tuple = ()
    cpus: int | None = None
    others_cpu_share: float | None = None
    interval_s: float = 0.0

    @property
    def busy(self) -> bool:
        """Other processes used more than ``BUSY_CPU_SHARE`` of the CPUs."""
        return self.others_cpu_share is not None and self.others_cpu_share > BUSY_CPU_SHARE

    def text(self) -> str:
        """e.g. ``others used 63% of 2 CPUs, load average 3.20``."""
        share = "?" if self.others_cpu_share is None else f"{self.others_cpu_share * 100:.0f}%"
        load = f", load average {self.loadavg[0]:.2f}" if self.loadavg else ""
        return f"others used {share} of {self.cpus or '?'} CPUs{load}"

    def to_dict(self) -> dict:
        return {"loadavg": list(self.loadavg), "cpus": self.cpus, "others_cpu_share": self.others_cpu_share,
                "interval_s": self.interval_s, "busy": self.busy}

    @classmethod
    def from_dict(cls, d: dict | None) -> "HostLoad":
        """The inverse of ``to_dict`` (run.json ``host_load``); an empty dict gives an unknown load."""
        d = d or {}
        return cls(tuple(d.get("loadavg") or ()), d.get("cpus"), d.get("others_cpu_share"), d.get("interval_s", 0.0))


def _cpu_ticks(root: Path) -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from the first line of /proc/stat."""
    line = (_read(root, "proc/stat") or "").partition("\n")[0].split()
    if not line or line[0] != "cpu":
        return None
    vals = [int(v) for v in line[1:9] if v.isdigit()]  # user nice system idle iowait irq softirq steal
    if len(vals) < 5:
        return None
    total = sum(vals)
    return total - vals[3] - vals[4], total


def _own_ticks(root: Path) -> int | None:
    """utime + stime of this process (all its threads), jiffies."""
    text = _read(root, "proc/self/stat")
    if not text:
        return None
    fields = text.rpartition(")")[2].split()
    try:
        return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), after the comm
    except (IndexError, ValueError):
        return None


def sample_host_load(interval_s: float = 0.5, root: Path = ROOT, sleep: Callable[[float], None] = time.sleep
                     ) -> HostLoad:
    """Measure the host load over ``interval_s`` seconds (see ``HostLoad``); fields None where unreadable."""
    la = (_read(root, "proc/loadavg") or "").split()
    try:
        loadavg = tuple(float(x) for x in la[:3])
    except ValueError:
        loadavg = ()
    cpus = read_cpu(root).threads or (os.cpu_count() if Path(root) == ROOT else None)
    a, own_a = _cpu_ticks(root), _own_ticks(root)
    sleep(interval_s)
    b, own_b = _cpu_ticks(root), _own_ticks(root)
    share = None
    if a and b and b[1] > a[1]:
        own = (own_b - own_a) if own_a is not None and own_b is not None else 0
        share = min(1.0, max(0.0, (b[0] - a[0] - own) / (b[1] - a[1])))
    return HostLoad(loadavg=loadavg, cpus=cpus, others_cpu_share=share, interval_s=interval_s)


@dataclass
class QuietWait:
    """The outcome of ``wait_until_quiet``: the last sample, seconds waited, and whether it became quiet."""

    load: HostLoad
    waited_s: float
    quiet: bool
    samples: list = field(default_factory=list)


def wait_until_quiet(max_wait_s: float, *, sample: Callable[[], HostLoad] | None = None,
                     sleep: Callable[[float], None] = time.sleep, poll_s: float = 5.0) -> QuietWait:
    """Sample the load until the host is not ``busy`` or ``max_wait_s`` seconds passed (bounded wait)."""
    sample = sample or sample_host_load
    waited = 0.0
    load = sample()
    samples = [load]
    while load.busy and waited < max_wait_s:
        step = min(poll_s, max_wait_s - waited)
        sleep(step)
        waited += step + load.interval_s
        load = sample()
        samples.append(load)
    return QuietWait(load=load, waited_s=waited, quiet=not load.busy, samples=samples)


def size_text(nbytes: int | None, unit: str = "GB") -> str | None:
    """``nbytes`` as ``"252 GB"`` (10^9) or ``"23.4 GiB"`` (2^30); None stays None."""
    if nbytes is None:
        return None
    if unit == "GiB":
        return f"{nbytes / 2**30:.1f} GiB"
    value = nbytes / 1e9
    return f"{value:.0f} GB" if value >= 10 else f"{value:.1f} GB"
