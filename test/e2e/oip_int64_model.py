"""Writes a tiny ONNX model with an INT64 input, for the V2 interop test.

ids INT64 [-1, 3] -> total = sum(ids) as FP32 [-1], argmax = index of the largest id INT64 [-1].
Usage: python oip_int64_model.py OUT.onnx
"""
import sys

import onnx
from onnx import TensorProto, helper

graph = helper.make_graph(
    [
        helper.make_node("Cast", ["ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["ids_f", "axes"], ["total"], keepdims=0),
        helper.make_node("ArgMax", ["ids"], ["argmax"], axis=1, keepdims=0),
    ],
    "int64_counts",
    [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3])],
    [
        helper.make_tensor_value_info("total", TensorProto.FLOAT, ["batch"]),
        helper.make_tensor_value_info("argmax", TensorProto.INT64, ["batch"]),
    ],
    [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
