"""Packets out of a capture file (pcap or pcapng, told apart by their magic bytes), parsed with dpkt.

Only what a flow needs is kept of a packet: time, addresses, ports, IP protocol, IP length and TCP flags. Packets that
are not IPv4 or IPv6 (ARP, spanning tree, ...) are skipped. A capture that ends in the middle of a record (a capture
cut short, a download stopped) is read up to the damage, with one warning saying how many packets were kept.
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from lamina.errors import LaminaError, where

log = logging.getLogger("lamina")

# The first four bytes of each format: classic pcap in either byte order, micro- or nanosecond time stamps; pcapng's
# Section Header Block type.
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
CAPTURE_EXTENSIONS = (".pcap", ".pcapng", ".cap", ".dmp")
PROTOCOLS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 47: "gre"}
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}


@dataclass(frozen=True, slots=True)
class Packet:
    time: float
    src: str
    dst: str
    sport: int
    dport: int
    protocol: int
    length: int  # the IP packet's length as sent (header and payload), whatever the capture kept of it
    flags: int  # TCP flags; 0 for other protocols


def capture_format(path: Path) -> str | None:
    """'pcap' or 'pcapng' from the file's first bytes, else None."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic in _PCAP_MAGIC:
        return "pcap"
    return "pcapng" if magic == _PCAPNG_MAGIC else None


def read_packets(path: Path, name: str) -> Iterator[Packet]:
    """The IP packets of a capture, in file order; a damaged tail ends the reading with one warning."""
    import dpkt

    kind = capture_format(path)
    if kind is None:
        raise LaminaError(where(name, "not a packet capture (its first bytes are neither pcap's nor pcapng's magic "
                                "number); export it as pcap or pcapng, or give a table file"))
    with path.open("rb") as handle:
        records = _pcap_records(handle, name) if kind == "pcap" else _pcapng_records(handle, name)
        linktype = next(records)
        decode = _decoder(int(linktype), name)  # type: ignore[arg-type]
        for time, frame in records:  # type: ignore[misc]
            try:
                packet = decode(float(time), frame)  # type: ignore[arg-type]
            except (dpkt.UnpackError, struct.error, ValueError, IndexError):
                packet = None  # a packet the capture cut short (snap length) or a malformed one: not a flow's
            if packet is not None:
                yield packet


def _pcap_records(handle: BinaryIO, name: str) -> Iterator[object]:
    """Classic pcap: first the link type, then (time, frame) per record. Read here, not by dpkt's reader, so a
    record cut short is seen (dpkt hands back the short frame without a word)."""
    header = handle.read(24)
    if len(header) < 24:
        raise LaminaError(where(name, "the pcap file header is cut short (under 24 bytes); re-capture or re-export "
                                "the file"))
    order, unit = _PCAP_MAGIC[header[:4]]
    yield struct.unpack(order + "I", header[20:24])[0]
    count = 0
    while True:
        record = handle.read(16)
        if not record:
            return
        if len(record) < 16:
            break
        seconds, fraction, caplen, _ = struct.unpack(order + "IIII", record)
        frame = handle.read(caplen)
        if len(frame) < caplen:
            break
        count += 1
        yield seconds + fraction * unit, frame
    _warn_truncated(name, count)


def _pcapng_records(handle: BinaryIO, name: str) -> Iterator[object]:
    import dpkt

    try:
        reader = dpkt.pcapng.Reader(handle)
    except (ValueError, dpkt.UnpackError, struct.error) as error:
        raise LaminaError(where(name, f"not a readable pcapng file ({' '.join(str(error).split())[:120]}); "
                                "re-capture or re-export it")) from None
    yield reader.datalink()
    count = 0
    try:
        for time, frame in reader:
            count += 1
            yield time, frame
    except (dpkt.NeedData, dpkt.UnpackError, struct.error, ValueError):
        _warn_truncated(name, count)


def _warn_truncated(name: str, count: int) -> None:
    log.warning("%s: the capture is cut short after %d packets (a damaged or unfinished last record); read the "
                "packets before it", name, count)


def _decoder(linktype: int, name: str) -> Callable[[float, bytes], Packet | None]:
    """How to get from a frame of this link type to its IP packet."""
    import dpkt

    layers: dict[int, Callable[[bytes], object]] = {
        1: dpkt.ethernet.Ethernet, 113: dpkt.sll.SLL, 276: dpkt.sll2.SLL2, 0: dpkt.loopback.Loopback,
        108: dpkt.loopback.Loopback, 101: _raw_ip, 12: _raw_ip, 14: _raw_ip, 228: dpkt.ip.IP, 229: dpkt.ip6.IP6,
    }
    if linktype not in layers:
        raise LaminaError(where(name, f"link type {linktype} is not read (known: Ethernet, Linux cooked, loopback, "
                                "raw IP); convert the capture with editcap or tcpdump"))
    layer = layers[linktype]

    def decode(time: float, frame: bytes) -> Packet | None:
        ip = layer(frame)
        while ip is not None and not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            ip = getattr(ip, "data", None)
            if isinstance(ip, (bytes, bytearray)):
                return None
        return None if ip is None else _packet(time, ip)

    return decode


def _raw_ip(frame: bytes) -> object:
    import dpkt

    return dpkt.ip6.IP6(frame) if frame[:1] and frame[0] >> 4 == 6 else dpkt.ip.IP(frame)


def _packet(time: float, ip: object) -> Packet:
    import dpkt

    if isinstance(ip, dpkt.ip.IP):
        family, protocol, length = socket.AF_INET, ip.p, ip.len
    else:
        family, protocol, length = socket.AF_INET6, ip.nxt, ip.plen + 40  # type: ignore[attr-defined]
    body = ip.data  # type: ignore[attr-defined]
    sport = dport = flags = 0
    if isinstance(body, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        sport, dport = body.sport, body.dport
        flags = body.flags if isinstance(body, dpkt.tcp.TCP) else 0
    src = socket.inet_ntop(family, ip.src)  # type: ignore[attr-defined]
    dst = socket.inet_ntop(family, ip.dst)  # type: ignore[attr-defined]
    return Packet(time, src, dst, int(sport), int(dport), int(protocol), int(length), int(flags))
