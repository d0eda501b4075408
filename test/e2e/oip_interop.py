"""Drives specserve's Open Inference Protocol V2 endpoints with NVIDIA's tritonclient,
over HTTP and gRPC, and prints a JSON report. Any failed check raises (exit code 1).

Usage: python oip_interop.py HTTP_HOST:PORT GRPC_HOST:PORT EXPECTED_JSON
EXPECTED_JSON: {"rows": [[30 floats], ...], "expected": {"cancer_mlp": [labels], ...}}
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

http_url, grpc_url, expected_json = sys.argv[1], sys.argv[2], sys.argv[3]
expected = json.loads(expected_json)
rows = np.array(expected["rows"], dtype=np.float32)
report = {}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def params_of(result, protocol):
    """Response parameters as a plain dict, whichever client made the call."""
    if protocol == "http":
        return result.get_response().get("parameters", {})
    params = result.get_response(as_json=True).get("parameters", {})
    return {k: next(iter(v.values())) for k, v in params.items()}


def run(protocol, client, module):
    out = {}
    check(client.is_server_live(), "server live")
    check(client.is_server_ready(), "server ready")
    check(client.is_model_ready("cancer"), "cancer ready")
    check(client.is_model_ready("counts", "1"), "counts ready (version 1)")
    meta = client.get_server_metadata()
    meta = meta if protocol == "http" else json.loads(__import__("google.protobuf.json_format", fromlist=["x"]).MessageToJson(meta))
    check(meta["name"] == "specserve", "server name")
    model = client.get_model_metadata("cancer")
    model = model if protocol == "http" else {"inputs": [{"name": i.name, "datatype": i.datatype, "shape": list(i.shape)} for i in model.inputs]}
    check(model["inputs"][0] == {"name": "input", "datatype": "FP32", "shape": [-1, 30]}, f"cancer input metadata {model['inputs']}")

    # FP32 batch, the client's default encoding (binary for HTTP, raw contents for gRPC).
    inp = module.InferInput("input", list(rows.shape), "FP32")
    inp.set_data_from_numpy(rows)
    result = client.infer("cancer", [inp], request_id="interop-1")
    params = params_of(result, protocol)
    chosen = params["chosen"].replace("-", "_")
    labels = result.as_numpy("label").tolist()
    check(labels == expected["expected"][chosen], f"labels {labels} from {chosen}")
    probs = result.as_numpy("probabilities")
    check(probs.shape == (len(rows), 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5), "probabilities")
    models = json.loads(params["models"])
    check([m["name"] for m in models if m["used"]] == [params["chosen"]], "annotations name the winner")
    out["fp32"] = {"chosen": params["chosen"], "labels": labels, "reason": params["reason"]}

    # HTTP again with JSON tensors both ways (binary_data off), and one requested output.
    if protocol == "http":
        inp = module.InferInput("input", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows, binary_data=False)
        res = client.infer("cancer", [inp], outputs=[module.InferRequestedOutput("label", binary_data=False)])
        check(res.as_numpy("label").tolist() == labels, "JSON-encoded infer agrees")
        check(res.as_numpy("probabilities") is None, "only the requested output")

    # INT64 input.
    ids = np.array([[1, 5, 2], [40, 3, 9000000000]], dtype=np.int64)
    inp = module.InferInput("ids", list(ids.shape), "INT64")
    inp.set_data_from_numpy(ids)
    res = client.infer("counts", [inp], model_version="1")
    check(res.as_numpy("argmax").tolist() == [1, 2], f"argmax {res.as_numpy('argmax')}")
    check(np.allclose(res.as_numpy("total"), ids.sum(axis=1).astype(np.float32)), f"total {res.as_numpy('total')}")
    out["int64"] = {"argmax": res.as_numpy("argmax").tolist(), "total": res.as_numpy("total").tolist()}

    # Errors surface as the client's own exception, with our message.
    for model_name, bad_input, needle in [
        ("nope", module.InferInput("input", [1, 30], "FP32"), 'no ensemble named "nope"'),
        ("cancer", module.InferInput("input", [1, 30], "FP64"), "datatype FP64 given"),
    ]:
        bad_input.set_data_from_numpy(rows[:1].astype(np.float64 if bad_input.datatype() == "FP64" else np.float32))
        try:
            client.infer(model_name, [bad_input])
            raise AssertionError(f"{model_name}: expected an error")
        except InferenceServerException as err:
            check(needle in str(err), f"error message {err}")
            out.setdefault("errors", []).append(str(err.status()))
    return out


http = httpclient.InferenceServerClient(url=http_url)
report["http"] = run("http", http, httpclient)
grpc = grpcclient.InferenceServerClient(url=grpc_url)
report["grpc"] = run("grpc", grpc, grpcclient)
print(json.dumps(report))
