"""The REST API of the TF Serving STAND-IN (tfserving_standin.py): TF Serving's documented
routes and JSON formats for one model. It is NOT TensorFlow Serving."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

import numpy as np
from tensorflow.core.framework import types_pb2

from tfserving_standin_model import CLASSIFY_SIGNATURE, REGRESS_SIGNATURE, SIGNATURE, Model


ROUTE = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(:predict|:classify|:regress|/metadata)?$")
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
            if action not in (":predict", ":classify", ":regress"):
                self.reply(404, {"error": f"Malformed request: POST {self.path}"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                if action != ":predict":
                    self.examples(action, body)
                    return
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

        def examples(self, action: str, body: dict) -> None:
            want = CLASSIFY_SIGNATURE if action == ":classify" else REGRESS_SIGNATURE
            sig_name = body.get("signature_name", SIGNATURE)
            if sig_name != want:
                self.reply(400, {"error": f'Serving signature key "{sig_name}" not found.'})
                return
            if not isinstance(body.get("examples"), list):
                self.reply(400, {"error": 'JSON Value: does not have named "examples" field'})
                return
            x = model.examples(body["examples"])
            if action == ":classify":
                labels, scores = model.classify(x)
                self.reply(200, {"result": [[[label, float(p)] for label, p in zip(labels, row)] for row in scores]})
            else:
                try:
                    self.reply(200, {"result": [float(v) for v in model.regress(x)]})
                except LookupError as e:
                    self.reply(400, {"error": str(e)})

    return Handler
