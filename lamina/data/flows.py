"""A capture's packets grouped into bidirectional flows, one row per flow.

A flow is the packets of one 5-tuple (protocol and the two address:port ends, either way round) with no gap longer
than the idle timeout; a longer gap starts a new flow. The end that sent the first packet is the client: its packets
are "fwd", the others "bwd". Each row has the flow's key, start and duration, packets and bytes per direction,
inter-arrival and packet-length statistics, TCP flag counts, and ``sizes``: the first packets' lengths, positive from
the client and negative from the server, a series the timeseries input reads as the flow's shape.

Labels: a file ``<capture>.labels.csv`` beside the capture, with columns src, sport, dst, dport, protocol and any
others (``label``...), adds those columns to the flows of each 5-tuple (either way round).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lamina.data.pcap import PROTOCOLS, TCP_FLAGS, read_packets
from lamina.errors import LaminaError, where

KEY = ["src", "sport", "dst", "dport", "protocol"]
IDLE_TIMEOUT = 120.0  # seconds, as CICFlowMeter's flows (CIC-IDS2017's features)
SIZES = 32  # packets of each flow in its ``sizes`` series
LABELS_SUFFIX = ".labels.csv"


@dataclass(frozen=True)
class FlowOptions:
    idle_timeout: float = IDLE_TIMEOUT
    sizes: int = SIZES


def read_flows(source: str | os.PathLike, options: FlowOptions = FlowOptions()) -> pd.DataFrame:
    """The flow table of a pcap or pcapng file, with the labels of its ``.labels.csv`` when there is one."""
    name = os.fspath(source)
    packets = _packet_table(Path(name), name, options.idle_timeout)
    if packets.empty:
        raise LaminaError(where(name, "holds no IPv4 or IPv6 packets, so no flows; check it is the right capture"))
    flows = _flow_rows(packets, options.sizes)
    labels = Path(name + LABELS_SUFFIX)
    return _join_labels(flows, labels) if labels.is_file() else flows


def _packet_table(path: Path, name: str, idle_timeout: float) -> pd.DataFrame:
    """One row per packet with its flow number and direction (1 from the client)."""
    open_flows: dict[tuple, tuple[int, float, tuple[str, int]]] = {}
    keys: list[tuple] = []
    columns: dict[str, list] = {"flow": [], "fwd": [], "time": [], "length": [], "flags": []}
    for packet in read_packets(path, name):
        a, b = (packet.src, packet.sport), (packet.dst, packet.dport)
        key = (packet.protocol, *sorted((a, b)))
        flow = open_flows.get(key)
        if flow is None or packet.time - flow[1] > idle_timeout:
            flow = (len(keys), packet.time, a)
            keys.append((packet.src, packet.sport, packet.dst, packet.dport, packet.protocol))
        number, _, client = flow
        open_flows[key] = (number, packet.time, client)
        for column, value in zip(columns, (number, a == client, packet.time, packet.length, packet.flags)):
            columns[column].append(value)
    table = pd.DataFrame(columns)
    table.attrs["keys"] = keys
    return table


def _flow_rows(packets: pd.DataFrame, sizes: int) -> pd.DataFrame:
    packets = packets.sort_values(["flow", "time"], kind="stable")
    groups = packets.groupby("flow", sort=True)
    length = groups["length"]
    gap = packets["time"].diff().where(packets["flow"].eq(packets["flow"].shift()))
    gaps = gap.groupby(packets["flow"])
    fwd = packets["fwd"].astype(bool)
    keys = pd.DataFrame(packets.attrs["keys"], columns=KEY)
    frame = keys.iloc[groups.size().index].reset_index(drop=True)
    frame["protocol"] = [PROTOCOLS.get(p, str(p)) for p in frame["protocol"]]
    start = groups["time"].min()
    stats = {
        "start": start, "duration": groups["time"].max() - start,
        "packets_fwd": fwd.groupby(packets["flow"]).sum(), "packets_bwd": (~fwd).groupby(packets["flow"]).sum(),
        "bytes_fwd": packets["length"].where(fwd, 0).groupby(packets["flow"]).sum(),
        "bytes_bwd": packets["length"].where(~fwd, 0).groupby(packets["flow"]).sum(),
        "length_mean": length.mean(), "length_std": length.std(ddof=0), "length_min": length.min(),
        "length_max": length.max(),
        "length_fwd_mean": packets["length"].where(fwd).groupby(packets["flow"]).mean(),
        "length_bwd_mean": packets["length"].where(~fwd).groupby(packets["flow"]).mean(),
        "iat_mean": gaps.mean(), "iat_std": gaps.std(ddof=0), "iat_min": gaps.min(), "iat_max": gaps.max(),
    }
    for flag, bit in TCP_FLAGS.items():
        stats[flag] = (packets["flags"] & bit).gt(0).groupby(packets["flow"]).sum()
    for column, values in stats.items():
        # A one-packet flow has no inter-arrival time, and a one-way flow no bwd length: 0, not missing.
        frame[column] = values.fillna(0).to_numpy()
    for column in ("packets_fwd", "packets_bwd", "bytes_fwd", "bytes_bwd", *TCP_FLAGS):
        frame[column] = frame[column].astype(np.int64)
    signed = packets["length"].where(fwd, -packets["length"])
    first = signed[groups.cumcount() < sizes].groupby(packets["flow"]).agg(list)
    frame["sizes"] = [[float(v) for v in row] for row in first]
    return frame


def _join_labels(flows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Add the label file's columns to the flows of its 5-tuples, matched either way round."""
    labels = pd.read_csv(path, dtype={"src": str, "dst": str, "protocol": str})
    missing = [c for c in KEY if c not in labels.columns]
    if missing:
        raise LaminaError(where(str(path), f"has no column {missing[0]!r}; a label file keys each flow by "
                                f"{', '.join(KEY)}"))
    extra = [c for c in labels.columns if c not in KEY]
    clash = [c for c in extra if c in flows.columns]
    if clash or not extra:
        why = f"column {clash[0]!r} is a flow feature; rename it" if clash else "has only key columns; add a label"
        raise LaminaError(where(str(path), why))
    labels["protocol"] = labels["protocol"].str.lower()
    labels[["sport", "dport"]] = labels[["sport", "dport"]].astype(np.int64)
    both = pd.concat([labels, labels.rename(columns={"src": "dst", "dst": "src", "sport": "dport",
                                                     "dport": "sport"})], ignore_index=True)
    both = both.drop_duplicates(subset=KEY, keep="first")
    return flows.merge(both, on=KEY, how="left", validate="many_to_one")


def write_flows(capture: Path, output: Path, idle_timeout: float = IDLE_TIMEOUT, sizes: int = SIZES) -> str:
    """``lamina flows``: the flow table of ``capture`` (an existing file) written to ``output``; returns the line to
    print."""
    from lamina.data.write import check_output_file, write_table

    check_output_file(output)
    flows = read_flows(capture, FlowOptions(idle_timeout=idle_timeout, sizes=sizes))
    write_table(flows, output)
    packets = int(flows["packets_fwd"].sum() + flows["packets_bwd"].sum())
    return f"wrote {len(flows)} flows ({packets} packets) to {output}"
