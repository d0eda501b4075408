#!/usr/bin/env python3
"""Train small, real scikit-learn models and export them to ONNX for specserve.

Usage:
    PY=$(scripts/python-env.sh)
    $PY models/train.py [--out models] [--joblib-dir DIR]

Every model is trained on one of scikit-learn's bundled datasets (no download),
exported with skl2onnx, then checked with onnxruntime (one thread) against the
sklearn predictions on the held-out test split. The script writes:

    <out>/<name>.onnx       one file per model (names are a contract: do not rename)
    <out>/manifest.json     shapes, accuracy/R2, latency and sample rows per task
    <out>/<task>_holdout.csv the held-out test split of each task (features f0..fN-1, then
                            `label` or, for regression, `target`): never seen in training,
                            what `specserve eval --data` scores ensembles on

ONNX contract shared by all models:
    input          float32 [N, F]   (one input named "input" for every model of a task)
    classifiers -> label           int64   [N]
                   probabilities   float32 [N, C]   (zipmap disabled)
    regressors  -> variable        float32 [N, 1]

`cancer_slow` is the logistic-regression cancer model with a deliberately slow,
zero-weighted side computation grafted in (see build_slow_model), used as a
straggler in ensemble tests. Its outputs equal cancer_logreg's.

Everything is deterministic: fixed random_state for splits and estimators.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.base import BaseEstimator, is_classifier
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

SEED = 42
# Opsets supported by onnxruntime-node 1.30 (and far older runtimes).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# Loop trip count for cancer_slow: each iteration is a 256x256 MatMul + Tanh.
# Tuned so one single-row inference takes ~80-150 ms on one thread on the
# project's 2-core machine. Override with --slow-iters.
SLOW_ITERS = 260
SLOW_DIM = 256
MAX_FILE_BYTES = 1_000_000
# digits_wide is wide on purpose (two 1024-unit layers, ~4.5 MB): a model where
# batching pays, since one row reads every weight and 32 rows read them once.
LARGE_MODELS = {"digits_wide": 5_000_000}
SAMPLES_PER_TASK = 3


# --------------------------------------------------------------------------
# Tasks (datasets) and models
# --------------------------------------------------------------------------


@dataclass
class Task:
    name: str
    kind: str  # "classification" | "regression"
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    classes: list[int] = field(default_factory=list)

    @property
    def features(self) -> int:
        return int(self.X_train.shape[1])


def load_task(name: str, loader: Callable, kind: str) -> Task:
    X, y = loader(return_X_y=True)
    # Train and test on float32 features: that is what the ONNX models receive,
    # so sklearn and onnxruntime see the exact same numbers.
    X = X.astype(np.float32)
    stratify = y if kind == "classification" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, random_state=SEED, stratify=stratify
    )
    classes = sorted(int(c) for c in np.unique(y)) if kind == "classification" else []
    return Task(name, kind, X_tr, X_te, y_tr, y_te, classes)


def model_specs() -> list[tuple[str, str, BaseEstimator]]:
    """(model name, task name, unfitted estimator). Names are a contract."""
    scaled = lambda est: make_pipeline(StandardScaler(), est)  # noqa: E731
    return [
        # --- breast cancer: 30 features, 2 classes -------------------------
        ("cancer_logreg", "cancer", scaled(LogisticRegression(max_iter=5000, random_state=SEED))),
        ("cancer_gbdt", "cancer", GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=SEED)),
        ("cancer_mlp", "cancer", scaled(MLPClassifier(hidden_layer_sizes=(32,), max_iter=2000, random_state=SEED))),
        # --- wine: 13 features, 3 classes; diverse models for voting --------
        ("wine_logreg", "wine", scaled(LogisticRegression(max_iter=5000, random_state=SEED))),
        ("wine_tree", "wine", DecisionTreeClassifier(max_depth=3, random_state=SEED)),
        # No scaler on purpose: unscaled KNN is weaker and disagrees sometimes.
        ("wine_knn", "wine", KNeighborsClassifier(n_neighbors=5)),
        ("wine_rf", "wine", RandomForestClassifier(n_estimators=50, random_state=SEED)),
        # --- digits: 64 features, 10 classes --------------------------------
        ("digits_logreg", "digits", scaled(LogisticRegression(max_iter=5000, random_state=SEED))),
        ("digits_mlp", "digits", scaled(MLPClassifier(hidden_layer_sizes=(64,), max_iter=2000, random_state=SEED))),
        # Depth-limited so the 10-class tree ensemble stays well under 1 MB.
        ("digits_rf", "digits", RandomForestClassifier(n_estimators=25, max_depth=8, random_state=SEED)),
        # The bench's batching model: ~0.2 ms for one row, ~0.5 ms for 32 (onnxruntime, one thread).
        ("digits_wide", "digits", scaled(MLPClassifier(hidden_layer_sizes=(1024, 1024), max_iter=100, random_state=SEED))),
        # --- diabetes regression: 10 features -------------------------------
        ("diabetes_linear", "diabetes", Ridge(alpha=1.0)),
        ("diabetes_tree", "diabetes", DecisionTreeRegressor(max_depth=4, random_state=SEED)),
        ("diabetes_knn", "diabetes", KNeighborsRegressor(n_neighbors=5)),
    ]


JOBLIB_MODELS = {"cancer_logreg", "wine_rf", "wine_logreg", "diabetes_linear"}


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def export_onnx(name: str, est: BaseEstimator, n_features: int) -> onnx.ModelProto:
    options = {id(est): {"zipmap": False}} if is_classifier(est) else None
    # skl2onnx attaches classifier options to the final estimator of a pipeline.
    if options is not None and hasattr(est, "steps"):
        options = {id(est.steps[-1][1]): {"zipmap": False}}
    model = to_onnx(
        est,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        options=options,
    )
    model.graph.name = name
    model.doc_string = f"specserve test model {name} ({type(est).__name__})"
    return canonical_opsets(model)


def canonical_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """One opset_import per domain, sorted by domain.

    skl2onnx can emit duplicate entries in an order that depends on Python's
    string-hash seed; normalising them makes the .onnx bytes reproducible.
    """
    versions: dict[str, int] = {}
    for op in model.opset_import:
        versions[op.domain] = max(versions.get(op.domain, 0), op.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    return model


def _const(name: str, value, dtype=np.float32) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.array(value, dtype=dtype), name)
    )


def build_slow_model(base: onnx.ModelProto, iters: int, dim: int = SLOW_DIM) -> onnx.ModelProto:
    """Graft a zero-weighted busy loop onto the cancer_logreg graph.

    probabilities = probabilities_logreg + ReduceSum(loop_result) * zero

    * W [dim,dim] = sin(range(dim*dim)) / 16, generated at run time (tiny file).
    * M0 = W + tanh(ReduceSum(input)) * 1e-3: depends on the input, so the loop
      cannot be constant-folded.
    * Loop `iters` times: M = tanh(M @ W)  (tanh keeps it finite).
    * zero = float(Shape(input)[0]) * 0: exactly 0, known only at run time, and
      always finite (so the blend never injects NaN).
    Labels come from the untouched logreg subgraph, so outputs are identical.
    """
    model = onnx.ModelProto()
    model.CopyFrom(base)
    g = model.graph
    in_name = g.input[0].name

    # Rename the original probabilities output so we can produce a blended one.
    for node in g.node:
        for i, out in enumerate(node.output):
            if out == "probabilities":
                node.output[i] = "probabilities_base"

    n = helper.make_node
    nodes = [
        # W: generated from Range, never stored.
        _const("slow_start", 0.0), _const("slow_limit", float(dim * dim)), _const("slow_delta", 1.0),
        n("Range", ["slow_start", "slow_limit", "slow_delta"], ["slow_range"]),
        _const("slow_shape", [dim, dim], np.int64),
        n("Reshape", ["slow_range", "slow_shape"], ["slow_grid"]),
        n("Sin", ["slow_grid"], ["slow_sin"]),
        _const("slow_scale", 1.0 / 16.0),
        n("Mul", ["slow_sin", "slow_scale"], ["slow_W"]),
        # M0 depends on the input data.
        n("ReduceSum", [in_name], ["slow_insum"], keepdims=0),
        n("Tanh", ["slow_insum"], ["slow_intanh"]),
        _const("slow_eps", 1e-3),
        n("Mul", ["slow_intanh", "slow_eps"], ["slow_offset"]),
        n("Add", ["slow_W", "slow_offset"], ["slow_M0"]),
        # The loop itself.
        _const("slow_trip", iters, np.int64),
        _const("slow_cond", True, np.bool_),
    ]
    body = helper.make_graph(
        [
            n("Identity", ["cond_in"], ["cond_out"]),
            n("MatMul", ["m_in", "slow_W"], ["m_mm"]),
            n("Tanh", ["m_mm"], ["m_out"]),
        ],
        "slow_body",
        inputs=[
            helper.make_tensor_value_info("iter", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("m_in", TensorProto.FLOAT, [dim, dim]),
        ],
        outputs=[
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("m_out", TensorProto.FLOAT, [dim, dim]),
        ],
    )
    nodes += [
        n("Loop", ["slow_trip", "slow_cond", "slow_M0"], ["slow_M"], body=body),
        n("ReduceSum", ["slow_M"], ["slow_busy"], keepdims=0),
        # zero = float(batch size) * 0
        n("Shape", [in_name], ["slow_inshape"], start=0, end=1),
        n("Cast", ["slow_inshape"], ["slow_batch"], to=TensorProto.FLOAT),
        _const("slow_zero_w", 0.0),
        n("Mul", ["slow_batch", "slow_zero_w"], ["slow_zero"]),
        n("Mul", ["slow_busy", "slow_zero"], ["slow_blend"]),  # shape [1]
        n("Add", ["probabilities_base", "slow_blend"], ["probabilities"]),
    ]
    g.node.extend(nodes)
    g.name = "cancer_slow"
    model.doc_string = f"specserve straggler: cancer_logreg + {iters}x {dim}x{dim} MatMul loop blended with weight 0"
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------
# Verification with onnxruntime
# --------------------------------------------------------------------------


def session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def mean_latency_ms(sess: ort.InferenceSession, X: np.ndarray, rows: int) -> float:
    """Mean wall time of single-row inferences over the first `rows` test rows."""
    sess.run(None, {"input": X[:1]})  # warm-up
    times = []
    for i in range(min(rows, len(X))):
        row = X[i : i + 1]
        t0 = time.perf_counter()
        sess.run(None, {"input": row})
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.mean(times))


def verify(name: str, path: Path, est: BaseEstimator, task: Task) -> dict:
    sess = session(path)
    X = task.X_test
    outs = {o.name: v for o, v in zip(sess.get_outputs(), sess.run(None, {"input": X}))}
    if task.kind == "classification":
        label, proba = outs["label"], outs["probabilities"]
        assert label.dtype == np.int64 and label.shape == (len(X),), (name, label.dtype, label.shape)
        assert proba.dtype == np.float32 and proba.shape == (len(X), len(task.classes)), (name, proba.shape)
        sk_label, sk_proba = est.predict(X), est.predict_proba(X)
        if not np.array_equal(label, sk_label):
            raise AssertionError(f"{name}: labels differ at {np.flatnonzero(label != sk_label)}")
        err = float(np.max(np.abs(proba - sk_proba)))
        if err > 1e-4:
            raise AssertionError(f"{name}: probabilities differ by {err}")
        metric, score = "accuracy", accuracy_score(task.y_test, label)
    else:
        var = outs["variable"]
        assert var.dtype == np.float32 and var.shape == (len(X), 1), (name, var.dtype, var.shape)
        sk = est.predict(X).reshape(-1, 1)
        rel = float(np.max(np.abs(var - sk) / np.maximum(1.0, np.abs(sk))))
        if rel > 1e-3:
            raise AssertionError(f"{name}: regression output differs by {rel} (relative)")
        err = rel
        metric, score = "r2", r2_score(task.y_test, var.ravel())
    rows = 20 if name == "cancer_slow" else 200
    return {
        "metric": metric,
        "score": float(score),
        "max_err": err,
        "latency_ms": mean_latency_ms(sess, X, rows),
        "session": sess,
    }


def io_spec(sess: ort.InferenceSession) -> tuple[list, list]:
    """KServe-v2-style tensor metadata: FP32/INT64 datatypes, -1 for dynamic dims."""
    dt = {"tensor(float)": "FP32", "tensor(int64)": "INT64"}

    def spec(arg):
        shape = [d if isinstance(d, int) else -1 for d in arg.shape]
        return {"name": arg.name, "datatype": dt[arg.type], "shape": shape}

    return [spec(a) for a in sess.get_inputs()], [spec(a) for a in sess.get_outputs()]


# --------------------------------------------------------------------------
# Samples for the TypeScript tests
# --------------------------------------------------------------------------


def pick_samples(task: Task, fitted: dict[str, BaseEstimator]) -> list[int]:
    """Pick SAMPLES_PER_TASK test-row indices.

    Classification: prefer rows where every model agrees, covering different
    classes, plus (if any) one row where the task's models disagree, which is
    what voting tests want. Regression: the first rows of the test split.
    """
    n = len(task.X_test)
    if task.kind != "classification":
        return list(range(SAMPLES_PER_TASK))
    preds = np.stack([est.predict(task.X_test) for est in fitted.values()])
    agree = np.all(preds == preds[0], axis=0)
    # Skip rows where any model's top two probabilities tie (e.g. KNN 2-2-1
    # votes): the label then depends on tie-breaking, a poor test fixture.
    clear = np.ones(n, dtype=bool)
    for est in fitted.values():
        top2 = np.sort(est.predict_proba(task.X_test), axis=1)[:, -2:]
        clear &= (top2[:, 1] - top2[:, 0]) > 1e-3
    chosen: list[int] = []
    disagree = [i for i in range(n) if not agree[i] and clear[i]]
    if disagree:
        chosen.append(disagree[0])
    seen_classes: set[int] = set()
    for i in range(n):  # agreeing rows, one per class first
        if len(chosen) >= SAMPLES_PER_TASK:
            break
        if agree[i] and clear[i] and int(preds[0, i]) not in seen_classes:
            chosen.append(i)
            seen_classes.add(int(preds[0, i]))
    for i in range(n):  # fill up if the task has fewer classes than samples
        if len(chosen) >= SAMPLES_PER_TASK:
            break
        if i not in chosen and clear[i]:
            chosen.append(i)
    return sorted(chosen)


def f32_list(row: np.ndarray) -> list[float]:
    # Shortest decimal that round-trips to the same float32 (what Float32Array gets).
    return [float(str(np.float32(v))) for v in row]


def write_holdout(task: Task, path: Path) -> None:
    """The task's test split as CSV: the float32 features exactly as the models see them, then the truth."""
    truth = "label" if task.kind == "classification" else "target"
    lines = [",".join([*(f"f{i}" for i in range(task.features)), truth])]
    for row, y in zip(task.X_test, task.y_test):
        value = str(int(y)) if task.kind == "classification" else repr(float(y))
        lines.append(",".join([*(str(np.float32(v)) for v in row), value]))
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent), help="output folder (default: models/)")
    ap.add_argument("--joblib-dir", default=None, help="also save sklearn estimators as DIR/<name>/model.joblib")
    ap.add_argument("--slow-iters", type=int, default=SLOW_ITERS, help="Loop trip count of cancer_slow")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tasks = {
        "cancer": load_task("cancer", load_breast_cancer, "classification"),
        "wine": load_task("wine", load_wine, "classification"),
        "digits": load_task("digits", load_digits, "classification"),
        "diabetes": load_task("diabetes", load_diabetes, "regression"),
    }

    # 1. Train and export.
    fitted: dict[str, tuple[BaseEstimator, Task]] = {}
    for name, task_name, est in model_specs():
        task = tasks[task_name]
        est.fit(task.X_train, task.y_train)
        onnx.save(export_onnx(name, est, task.features), out / f"{name}.onnx")
        fitted[name] = (est, task)
        if args.joblib_dir:
            import joblib

            d = Path(args.joblib_dir) / name
            d.mkdir(parents=True, exist_ok=True)
            joblib.dump(est, d / "model.joblib")
    # The straggler: same estimator (for verification) as cancer_logreg.
    slow = build_slow_model(onnx.load(out / "cancer_logreg.onnx"), args.slow_iters)
    onnx.save(slow, out / "cancer_slow.onnx")
    fitted["cancer_slow"] = fitted["cancer_logreg"]

    # 2. Verify every file with onnxruntime, single-threaded.
    manifest_models: dict[str, dict] = {}
    rows = []
    for name, (est, task) in fitted.items():
        path = out / f"{name}.onnx"
        size = path.stat().st_size
        limit = LARGE_MODELS.get(name, MAX_FILE_BYTES)
        if size > limit:
            raise AssertionError(f"{name}: {size} bytes exceeds {limit}")
        r = verify(name, path, est, task)
        inputs, outputs = io_spec(r["session"])
        manifest_models[name] = {
            "file": path.name,
            "task": task.name,
            "kind": task.kind,
            "estimator": type(est).__name__ if not hasattr(est, "steps") else " + ".join(type(s).__name__ for _, s in est.steps),
            "inputs": inputs,
            "outputs": outputs,
            "classes": task.classes,
            "metric": r["metric"],
            "accuracy_or_r2": round(r["score"], 4),
            "mean_latency_ms": round(r["latency_ms"], 3),
            "size_bytes": size,
        }
        rows.append((name, r["metric"], r["score"], size, r["latency_ms"], r["max_err"]))
    manifest_models["cancer_slow"]["estimator"] = "cancer_logreg + zero-weighted MatMul Loop (straggler)"
    manifest_models["cancer_slow"]["slow_loop_iters"] = args.slow_iters

    # 3. Samples per task with every model's expected output.
    manifest_tasks: dict[str, dict] = {}
    for task in tasks.values():
        models = {n: e for n, (e, t) in fitted.items() if t is task}
        idx = pick_samples(task, {n: e for n, e in models.items() if n != "cancer_slow"})
        Xs = task.X_test[idx]
        entry: dict = {"kind": task.kind, "features": task.features, "test_rows": len(task.X_test)}
        holdout = out / f"{task.name}_holdout.csv"
        write_holdout(task, holdout)
        entry["holdout"] = holdout.name
        if task.kind == "classification":
            entry["classes"] = task.classes
        entry["samples"] = [f32_list(r) for r in Xs]
        entry["truth"] = [int(v) if task.kind == "classification" else float(v) for v in task.y_test[idx]]
        if task.kind == "classification":
            entry["expected"] = {n: [int(v) for v in e.predict(Xs)] for n, e in models.items()}
            entry["expected_probabilities"] = {
                n: [[round(float(p), 6) for p in row] for row in e.predict_proba(Xs)] for n, e in models.items()
            }
        else:
            entry["expected"] = {n: [round(float(v), 4) for v in e.predict(Xs)] for n, e in models.items()}
        manifest_tasks[task.name] = entry

    manifest = {
        "generator": "models/train.py",
        "versions": {
            "sklearn": __import__("sklearn").__version__,
            "skl2onnx": __import__("skl2onnx").__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
        "opset": TARGET_OPSET,
        "latency_note": "mean single-row latency, onnxruntime python, intra_op_num_threads=1",
        "models": manifest_models,
        "tasks": manifest_tasks,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    # 4. Report.
    print(f"{'model':<17} {'metric':<8} {'score':>7} {'size':>10} {'latency_ms':>11} {'max_err':>9}")
    for name, metric, score, size, lat, err in rows:
        print(f"{name:<17} {metric:<8} {score:7.4f} {size:>10,} {lat:11.3f} {err:9.2e}")
    slow_ms = manifest_models["cancer_slow"]["mean_latency_ms"]
    if not 80 <= slow_ms <= 150:
        print(f"warning: cancer_slow takes {slow_ms:.1f} ms (target 80-150); adjust --slow-iters", file=sys.stderr)
    print(f"wrote {len(rows)} models and manifest.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
