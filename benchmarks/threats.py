"""Threats and fraud, against the classical counterparts, on real data (docs/benchmarks.md, "Threats and fraud").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/threats.py [--only fraud fraud-anomaly traffic attacks
        attacks-supervised[-stats|-log-stats] protocols protocols-log protocols[-log]-stats dga] [--keep DIR]
        [--dga-rows N] [--dga-time-limit 20m]

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
dga: nDPI's 33,746 generated and 33,740 benign domains (``--dga-rows``: a sample), the config ``lamina init`` writes
for them against character n-gram TF-IDF + logistic regression.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from ndpi_flows import ATTACKS, FEATURES, cached_flows, flow_inputs, ndpi_tests, traffic_flows  # noqa: E402
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


def family_recall(test: pd.DataFrame, scored: dict[str, np.ndarray]) -> pd.DataFrame:
    """Each model's recall per attack family at the score that 1 % of the benign test flows exceed."""
    benign = (test["attack"] == "no").to_numpy()
    present = [c for c in ATTACKS if (test["capture"] == c).any()]
    table = {}
    for name, s in scored.items():
        cut = np.quantile(s[benign], 0.99)
        table[name] = {ATTACKS[c]: float(np.mean(s[(test["capture"] == c).to_numpy()] > cut)) for c in present}
        table[name]["all attacks"] = float(np.mean(s[~benign] > cut))
    families = pd.DataFrame(table)
    families["test flows"] = [int((test["capture"] == c).sum()) for c in present] + [int((~benign).sum())]
    return families


def attacks_supervised(work: Path, series: bool = True, normalization: str = "zscore") -> dict:
    """Attack vs benign flows with labels: the network trained (no report: its explanations of the series input
    outlast the shared machine), then compare's classical counterparts on the same split, and every model's recall
    per attack family at 1 % false alarms on the benign test flows; without ``series``, no ``sizes`` input;
    ``normalization`` of the number inputs."""
    from lamina.compare.models import counterparts, deep_row
    from lamina.data.load import load_splits
    from lamina.run import as_config, train

    flows, speed = cached_flows(work)
    flows["attack"] = np.where(flows["capture"].isin(list(ATTACKS)), "yes", "no")
    frame = flows[FEATURES + ["attack", "capture"]]
    inputs = [spec for spec in flow_inputs(normalization) if series or spec["name"] != "sizes"]
    config = {"name": f"attacks-{normalization}{'' if series else '-stats'}",
              "data": {"split": {"method": "stratified"}}, "inputs": inputs,
              "outputs": [{"name": "attack", "type": "binary", "options": {"positive": "yes"}}],
              "trainer": {**trainer(40, 64), "time_limit": "12m"}}
    started = time.perf_counter()
    model = train(config, data=frame, output_dir=work / "runs", verbose=True)
    seconds = time.perf_counter() - started
    splits, _ = load_splits(as_config(config)[0], Path.cwd(), frame)
    kept: dict = {}
    rows = deep_row(model, splits, seconds, kept) + counterparts(model, splits, 42, kept)
    test = splits["test"]
    scored = {}
    for (name, _), (index, raw) in kept.items():
        scored[name] = pd.Series(raw[:, 0], index=index).reindex(test.index).to_numpy()
    show(f"attack vs benign flows, supervised ({int((frame['attack'] == 'yes').sum())} attack flows of {len(frame)}; "
         f"Lamina {model.info['best_epoch']} of {model.info['epochs_run']} epochs)", rows, ["pr_auc", "roc_auc"])
    families = family_recall(test, scored)
    print("recall per attack family at 1 % false alarms (benign test flows):")
    print(families.to_string(float_format=lambda v: f"{v:.2f}"))
    return {"speed": speed, "rows": rows, "families": families.reset_index().to_dict(orient="records")}


def protocols(work: Path, normalization: str, series: bool = True) -> dict:
    """Protocol classification (the protocols with 20+ flows) as in ``traffic``, the network trained without a
    report, then compare's classical counterparts on the same split; ``normalization`` of the number inputs;
    without ``series``, the flow statistics only (no ``sizes`` series, for the network or the classical models)."""
    from lamina.compare.models import counterparts, deep_row
    from lamina.data.load import load_splits
    from lamina.run import as_config, train

    flows, _ = cached_flows(work)
    labelled = flows.dropna(subset=["label"])
    counts = labelled["label"].value_counts()
    common = labelled[labelled["label"].isin(counts[counts >= 20].index)][FEATURES + ["label"]]
    inputs = [spec for spec in flow_inputs(normalization) if series or spec["name"] != "sizes"]
    which = f"{normalization}{'' if series else '-stats'}"
    config = {"name": f"protocols-{which}", "data": {"split": {"method": "stratified"}}, "inputs": inputs,
              "outputs": [{"name": "label", "type": "category"}], "trainer": {**trainer(60, 64), "time_limit": "10m"}}
    started = time.perf_counter()
    model = train(config, data=common, output_dir=work / "runs", verbose=True)
    seconds = time.perf_counter() - started
    splits, _ = load_splits(as_config(config)[0], Path.cwd(), common)
    rows = deep_row(model, splits, seconds, {}) + counterparts(model, splits, 42, {})
    show(f"protocols ({which}): {common['label'].nunique()} protocols, {len(common)} flows; "
         f"Lamina {model.info['best_epoch']} of {model.info['epochs_run']} epochs, {seconds:.0f} s", rows,
         ["accuracy", "macro_f1"])
    return {"rows": rows, "epochs": [model.info["best_epoch"], model.info["epochs_run"]], "seconds": seconds}


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


