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
    """The statistics of every flow in numpy (bincounts and reductions over the packets sorted by flow and time): a
    pandas group-by per statistic cost more than reading the capture on small files."""
    order = np.lexsort((packets["time"].to_numpy(), packets["flow"].to_numpy()))
    flow, time, length, flags = (packets[c].to_numpy()[order] for c in ("flow", "time", "length", "flags"))
    fwd = packets["fwd"].to_numpy(dtype=bool)[order]
    n = int(flow.max()) + 1
    starts = np.searchsorted(flow, np.arange(n))
    count = np.bincount(flow, minlength=n).astype(np.float64)
    size = length.astype(np.float64)

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(flow, weights=weights, minlength=n)

    def mean_std(values: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = total(where.astype(np.float64))
        mean = total(np.where(where, values, 0.0)) / np.maximum(m, 1)
        square = total(np.where(where, values**2, 0.0)) / np.maximum(m, 1)
        return mean, np.sqrt(np.maximum(square - mean**2, 0.0))

    gap = np.r_[0.0, np.diff(time)]
    inside = np.r_[False, flow[1:] == flow[:-1]]  # a packet after another of its flow: it has an inter-arrival time
    iat_mean, iat_std = mean_std(gap, inside)
    has_gap = count > 1
    keys = list(zip(*packets.attrs["keys"]))
    columns: dict[str, object] = {name: list(values) for name, values in zip(KEY, keys)}
    columns["protocol"] = [PROTOCOLS.get(p, str(p)) for p in keys[4]]
    length_mean, length_std = mean_std(size, np.ones_like(fwd))
    stats = {
        "start": time[starts], "duration": np.maximum.reduceat(time, starts) - time[starts],
        "packets_fwd": total(fwd.astype(np.float64)), "packets_bwd": total((~fwd).astype(np.float64)),
        "bytes_fwd": total(np.where(fwd, size, 0.0)), "bytes_bwd": total(np.where(fwd, 0.0, size)),
        "length_mean": length_mean, "length_std": length_std,
        "length_min": np.minimum.reduceat(size, starts), "length_max": np.maximum.reduceat(size, starts),
        "length_fwd_mean": mean_std(size, fwd)[0], "length_bwd_mean": mean_std(size, ~fwd)[0],
        # A one-packet flow has no inter-arrival time: 0, not missing.
        "iat_mean": iat_mean, "iat_std": iat_std,
        "iat_min": np.where(has_gap, np.minimum.reduceat(np.where(inside, gap, np.inf), starts), 0.0),
        "iat_max": np.where(has_gap, np.maximum.reduceat(np.where(inside, gap, 0.0), starts), 0.0),
    }
    stats.update({flag: total(((flags & bit) > 0).astype(np.float64)) for flag, bit in TCP_FLAGS.items()})
    for column in ("packets_fwd", "packets_bwd", "bytes_fwd", "bytes_bwd", "length_min", "length_max", *TCP_FLAGS):
        stats[column] = stats[column].astype(np.int64)
    signed = np.where(fwd, size, -size)
    first = (np.arange(len(flow)) - starts[flow]) < sizes
    bounds = np.cumsum(np.minimum(count, sizes))[:-1].astype(int)
    columns.update(stats, sizes=[part.tolist() for part in np.split(signed[first], bounds)])
    frame = pd.DataFrame(columns)  # built at once: pandas inserts column by column at a cost per column
    frame[["sport", "dport"]] = frame[["sport", "dport"]].astype(np.int64)
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
