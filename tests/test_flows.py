"""Packet captures as a data source: flows out of pcap and pcapng files the tests write with dpkt."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from conftest import assert_ok, assert_user_error, edit_config, read_yaml, run_cli
from lamina.data.flows import FlowOptions, read_flows
from lamina.data.read import read_table
from lamina.errors import LaminaError
from pcap_toys import dns_query, traffic, web_session, write_capture


def test_a_web_session_is_one_flow_with_its_directions_and_flags(tmp_path: Path) -> None:
    flows = read_table(write_capture(tmp_path / "web.pcap", web_session("10.0.1.7", 40007, 5.0)))
    assert len(flows) == 1
    flow = flows.iloc[0]
    assert (flow["src"], flow["sport"], flow["dst"], flow["dport"], flow["protocol"]) == ("10.0.1.7", 40007,
                                                                                         "10.0.0.80", 80, "tcp")
    assert (flow["packets_fwd"], flow["packets_bwd"]) == (5, 3)
    # 40-byte headers, a 300-byte request from the client and a 1200-byte reply from the server
    assert (flow["bytes_fwd"], flow["bytes_bwd"]) == (5 * 40 + 300, 3 * 40 + 1200)
    assert (flow["syn"], flow["fin"], flow["psh"], flow["ack"], flow["rst"]) == (2, 2, 2, 7, 0)
    assert flow["duration"] == pytest.approx(0.07)
    assert flow["iat_mean"] == pytest.approx(0.01) and flow["iat_max"] == pytest.approx(0.01)
    assert flow["length_max"] == 1240 and flow["length_min"] == 40
    assert flow["sizes"] == [40, -40, 40, 340, -1240, 40, -40, 40]


def test_pcapng_reads_as_pcap_and_magic_bytes_not_the_name_decide(tmp_path: Path) -> None:
    packets = traffic(3)
    classic = read_table(write_capture(tmp_path / "a.pcap", packets))
    nextgen = read_table(write_capture(tmp_path / "b.pcapng", packets, pcapng=True))
    disguised = read_table(write_capture(tmp_path / "c.csv", packets))  # a capture, whatever its name says
    pd.testing.assert_frame_equal(classic, nextgen)
    pd.testing.assert_frame_equal(classic, disguised)
    assert sorted(classic["protocol"]) == ["tcp"] * 3 + ["udp"] * 3


def test_idle_timeout_splits_a_5_tuple_and_sizes_are_capped(tmp_path: Path) -> None:
    packets = dns_query("10.0.1.1", 5353, 10.0) + dns_query("10.0.1.1", 5353, 500.0) + dns_query("10.0.1.1", 5353, 560.0)
    path = write_capture(tmp_path / "dns.pcap", packets)
    flows = read_flows(path)  # 120 s idle timeout: the query at 500 s starts a new flow, the one at 560 s does not
    assert flows["packets_fwd"].tolist() == [1, 2] and flows["start"].tolist() == [10.0, 500.0]
    short = read_flows(path, FlowOptions(idle_timeout=30.0, sizes=1))
    assert len(short) == 3 and all(len(s) == 1 for s in short["sizes"])


def test_a_truncated_capture_is_read_up_to_the_damage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    whole = write_capture(tmp_path / "whole.pcap", traffic(3)).read_bytes()
    for suffix, data in ((".pcap", whole[:-30]), (".pcapng", None)):
        if data is None:
            data = write_capture(tmp_path / "whole.pcapng", traffic(3), pcapng=True).read_bytes()[:-30]
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lamina"):
            flows = read_table(cut)
        assert "cut short after 29 packets" in caplog.text  # 3 × (8 + 2) packets, the last one damaged
        assert int(flows["packets_fwd"].sum() + flows["packets_bwd"].sum()) == 29


def test_a_foreign_file_named_pcap_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "fake.pcap"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(LaminaError, match="fake.pcap: not a packet capture") as error:
        read_table(fake)
    assert "\n" not in str(error.value)
    header_only = write_capture(tmp_path / "header.pcap", [])
    with pytest.raises(LaminaError, match="no IPv4 or IPv6 packets"):
        read_table(header_only)


def test_labels_beside_the_capture_join_either_way_round(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "mixed.pcap", traffic(2))
    # one label written server → client, the other client → server
    Path(f"{path}.labels.csv").write_text("src,sport,dst,dport,protocol,label\n"
                                          "10.0.0.80,80,10.0.1.1,40000,TCP,web\n"
                                          "10.0.1.2,50001,10.0.0.53,53,udp,dns\n")
    flows = read_table(path).set_index("sport")
    assert flows.loc[40000, "label"] == "web" and flows.loc[50001, "label"] == "dns"
    assert flows["label"].isna().sum() == 2


def test_flows_and_init_on_a_capture_end_to_end(tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture.pcap", traffic(20))
    rows = ["src,sport,dst,dport,protocol,label"] + [f"10.0.1.{i + 1},{port + i},{server},{service},{kind},{name}"
            for i in range(20) for port, server, service, kind, name in ((40000, "10.0.0.80", 80, "tcp", "web"),
                                                                         (50000, "10.0.0.53", 53, "udp", "dns"))]
    Path(f"{capture}.labels.csv").write_text("\n".join(rows) + "\n")
    result = assert_ok(run_cli("flows", capture, "-o", "flows.parquet", cwd=tmp_path))
    assert "wrote 40 flows (200 packets) to flows.parquet" in result.stdout
    table = pd.read_parquet(tmp_path / "flows.parquet")
    assert len(table) == 40 and list(table["sizes"].iloc[1]) == [68.0, -148.0]
    assert_ok(run_cli("init", capture, "--target", "label", "-o", "config.yaml", cwd=tmp_path))
    inputs = {spec["name"]: spec["type"] for spec in read_yaml(tmp_path / "config.yaml")["inputs"]}
    assert inputs["sizes"] == "timeseries" and inputs["bytes_fwd"] == "number"
    edit_config(tmp_path / "config.yaml", epochs=2, patience=1)
    assert_ok(run_cli("train", "config.yaml", "-q", "-o", "model", cwd=tmp_path))
    assert_user_error(run_cli("flows", tmp_path / "flows.parquet", "-o", "x.csv", cwd=tmp_path),
                      "flows.parquet", "not a packet capture")


def test_log_normalization_spreads_counts_that_span_decades() -> None:
    """Byte counts of flows run from tens to millions: z-scored, nearly every flow sits in a sliver near the mean;
    their signed log, z-scored, spreads them out and keeps their order."""
    from lamina.inputs.number import NumberInput, NumberOptions

    values = pd.Series([60.0, 120, 400, 1_500, 9_000, 52_000, 310_000, 2_400_000, None, 0.0])
    plain, logged = NumberInput("bytes", NumberOptions()), NumberInput("bytes", NumberOptions(normalization="log"))
    plain.fit(values), logged.fit(values)
    z, spread = plain.transform(values)[:, 0].numpy(), logged.transform(values)[:, 0].numpy()
    known = values.notna().to_numpy()
    assert (pd.Series(spread[known]).rank() == pd.Series(z[known]).rank()).all()
    assert abs(z[:5]).max() - abs(z[:5]).min() < 0.05 and spread[4] - spread[0] > 1.0  # 60 B and 9 kB told apart
    assert spread[~known] == pytest.approx(0.0, abs=1e-6) and logged.explain_baseline() == pytest.approx([0.0, 0.0])
    assert 60 < logged.state["fill"] < 2_400_000  # a byte count of the column's own, shown on the served page


def test_init_reads_domain_names_as_text_and_ids_as_ids() -> None:
    """A column of domain names (DGA detection) is text for character n-grams; codes stay IDs left out."""
    from lamina.infer import infer_input

    domains = pd.Series(["kq0qw6o2siwq.org", "ufmkdjyvfkl.com", "treadmillcat.tk", "acics.org", "mycarticker.de",
                         "hwevqwlocbvmrjdor.net", "mail.google.com", "x-7.example.co.uk"] * 3)
    assert infer_input("domain", domains) == ("text", None)
    for ids in ([f"user_{i:04d}" for i in range(40)], [f"scan_{i:03d}.dcm" for i in range(40)]):
        assert infer_input("id", pd.Series(ids)) == (None, "every value is different: an ID, not a feature")
