#!/usr/bin/env python3
"""A STAND-IN for TensorFlow Serving, for specserve's tests. It is NOT TensorFlow Serving.

The real TF Serving server is a C++ binary that cannot be installed from the package
registries this project may use. This small server speaks the same two APIs for one
scikit-learn classifier, so the `tfserving` executor can be tested against real wire
formats:

* gRPC: tensorflow.serving.PredictionService/Predict and /GetModelMetadata, using the
  official generated protos from `tensorflow-serving-api` (see tfserving-standin.sh).
* REST: the documented API: POST /v1/models/<m>[/versions/<v>|/labels/<l>]:predict with
  the row ("instances" -> "predictions") and columnar ("inputs" -> "outputs") formats,
  GET /v1/models/<m>[/versions/<v>]/metadata and GET /v1/models/<m>.

Signature "serving_default": input "input" DT_FLOAT [-1, F]; outputs "label" DT_INT64 [-1]
(sent as int64_val) and "probabilities" DT_FLOAT [-1, C] (sent packed in tensor_content,
as TF Serving does for large tensors), so clients must handle both encodings.

Usage: tfserving_standin.py --name wine --joblib DIR/model.joblib --features 13 \
           --rest-port 8501 --grpc-port 8500 [--version 1] [--label stable]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import joblib
import numpy as np
from google.protobuf import any_pb2, wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

SIGNATURE = "serving_default"


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

    def signature(self) -> meta_graph_pb2.SignatureDef:
        def info(name: str, dtype: int, dims: list[int]) -> meta_graph_pb2.TensorInfo:
            shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])
            return meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=dtype, tensor_shape=shape)

        sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        sig.inputs["input"].CopyFrom(info("input", types_pb2.DT_FLOAT, [-1, self.features]))
        sig.outputs["label"].CopyFrom(info("label", types_pb2.DT_INT64, [-1]))
        sig.outputs["probabilities"].CopyFrom(info("probabilities", types_pb2.DT_FLOAT, [-1, self.classes]))
        return sig


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


# ---------------------------------------------------------------- REST

ROUTE = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(:predict|/metadata)?$")
DTYPE_NAMES = {types_pb2.DT_FLOAT: "DT_FLOAT", types_pb2.DT_INT64: "DT_INT64"}


def make_handler(model: Model):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: tests read stderr only on failure
            pass

        def reply(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def route(self):
            m = ROUTE.match(self.path)
            if not m:
                self.reply(404, {"error": f"Malformed request: {self.command} {self.path}"})
                return None
            name, version, label, action = m.groups()
            missing = model.resolve(name, int(version) if version else None, label)
            if missing:
                self.reply(404, {"error": missing})
                return None
            return action

        def do_GET(self) -> None:
            action = self.route()
            if action is None and not self.path.endswith(":predict") and ROUTE.match(self.path):
                status = {"version": str(model.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                self.reply(200, {"model_version_status": [status]})
            elif action == "/metadata":
                sig = model.signature()

                def info(t):
                    dims = [{"size": str(d.size), "name": ""} for d in t.tensor_shape.dim]
                    return {"dtype": DTYPE_NAMES[t.dtype], "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": t.name}

                body = {
                    "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
                    "metadata": {
                        "signature_def": {
                            "signature_def": {
                                SIGNATURE: {
                                    "inputs": {k: info(v) for k, v in sig.inputs.items()},
                                    "outputs": {k: info(v) for k, v in sig.outputs.items()},
                                    "method_name": sig.method_name,
                                }
                            }
                        }
                    },
                }
                self.reply(200, body)
            elif action == ":predict":
                self.reply(405, {"error": "Malformed request: GET on :predict"})

        def do_POST(self) -> None:
            action = self.route()
            if action is None:
                return
            if action != ":predict":
                self.reply(404, {"error": f"Malformed request: POST {self.path}"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                sig_name = body.get("signature_name", SIGNATURE)
                if sig_name != SIGNATURE:
                    self.reply(400, {"error": f'Serving signature key "{sig_name}" not found.'})
                    return
                if "instances" in body:
                    rows = body["instances"]
                    x = np.array([r["input"] if isinstance(r, dict) else r for r in rows], dtype=np.float32)
                    out = model.predict(x)
                    preds = [{"label": int(out["label"][i]), "probabilities": out["probabilities"][i].tolist()} for i in range(len(rows))]
                    self.reply(200, {"predictions": preds})
                elif "inputs" in body:
                    inputs = body["inputs"]
                    x = np.array(inputs["input"] if isinstance(inputs, dict) else inputs, dtype=np.float32)
                    out = model.predict(x)
                    self.reply(200, {"outputs": {k: v.tolist() for k, v in out.items()}})
                else:
                    self.reply(400, {"error": 'JSON object: does not have named "instances" or "inputs" field'})
            except (ValueError, KeyError, TypeError) as e:
                self.reply(400, {"error": str(e)})

    return Handler


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
