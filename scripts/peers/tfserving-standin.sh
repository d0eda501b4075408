#!/usr/bin/env bash
# Provisions (or reuses) the venv of the TF Serving STAND-IN (scripts/peers/tfserving_standin.py).
# The real TF Serving server is a C++ binary that cannot be installed from the registries
# we may use, so the tests talk to a small Python server that speaks its gRPC API with the
# real, published protos and its documented REST API. Prints the venv directory.
#
# Why not `pip install tensorflow-serving-api` as is: it depends on the whole of
# `tensorflow` (hundreds of MB) only for the framework protos (TensorProto, DataType,
# SignatureDef...). So it has a lock of its own without its dependencies (the part after `--`
# of the lock.sh command) for the official tensorflow_serving apis, and the compiled framework
# protos come from `tensorflow-protobuf` (TensorFlow's own .proto files compiled, no TensorFlow
# runtime). tensorflow-protobuf also ships an older tensorflow_serving/ tree; the second lock,
# installed after it, overwrites that.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv tfserving-standin 'import grpc, numpy, sklearn, joblib; from tensorflow_serving.apis import prediction_service_pb2_grpc, get_model_metadata_pb2, predict_pb2' \
  "$PEERS_DIR/locks/venv-tfserving-standin.txt" \
  "$PEERS_DIR/locks/venv-tfserving-standin.nodeps.txt"
echo "$VENV"