def dga(work: Path, rows: int | None = None, time_limit: str | None = None) -> dict:
    """The config ``lamina init`` writes for the domains (a text input: hashed word and character n-grams) trained
    as written, against character n-gram TF-IDF + logistic regression on the same split's training rows; ``rows``:
    a random sample of that many domains (the shared machine cannot train on all 67,486 in a session)."""
    import yaml
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score

    from lamina.data.load import load_splits
    from lamina.infer import init_config
    from lamina.run import as_config, train

    tests = ndpi_tests()
    generated = pd.read_csv(tests / "dga" / "test_dga.csv", header=None, names=["domain"])
    benign = pd.read_csv(tests / "dga" / "test_non_dga.csv", header=None, names=["domain"])
    frame = pd.concat([generated.assign(dga="yes"), benign.assign(dga="no")], ignore_index=True)
    if rows:
        frame = frame.sample(n=min(rows, len(frame)), random_state=0).reset_index(drop=True)
    frame.to_csv(work / "dga.csv", index=False)
    init_config(work / "dga.csv", ["dga"], work / "dga.yaml", force=True)
    config = yaml.safe_load((work / "dga.yaml").read_text())
    if time_limit:  # init sized its limit for an idle machine; a loaded one needs more to finish an epoch
        config["trainer"]["time_limit"] = time_limit
        (work / "dga.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"lamina init: {config['inputs']}; trainer {config['trainer']}", flush=True)
    started = time.perf_counter()
    model = train(work / "dga.yaml", output_dir=work / "runs", verbose=True)
    lamina_seconds = time.perf_counter() - started
    test = model.metrics["test"]["dga"]
    splits, _ = load_splits(as_config(work / "dga.yaml")[0], work)
    started = time.perf_counter()
    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    x = tfidf.fit_transform(splits["train"]["domain"])
    logistic = LogisticRegression(C=10.0, max_iter=2000).fit(x, splits["train"]["dga"] == "yes")
    p = logistic.predict_proba(tfidf.transform(splits["test"]["domain"]))[:, 1]
    truth = (splits["test"]["dga"] == "yes").to_numpy()
    classical = {"accuracy": float(accuracy_score(truth, p >= 0.5)), "roc_auc": float(roc_auc_score(truth, p)),
                 "rows": len(truth)}
    result = [{"model": f"lamina (init default, {model.info['best_epoch']} of {model.info['epochs_run']} epochs)",
               "metrics": test, "train_seconds": lamina_seconds},
              {"model": "char 2-5-gram TF-IDF + LR", "metrics": classical,
               "train_seconds": time.perf_counter() - started}]
    show(f"DGA domains: {int((frame['dga'] == 'yes').sum())} generated, {int((frame['dga'] == 'no').sum())} benign; "
         f"{len(truth)} test rows", result, ["accuracy", "roc_auc"])
    for r in result:
        print(f"{r['model']}: {r['train_seconds']:.0f} s")
    return {"rows": result}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=["fraud", "fraud-anomaly", "traffic", "dga"])
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--dga-rows", type=int, default=None, help="dga: a random sample of this many domains")
    parser.add_argument("--dga-time-limit", default=None, help="dga: trainer.time_limit instead of init's")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="lamina-threats-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only:
        started = time.perf_counter()
        run = {"fraud": fraud, "fraud-anomaly": fraud_anomaly, "traffic": traffic, "attacks": attacks,
               "attacks-supervised": attacks_supervised,
               "protocols": lambda w: protocols(w, "zscore"), "protocols-log": lambda w: protocols(w, "log"),
               "protocols-stats": lambda w: protocols(w, "zscore", series=False),
               "protocols-log-stats": lambda w: protocols(w, "log", series=False),
               "attacks-supervised-stats": lambda w: attacks_supervised(w, series=False),
               "attacks-supervised-log-stats": lambda w: attacks_supervised(w, series=False, normalization="log"),
               "dga": lambda w: dga(w, args.dga_rows, args.dga_time_limit)}[name]
        results[name] = run(work)
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", flush=True)
    (work / "threats.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {work / 'threats.json'}")


if __name__ == "__main__":
    main()
