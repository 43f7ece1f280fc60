"""Small packet captures the tests write with dpkt: TCP and UDP conversations with known shapes."""

from __future__ import annotations

import socket
from pathlib import Path

import dpkt

SYN, ACK, FIN, PSH = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN, dpkt.tcp.TH_PUSH


def frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"", flags: int | None = None) -> bytes:
    """An Ethernet frame holding one IPv4 TCP segment (``flags`` given) or UDP datagram."""
    body: dpkt.Packet
    if flags is None:
        body, protocol = dpkt.udp.UDP(sport=sport, dport=dport, data=payload), 17
        body.ulen = len(body)
    else:
        body, protocol = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, data=payload), 6
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=protocol, data=body)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def web_session(client: str, port: int, start: float, request: int = 300, reply: int = 1200) -> list[tuple[float, bytes]]:
    """A TCP handshake, a request, a reply and a close, client → 10.0.0.80:80."""
    server = "10.0.0.80"
    out = [(SYN, b"", True), (SYN | ACK, b"", False), (ACK, b"", True), (PSH | ACK, b"G" * request, True),
           (PSH | ACK, b"H" * reply, False), (FIN | ACK, b"", True), (FIN | ACK, b"", False), (ACK, b"", True)]
    return [(start + 0.01 * i, frame(client, server, port, 80, data, flags) if up else
             frame(server, client, 80, port, data, flags)) for i, (flags, data, up) in enumerate(out)]


def dns_query(client: str, port: int, start: float) -> list[tuple[float, bytes]]:
    return [(start, frame(client, "10.0.0.53", port, 53, b"q" * 40)),
            (start + 0.002, frame("10.0.0.53", client, 53, port, b"r" * 120))]


def write_capture(path: Path, packets: list[tuple[float, bytes]], pcapng: bool = False) -> Path:
    writer_type = dpkt.pcapng.Writer if pcapng else dpkt.pcap.Writer
    with path.open("wb") as handle:
        writer = writer_type(handle)
        for time, data in sorted(packets, key=lambda p: p[0]):
            writer.writepkt(data, ts=time)
    return path


def traffic(sessions: int = 6) -> list[tuple[float, bytes]]:
    """``sessions`` web sessions and as many DNS queries, from different clients, a second apart."""
    packets: list[tuple[float, bytes]] = []
    for i in range(sessions):
        packets += web_session(f"10.0.1.{i + 1}", 40000 + i, 1000.0 + i, request=200 + 37 * i)
        packets += dns_query(f"10.0.1.{i + 1}", 50000 + i, 1000.5 + i)
    return packets
