"""Threats and fraud, against the classical counterparts, on real data (docs/benchmarks.md, "Threats and fraud").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/threats.py [--only fraud fraud-anomaly traffic attacks dga] [--keep DIR]

fraud: the ULB transactions (examples/fraud: all 284,807 rows), time-ordered 70/15/15 split, costs {missed: 100,
false_alarm: 1}: ``lamina compare`` (Lamina vs LightGBM vs logistic regression, each with the cost-tuned threshold
and bootstrap intervals) and the anomaly task (autoencoder, Isolation Forest, LOF, kNN: unsupervised, labels for
evaluation only).
traffic: nDPI's test captures (Debian's ndpi source package, fetched with ``apt-get source --download-only`` from a
private sources list into ~/.cache/lamina/ndpi): flows read by ``lamina.data.flows`` with labels from nDPI's
``tests/result/*.pcap.out`` (its master protocol); flows per second of the extractor; protocol classification
from flow features (ports left out) with ``lamina compare``; attack captures (web attacks, SYN scan, log4j,
trickbot, DNS tunnelling and exfiltration, malware) against the rest: supervised (compare) and unsupervised (the
anomaly task trained on benign flows only, recall per attack family at 1 % false alarms on benign test flows).
dga: nDPI's 33,746 generated and 33,740 benign domains as a text input, ``lamina compare`` (TF-IDF + logistic).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
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


def flow_inputs() -> list[dict]:
    kinds = {"protocol": "category", "sizes": "timeseries"}
    return [{"name": c, "type": kinds.get(c, "number"),
             **({"options": {"missing": "fill"}} if c == "sizes" else {})} for c in FEATURES]


def compare_rows(config: dict, frame: pd.DataFrame, work: Path) -> list[dict]:
    """``lamina compare`` on ``frame``: one row per model with its test metrics."""
    from lamina.compare import compare

    paths = compare(config, output_dir=work / "runs", data=frame, verbose=False)
    result = json.loads(Path(paths["json"]).read_text())
    return result["rows"]


def show(title: str, rows: list[dict], metrics: list[str]) -> None:
    print(f"\n{title}")
    print("model".ljust(22) + "".join(m.rjust(26) for m in metrics))
    for row in rows:
        m = row["metrics"]

        def cell(name: str) -> str:
            value = m.get(name)
            if value is None:
                return "-"
            low, high = m.get(f"{name}_low"), m.get(f"{name}_high")
            return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low is not None else f"{value:.3f}"
        print(row["model"].ljust(22) + "".join(cell(n).rjust(26) for n in metrics), flush=True)


def trainer(epochs: int, batch: int) -> dict:
    return {"epochs": epochs, "batch_size": batch, "folds": 1, "time_limit": None,
            "early_stopping": {"patience": 5}}


def fraud(work: Path) -> dict:
    sys.path.insert(0, str(ROOT / "examples" / "fraud"))
    from make_data import transactions

    frame = transactions()
    inputs = [{"name": c, "type": "number"} for c in frame.columns if c not in ("Time", "Class")]
    split = {"method": "time", "time_column": "Time", "fractions": [0.7, 0.15, 0.15]}
    config = {"name": "fraud", "data": {"split": split}, "inputs": inputs,
              "outputs": [{"name": "Class", "type": "binary",
                           "options": {"costs": {"missed": 100, "false_alarm": 1}, "top_k": 100}}],
              "trainer": {**trainer(30, 512), "early_stopping": {"metric": "Class.pr_auc", "patience": 5}}}
    started = time.perf_counter()
    rows = compare_rows(config, frame, work)
    print(f"fraud compare: {time.perf_counter() - started:.0f} s")
    show("fraud (time split, test = last 15 %)", rows, ["pr_auc", "precision_at_k", "expected_cost", "roc_auc"])
    return {"supervised": rows}


def fraud_anomaly(work: Path) -> dict:
    """The same split, no labels in training: the autoencoder (5 epochs: ~2 minutes each on the shared machine)
    against Isolation Forest, LOF and kNN distance."""
    sys.path.insert(0, str(ROOT / "examples" / "fraud"))
    from make_data import transactions

    frame = transactions()
    inputs = [{"name": c, "type": "number"} for c in frame.columns if c not in ("Time", "Class")]
    split = {"method": "time", "time_column": "Time", "fractions": [0.7, 0.15, 0.15]}
    rows = anomaly_rows({"name": "fraud-anomaly", "task": "anomaly", "data": {"split": split}, "inputs": inputs,
                         "anomaly": {"label": "Class", "positive": "1"}, "trainer": trainer(5, 1024)}, frame, work)
    show("fraud, unsupervised (labels for evaluation only)", rows, ["pr_auc", "roc_auc", "recall_at_1pct_false_alarms"])
    return {"anomaly": rows}


def anomaly_rows(config: dict, frame: pd.DataFrame, work: Path) -> list[dict]:
    from lamina.run import train

    model = train(config, data=frame, output_dir=work / "runs", verbose=False)
    return [{"model": name, "metrics": m} for name, m in model.metrics["test"].items()]


def traffic(work: Path) -> dict:
    tests = ndpi_tests()
    captures = work / "captures"
    captures.mkdir(exist_ok=True)
    flows, speed = traffic_flows(tests, captures)
    labelled = flows.dropna(subset=["label"])
    print(f"{len(flows)} flows, {len(labelled)} with an nDPI label")
    counts = labelled["label"].value_counts()
    common = labelled[labelled["label"].isin(counts[counts >= 20].index)]
    config = {"name": "protocols", "data": {"split": {"method": "stratified"}}, "inputs": flow_inputs(),
              "outputs": [{"name": "label", "type": "category"}], "trainer": trainer(60, 64)}
    protocols = compare_rows(config, common[FEATURES + ["label"]], work)
    show(f"protocol classification: {common['label'].nunique()} protocols with 20+ flows, {len(common)} flows",
         protocols, ["accuracy", "macro_f1"])
    flows["attack"] = np.where(flows["capture"].isin(list(ATTACKS)), "yes", "no")
    config = {"name": "attacks", "data": {"split": {"method": "stratified"}}, "inputs": flow_inputs(),
              "outputs": [{"name": "attack", "type": "binary", "options": {"positive": "yes"}}],
              "trainer": trainer(60, 64)}
    supervised = compare_rows(config, flows[FEATURES + ["attack"]], work)
    show(f"attack vs benign flows, supervised ({int((flows['attack'] == 'yes').sum())} attack flows)", supervised,
         ["pr_auc", "roc_auc", "recall"])
    unsupervised, families = attack_anomalies(flows, work)
    show("attack vs benign, unsupervised (trained on benign flows only)", unsupervised,
         ["roc_auc", "pr_auc", "recall_at_1pct_false_alarms"])
    print("recall per attack family at 1 % false alarms (benign test flows):")
    print(families.to_string(float_format=lambda v: f"{v:.2f}"))
    return {"speed": speed, "protocols": protocols, "supervised": supervised, "unsupervised": unsupervised,
            "families": families.reset_index().to_dict(orient="records")}


def attacks(work: Path) -> dict:
    """The unsupervised part of ``traffic`` on its own (``lamina compare`` writes a report, whose explanations of a
    series input took longer than the shared machine had)."""
    captures = work / "captures"
    captures.mkdir(exist_ok=True)
    flows, speed = traffic_flows(ndpi_tests(), captures)
    flows["attack"] = np.where(flows["capture"].isin(list(ATTACKS)), "yes", "no")
    unsupervised, families = attack_anomalies(flows, work)
    show(f"attack vs benign, unsupervised (trained on benign flows only; {int((flows['attack'] == 'yes').sum())} "
         "attack flows)", unsupervised, ["roc_auc", "pr_auc", "recall_at_1pct_false_alarms"])
    print("recall per attack family at 1 % false alarms (benign test flows):")
    print(families.to_string(float_format=lambda v: f"{v:.2f}"))
    return {"speed": speed, "unsupervised": unsupervised, "families": families.reset_index().to_dict(orient="records")}


def attack_anomalies(flows: pd.DataFrame, work: Path) -> tuple[list[dict], pd.DataFrame]:
    """The anomaly task trained on benign flows; then each detector's recall per attack family on the test
    flows, at the score that 1 % of the benign test flows exceed."""
    from lamina.anomaly.baselines import detectors
    from lamina.data.load import load_splits
    from lamina.run import as_config, train

    frame = flows[FEATURES + ["attack", "capture"]]
    config = {"name": "attack-anomaly", "task": "anomaly", "data": {"split": {"method": "random"}},
              "inputs": flow_inputs(), "anomaly": {"label": "attack", "positive": "yes", "train_on": "normal"},
              "trainer": trainer(60, 64)}
    model = train(config, data=frame, output_dir=work / "runs", verbose=False)
    rows = [{"model": name, "metrics": m} for name, m in model.metrics["test"].items()]
    splits, _ = load_splits(as_config(config)[0], Path.cwd(), frame)
    train_rows = splits["train"][splits["train"]["attack"] == "no"]
    test = splits["test"]
    scored = {"lamina (" + model.config.anomaly.method + ")": model.scores(test)}
    for name, fit in detectors(10, 42).items():
        scored[name] = fit(model.features(train_rows, "train"))(model.features(test, "test"))
    benign = (test["attack"] == "no").to_numpy()
    table = {}
    for name, s in scored.items():
        cut = np.quantile(s[benign], 0.99)
        table[name] = {ATTACKS[c]: float(np.mean(s[(test["capture"] == c).to_numpy()] > cut))
                       for c in ATTACKS if (test["capture"] == c).any()}
    families = pd.DataFrame(table)
    families["test flows"] = [int((test["capture"] == c).sum()) for c in ATTACKS if (test["capture"] == c).any()]
    return rows, families


def dga(work: Path) -> dict:
    tests = ndpi_tests()
    generated = pd.read_csv(tests / "dga" / "test_dga.csv", header=None, names=["domain"])
    benign = pd.read_csv(tests / "dga" / "test_non_dga.csv", header=None, names=["domain"])
    frame = pd.concat([generated.assign(dga="yes"), benign.assign(dga="no")], ignore_index=True)
    config = {"name": "dga", "data": {"split": {"method": "stratified"}},
              "inputs": [{"name": "domain", "type": "text", "options": {"encoder": "hashed"}}],
              "outputs": [{"name": "dga", "type": "binary", "options": {"positive": "yes"}}],
              "trainer": {**trainer(10, 256), "early_stopping": {"patience": 3}}}
    rows = compare_rows(config, frame, work)
    show(f"DGA domains ({len(generated)} generated, {len(benign)} benign)", rows, ["accuracy", "roc_auc"])
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=["fraud", "fraud-anomaly", "traffic", "dga"])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="lamina-threats-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only:
        started = time.perf_counter()
        results[name] = {"fraud": fraud, "fraud-anomaly": fraud_anomaly, "traffic": traffic, "attacks": attacks,
                         "dga": dga}[name](work)
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", flush=True)
    (work / "threats.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {work / 'threats.json'}")


if __name__ == "__main__":
    main()
