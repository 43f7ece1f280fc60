"""nDPI's test captures as labelled flows, for benchmarks/threats.py: Debian's ndpi orig tarball fetched with
``apt-get source --download-only`` from a private sources list (the machine's apt config untouched) into
~/.cache/lamina/ndpi; each capture read by ``lamina.data.flows``, nDPI's per-flow ground truth
(``tests/result/*.pcap.out``, its master protocol) beside it as ``<capture>.labels.csv``."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pandas as pd

CACHE = Path(os.environ.get("LAMINA_CACHE") or Path.home() / ".cache" / "lamina") / "ndpi"
ARCHIVE = "http://deb.debian.org/debian"  # the archive this machine's apt already uses (bookworm: ndpi 4.2)
ATTACKS = {"WebattackRCE": "web RCE", "WebattackSQLinj": "web SQL injection", "WebattackXSS": "web XSS",
           "synscan": "SYN scan", "log4j-webapp-exploit": "log4j", "trickbot": "trickbot",
           "dns-tunnel-iodine": "DNS tunnel", "dns_exfiltration": "DNS exfiltration", "malware": "malware"}
FLOW = re.compile(r"^\s*\d+\s+(\w+)\s+(\[[^\]]+\]|[^ :]+):(\d+)\s+<?->\s+(\[[^\]]+\]|[^ :]+):(\d+)\s+\[proto: [\d.]+/([^\]]+)\]")


def ndpi_tests() -> Path:
    """nDPI's tests folder (pcap, result, dga) from the ndpi orig tarball, fetched once into the cache."""
    tests = CACHE / "tests"
    if tests.is_dir():
        return tests
    apt = CACHE / "apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    sources = apt / "sources.list"
    sources.write_text(f"deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {ARCHIVE} bookworm main\n")
    options = [f"-o=Dir::Etc::SourceList={sources}", "-o=Dir::Etc::SourceParts=/dev/null",
               f"-o=Dir::State::Lists={apt / 'lists'}", f"-o=Dir::Cache={apt / 'cache'}"]
    subprocess.run(["apt-get", *options, "update", "-qq"], check=True)
    subprocess.run(["apt-get", *options, "source", "--download-only", "-qq", "ndpi"], cwd=CACHE, check=False)
    tarball = next(CACHE.glob("ndpi_*.orig.tar.gz"))
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if re.search(r"/tests/(pcap|result|dga)/", m.name) and m.isfile()]
        for member in members:
            member.name = "tests/" + member.name.split("/tests/", 1)[1]
        archive.extractall(CACHE, members=members, filter="data")
    return tests


def ndpi_labels(out: Path) -> pd.DataFrame:
    """nDPI's flows of one capture: 5-tuple and master protocol (``HTTP`` of ``HTTP.AmazonAWS``)."""
    rows = []
    for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
        match = FLOW.match(line)
        if match:
            protocol, src, sport, dst, dport, proto = match.groups()
            rows.append({"src": src.strip("[]"), "sport": int(sport), "dst": dst.strip("[]"), "dport": int(dport),
                         "protocol": protocol.lower(), "label": proto.split(".")[0]})
    return pd.DataFrame(rows, columns=["src", "sport", "dst", "dport", "protocol", "label"])


def traffic_flows(tests: Path, work: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every capture's flows with nDPI's label (a capture with a ``.labels.csv`` beside it), and the extractor's
    speed."""
    from lamina.data.flows import read_flows
    from lamina.errors import LaminaError

    frames, packets, flows, seconds, failed = [], 0, 0, 0.0, []
    for capture in sorted(tests.glob("pcap/*.pcap*")):
        out = tests / "result" / f"{capture.name}.out"
        if not out.is_file():
            continue
        local = work / capture.name
        if not local.exists():
            local.symlink_to(capture)
        ndpi_labels(out).drop_duplicates(["src", "sport", "dst", "dport", "protocol"]).to_csv(
            f"{local}.labels.csv", index=False)
        started = time.perf_counter()
        try:
            frame = read_flows(local)
        except LaminaError as error:
            failed.append(str(error))
            continue
        seconds += time.perf_counter() - started
        packets += int(frame["packets_fwd"].sum() + frame["packets_bwd"].sum())
        flows += len(frame)
        frames.append(frame.assign(capture=capture.name.split(".")[0]))
    speed = {"captures": len(frames), "unreadable": len(failed), "flows": flows, "packets": packets,
             "seconds": seconds, "flows_per_second": flows / seconds, "packets_per_second": packets / seconds}
    print(f"extractor: {speed}; unreadable: {failed[:3]}", flush=True)
    return pd.concat(frames, ignore_index=True), speed


FEATURES = ["protocol", "duration", "packets_fwd", "packets_bwd", "bytes_fwd", "bytes_bwd", "length_mean",
            "length_std", "length_min", "length_max", "length_fwd_mean", "length_bwd_mean", "iat_mean", "iat_std",
            "iat_min", "iat_max", "fin", "syn", "rst", "psh", "ack", "urg", "sizes"]


def flow_inputs(normalization: str = "zscore") -> list[dict]:
    """The flow table's inputs; ``normalization`` of the number columns (log: their signed log, z-scored)."""
    kinds = {"protocol": "category", "sizes": "timeseries"}
    options = {"sizes": {"missing": "fill"}, **{c: {"normalization": normalization} for c in FEATURES
                                                  if c not in kinds and normalization != "zscore"}}
    return [{"name": c, "type": kinds.get(c, "number"), **({"options": options[c]} if c in options else {})}
            for c in FEATURES]


def cached_flows(work: Path) -> tuple[pd.DataFrame, dict[str, float] | None]:
    """The labelled flows of every capture, read once into ``work/flows.parquet`` (the extractor's speed is measured
    on the run that reads them)."""
    path = work / "flows.parquet"
    if path.is_file():
        return pd.read_parquet(path), None
    captures = work / "captures"
    captures.mkdir(exist_ok=True)
    flows, speed = traffic_flows(ndpi_tests(), captures)
    flows.to_parquet(path, index=False)
    return flows, speed


