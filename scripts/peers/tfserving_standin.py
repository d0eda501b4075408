#!/usr/bin/env python3
"""A STAND-IN for TensorFlow Serving, for specserve's tests. It is NOT TensorFlow Serving.

The real TF Serving server is a C++ binary that cannot be installed from the package
registries this project may use. This small server speaks the same two APIs for one
scikit-learn classifier, so the `tfserving` executor can be tested against real wire
formats:

* gRPC: tensorflow.serving.PredictionService/Predict, /Classify, /Regress and
  /GetModelMetadata, using the official generated protos from `tensorflow-serving-api`
  (see tfserving-standin.sh).
* REST: the documented API: POST /v1/models/<m>[/versions/<v>|/labels/<l>]:predict with
  the row ("instances" -> "predictions") and columnar ("inputs" -> "outputs") formats,
  :classify and :regress with "examples", GET /v1/models/<m>[/versions/<v>]/metadata and
  GET /v1/models/<m>.

Signature "serving_default": input "input" DT_FLOAT [-1, F]; outputs "label" DT_INT64 [-1]
(sent as int64_val) and "probabilities" DT_FLOAT [-1, C] (sent packed in tensor_content,
as TF Serving does for large tensors), so clients must handle both encodings.
Signature "classification" (Classify): examples with a float feature "input" of F values;
classes are the class indices as strings, scores the probabilities. Signature "regression"
(Regress), binary classifiers only, as TensorFlow's binary heads export it: the
probability of class 1.

Usage: tfserving_standin.py --name wine --joblib DIR/model.joblib --features 13 \
           --rest-port 8501 --grpc-port 8500 [--version 1] [--label stable]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from http.server import ThreadingHTTPServer

import grpc
import numpy as np
from google.protobuf import any_pb2, wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc, regression_pb2

from tfserving_standin_model import CLASSIFY_SIGNATURE, REGRESS_SIGNATURE, SIGNATURE, Model
from tfserving_standin_rest import make_handler

# ---------------------------------------------------------------- gRPC


def tensor_to_numpy(t: tensor_pb2.TensorProto) -> np.ndarray:
    dims = [d.size for d in t.tensor_shape.dim]
    if t.dtype == types_pb2.DT_FLOAT:
        data = np.frombuffer(t.tensor_content, dtype="<f4") if t.tensor_content else np.array(t.float_val, dtype=np.float32)
    elif t.dtype == types_pb2.DT_DOUBLE:
        data = np.frombuffer(t.tensor_content, dtype="<f8") if t.tensor_content else np.array(t.double_val, dtype=np.float64)
    else:
        raise ValueError(f"input dtype {types_pb2.DataType.Name(t.dtype)} is not supported by this signature")
    return data.reshape(dims).astype(np.float32)


def shape_of(a: np.ndarray) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in a.shape])


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, model: Model) -> None:
        self.model = model

    def _check_spec(self, spec, context) -> None:
        version = spec.version.value if spec.HasField("version") else None
        label = spec.version_label if spec.WhichOneof("version_choice") == "version_label" else None
        missing = self.model.resolve(spec.name, version, label)
        if missing:
            context.abort(grpc.StatusCode.NOT_FOUND, missing)

    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        self._check_spec(request.model_spec, context)
        if request.model_spec.signature_name not in ("", SIGNATURE):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature key "{request.model_spec.signature_name}" not found.')
        if set(request.inputs.keys()) != {"input"}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected inputs {{input}}, got {sorted(request.inputs.keys())}")
        try:
            out = self.model.predict(tensor_to_numpy(request.inputs["input"]))
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        res = predict_pb2.PredictResponse()
        res.model_spec.name = self.model.name
        res.model_spec.version.value = self.model.version
        res.model_spec.signature_name = SIGNATURE
        wanted = set(request.output_filter) or set(out)
        if "label" in wanted:
            lab = out["label"]
            res.outputs["label"].CopyFrom(tensor_pb2.TensorProto(dtype=types_pb2.DT_INT64, tensor_shape=shape_of(lab), int64_val=lab.tolist()))
        if "probabilities" in wanted:
            p = out["probabilities"]
            res.outputs["probabilities"].CopyFrom(
                tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape_of(p), tensor_content=p.astype("<f4").tobytes())
            )
        return res

    def _examples(self, request, signature: str, context) -> np.ndarray:
        self._check_spec(request.model_spec, context)
        if request.model_spec.signature_name != signature:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature key "{request.model_spec.signature_name}" not found.')
        if request.input.WhichOneof("kind") != "example_list":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Input is empty or not an example list.")
        rows = []
        for ex in request.input.example_list.examples:
            feature = ex.features.feature.get("input")
            if feature is None or feature.WhichOneof("kind") != "float_list":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Name: <unknown>, Feature: input is required to be a float list.")
            rows.append({"input": list(feature.float_list.value)})
        try:
            return self.model.examples(rows)
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))

    def Classify(self, request, context):
        x = self._examples(request, CLASSIFY_SIGNATURE, context)
        labels, scores = self.model.classify(x)
        res = classification_pb2.ClassificationResponse()
        res.model_spec.name = self.model.name
        res.model_spec.version.value = self.model.version
        res.model_spec.signature_name = CLASSIFY_SIGNATURE
        for row in scores:
            c = res.result.classifications.add()
            for label, score in zip(labels, row):
                c.classes.add(label=label, score=float(score))
        return res

    def Regress(self, request, context):
        x = self._examples(request, REGRESS_SIGNATURE, context)
        try:
            values = self.model.regress(x)
        except LookupError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        res = regression_pb2.RegressionResponse()
        res.model_spec.name = self.model.name
        res.model_spec.version.value = self.model.version
        res.model_spec.signature_name = REGRESS_SIGNATURE
        for v in values:
            res.result.regressions.add(value=float(v))
        return res

    def GetModelMetadata(self, request, context):
        self._check_spec(request.model_spec, context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Metadata field signature_def is the only one supported")
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        sig_map.signature_def[SIGNATURE].CopyFrom(self.model.signature())
        packed = any_pb2.Any()
        packed.Pack(sig_map)
        res = get_model_metadata_pb2.GetModelMetadataResponse()
        res.model_spec.name = self.model.name
        res.model_spec.version.CopyFrom(wrappers_pb2.Int64Value(value=self.model.version))
        res.metadata["signature_def"].CopyFrom(packed)
        return res


def main() -> int:
    ap = argparse.ArgumentParser(description="TF Serving stand-in (not TF Serving)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--joblib", required=True)
    ap.add_argument("--features", type=int, required=True)
    ap.add_argument("--version", type=int, default=1)
    ap.add_argument("--label", default="stable")
    ap.add_argument("--rest-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    args = ap.parse_args()
    model = Model(args)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(model), server)
    server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()
    http = ThreadingHTTPServer(("127.0.0.1", args.rest_port), make_handler(model))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"tfserving stand-in: model {args.name} v{args.version}, REST :{args.rest_port}, gRPC :{args.grpc_port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    http.shutdown()
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
