"""machine.py on a fake /proc + /sys tree, and the system description built from its facts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlperf_bert import machine
from mlperf_bert.machine import HostLoad, read_machine, sample_host_load, wait_until_quiet
from mlperf_bert.submission.system import MEANINGFUL_FIELDS, SYSTEM_FIELDS, missing_fields, system_description

CPUINFO = "".join(
    f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6430\n"
    f"physical id\t: {i // 4}\ncpu cores\t: 4\ncpu MHz\t\t: 2100.000\nflags\t\t: fpu avx2 avx512f amx_bf16\n\n"
    for i in range(8))
DMIDECODE = """Handle 0x0040, DMI type 17, 92 bytes
Memory Device
\tSize: 32 GB
\tType: DDR5
\tConfigured Memory Speed: 4400 MT/s

Handle 0x0041, DMI type 17, 92 bytes
Memory Device
\tSize: No Module Installed

Handle 0x0042, DMI type 17, 92 bytes
Memory Device
\tSize: 32 GB
\tType: DDR5
\tConfigured Memory Speed: 4400 MT/s
"""


def _w(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


@pytest.fixture
def fake_root(tmp_path):
    r = tmp_path / "root"
    _w(r, "proc/cpuinfo", CPUINFO)
    _w(r, "proc/meminfo", "MemTotal:       65536000 kB\nMemFree: 1 kB\n")
    _w(r, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3400000\n")
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K"),
                                             (3, "Unified", "61440K")]):
        for name, val in (("level", level), ("type", kind), ("size", size)):
            _w(r, f"sys/devices/system/cpu/cpu0/cache/index{i}/{name}", f"{val}\n")
    disk = r / "sys/devices/pci0000:00/nvme/nvme0/block/nvme0n1"
    _w(r, "sys/devices/pci0000:00/nvme/nvme0/block/nvme0n1/size", "3907029168\n")
    _w(r, "sys/devices/pci0000:00/nvme/nvme0/block/nvme0n1/queue/rotational", "0\n")
    _w(r, "sys/devices/pci0000:00/nvme/nvme0/block/nvme0n1/nvme0n1p2/partition", "2\n")
    (r / "sys/dev/block").mkdir(parents=True)
    os.symlink(disk / "nvme0n1p2", r / "sys/dev/block/259:2")
    drv = r / "sys/bus/pci/drivers/ixgbe"
    drv.mkdir(parents=True)
    _w(r, "sys/devices/pci0000:00/net0/uevent", "")
    os.symlink(drv, r / "sys/devices/pci0000:00/net0/driver")
    (r / "sys/class/net/eth0").mkdir(parents=True)
    os.symlink(r / "sys/devices/pci0000:00/net0", r / "sys/class/net/eth0/device")
    _w(r, "sys/class/net/eth0/speed", "10000\n")
    _w(r, "sys/class/net/lo/speed", "-1\n")  # virtual: no device link
    _w(r, "proc/driver/nvidia/gpus/0000:17:00.0/information", "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ: 1\n")
    _w(r, "etc/os-release", 'NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    _w(r, "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
    return r


def test_facts_from_proc_and_sys(fake_root):
    f = read_machine(fake_root, use_tools=False, storage_path=fake_root)
    cpu = f.cpu
    assert (cpu.model, cpu.vendor, cpu.sockets, cpu.cores_per_socket, cpu.cores, cpu.threads, cpu.max_mhz) == \
        ("Intel(R) Xeon(R) Gold 6430", "GenuineIntel", 2, 4, 8, 8, 3400.0)
    assert cpu.caches_text() == "L1d 48 KiB, L1i 32 KiB, L2 2 MiB, L3 60 MiB"
    assert {"avx512f", "amx_bf16"} <= cpu.flags and not cpu.hypervisor
    assert f.memory.capacity_bytes == 65536000 * 1024 and f.memory.configuration is None
    assert f.storage.device is None  # storage_path is on the real disk; read the fake device by number:
    s = machine.read_storage(fake_root, devno="259:2")
    assert (s.device, s.capacity_bytes, s.kind) == ("nvme0n1", 3907029168 * 512, "NVMe SSD")
    assert [c.text() for c in f.network] == ["eth0 (ixgbe 10 Gb/s)"]
    assert [a.model for a in f.accelerators] == ["NVIDIA H100 80GB HBM3"]
    assert f.operating_system == "Debian GNU/Linux 12 (bookworm) (kernel 6.1.0-18-amd64)"
    assert f.summary()["memory_gib"] == 62.5 and f.summary()["cores"] == 8


def test_unknown_facts_are_none(tmp_path):
    f = read_machine(tmp_path, use_tools=False, storage_path=tmp_path)
    assert (f.cpu.model, f.cpu.sockets, f.cpu.max_mhz, f.cpu.caches_text()) == (None, None, None, None)
    assert f.memory.capacity_bytes is None and f.network == () and f.accelerators == ()
    assert f.operating_system is None and machine.cpu_flags(tmp_path) == frozenset()


def test_dimm_configuration_from_dmidecode():
    assert machine._dimm_configuration(DMIDECODE) == "2x 32 GB DDR5 4400 MT/s"
    assert machine._dimm_configuration("# dmidecode 3.4\n/dev/mem: No such file or directory\n") is None


def test_host_load_counts_other_processes_only(fake_root):
    _w(fake_root, "proc/loadavg", "3.20 2.10 1.00 5/300 123\n")
    # /proc/stat: user nice system idle iowait ...; /proc/self/stat: utime (14) and stime (15)
    _w(fake_root, "proc/stat", "cpu  1000 0 0 1000 0 0 0 0 0 0\n")
    _w(fake_root, "proc/self/stat", "42 (python) S " + " ".join(["0"] * 10) + " 100 0 0 0\n")

    def sleep(_):  # 400 ticks pass: 300 busy, of which 100 are ours
        _w(fake_root, "proc/stat", "cpu  1300 0 0 1100 0 0 0 0 0 0\n")
        _w(fake_root, "proc/self/stat", "42 (python) S " + " ".join(["0"] * 10) + " 150 50 0 0\n")

    load = sample_host_load(0.5, root=fake_root, sleep=sleep)
    assert load.loadavg == (3.2, 2.1, 1.0) and load.cpus == 8
    assert load.others_cpu_share == pytest.approx(0.5) and load.busy
    assert load.text() == "others used 50% of 8 CPUs, load average 3.20"
    assert HostLoad.from_dict(load.to_dict()) == load


def test_wait_until_quiet_is_bounded():
    busy, quiet = HostLoad((4.0,), 2, 0.9, 0.5), HostLoad((0.1,), 2, 0.01, 0.5)
    slept = []
    w = wait_until_quiet(12.0, sample=iter([busy, busy, busy, busy]).__next__, sleep=slept.append)
    assert slept == [5.0, 5.0, 1.0] and not w.quiet and len(w.samples) == 4  # 0.5 s per sample counts too
    w = wait_until_quiet(60.0, sample=iter([busy, quiet]).__next__, sleep=slept.append)
    assert w.quiet and w.waited_s == 5.5


def test_system_description_cpu_only_and_with_gpu(fake_root):
    f = read_machine(fake_root, use_tools=False, storage_path=fake_root)
    versions = {"python": "3.11.7", "mlperf_bert": "0.1.0", "mlcommons-loadgen": "6.0.17", "onnxruntime": "1.20.1"}
    d = system_description(facts=f, submitter="acme", division="closed", system_name="box",
                           framework="ONNX Runtime 1.20.1", versions=versions, system_type="edge", layout="current")
    assert tuple(d) == SYSTEM_FIELDS["current"]
    assert (d["host_processors_per_node"], d["host_processor_core_count"], d["host_processor_frequency"]) == \
        (2, 4, "3400 MHz")
    assert d["accelerators_per_node"] == "0" and d["accelerator_model_name"] == "N/A"  # CPU runs: GPU not used
    assert d["framework"] == "ONNX Runtime 1.20.1"
    assert d["other_software_stack"] == "Python 3.11.7, mlperf-bert 0.1.0, MLPerf LoadGen 6.0.17, onnxruntime 1.20.1"
    assert d["host_network_card_count"] == "1" and d["host_networking"] == "eth0 (ixgbe 10 Gb/s)"
    # what no file tells: the DIMM layout, the storage of this fake root, cooling; system_type_detail may be empty
    assert missing_fields(d, "current") == [("host_storage_capacity", True), ("host_storage_type", True),
                                            ("host_memory_configuration", True),
                                            ("host_processor_interconnect", False), ("cooling", True),
                                            ("system_type_detail", False)]
    full = system_description(facts=f, submitter="acme", division="closed", system_name="box",
                              framework="ONNX Runtime 1.20.1", versions=versions, system_type="edge", layout="current",
                              overrides={"host_storage_capacity": "2 TB", "host_storage_type": "NVMe SSD",
                                         "host_memory_configuration": "16x 32 GB", "cooling": "air"})
    assert all(full[k] for k in MEANINGFUL_FIELDS)
    gpu = system_description(facts=f, submitter="acme", division="closed", system_name="box",
                             framework="PyTorch 2.13.0", versions={}, system_type="edge", layout="v1.0", accelerator_used=True)
    assert (gpu["accelerators_per_node"], gpu["accelerator_model_name"]) == (1, "NVIDIA H100 80GB HBM3")
    assert tuple(gpu) == SYSTEM_FIELDS["v1.0"] and "host_network_card_count" not in gpu
    # v1.0 needs the keys only: empty values are not failures there
    assert all(not fails for _, fails in missing_fields(gpu, "v1.0"))
