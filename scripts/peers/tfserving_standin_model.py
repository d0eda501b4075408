"""The scikit-learn model behind the TF Serving STAND-IN (tfserving_standin.py), and its signatures."""

from __future__ import annotations

import argparse

import joblib
import numpy as np
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

SIGNATURE = "serving_default"
CLASSIFY_SIGNATURE = "classification"
REGRESS_SIGNATURE = "regression"


class Model:
    def __init__(self, args: argparse.Namespace) -> None:
        self.name = args.name
        self.version = args.version
        self.label = args.label
        self.features = args.features
        self.est = joblib.load(args.joblib)
        self.classes = len(self.est.classes_)

    def resolve(self, name: str, version: int | None, label: str | None) -> str | None:
        """None when the spec names this servable; else TF Serving's not-found message."""
        if name != self.name or (version is not None and version != self.version) or (label and label != self.label):
            return f"Servable not found for request: Specific({name}, {version or label})"
        return None

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"input must have shape [-1, {self.features}], got {list(x.shape)}")
        return {
            "label": self.est.predict(x).astype(np.int64),
            "probabilities": self.est.predict_proba(x).astype(np.float32),
        }

    def classify(self, x: np.ndarray) -> tuple[list[str], np.ndarray]:
        return [str(c) for c in self.est.classes_], self.predict(x)["probabilities"]

    def regress(self, x: np.ndarray) -> np.ndarray:
        if self.classes != 2:
            raise LookupError(f'Serving signature key "{REGRESS_SIGNATURE}" not found.')
        return self.predict(x)["probabilities"][:, 1]

    def examples(self, examples: list[dict[str, list]]) -> np.ndarray:
        """Rows from examples' "input" feature, which must be a float list, as the signature's parser requires."""
        rows = []
        for ex in examples:
            values = ex.get("input")
            if values is None:
                raise ValueError("Name: <unknown>, Feature: input is required but could not be found.")
            if not isinstance(values, list) or not all(isinstance(v, float) for v in values):
                raise ValueError("Name: <unknown>, Feature: input (data type: int64 or bytes) is required to be float.")
            rows.append(values)
        return np.array(rows, dtype=np.float32)

    def signature(self) -> meta_graph_pb2.SignatureDef:
        def info(name: str, dtype: int, dims: list[int]) -> meta_graph_pb2.TensorInfo:
            shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
            return meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=dtype, tensor_shape=shape)

        sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        sig.inputs["input"].CopyFrom(info("input", types_pb2.DT_FLOAT, [-1, self.features]))
        sig.outputs["label"].CopyFrom(info("label", types_pb2.DT_INT64, [-1]))
        sig.outputs["probabilities"].CopyFrom(info("probabilities", types_pb2.DT_FLOAT, [-1, self.classes]))
        return sig
