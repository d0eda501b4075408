#!/usr/bin/env bash
# Provisions (or reuses) the venv of the TF Serving STAND-IN (scripts/peers/tfserving_standin.py).
# The real TF Serving server is a C++ binary that cannot be installed from the registries
# we may use, so the tests talk to a small Python server that speaks its gRPC API with the
# real, published protos and its documented REST API. Prints the venv directory.
#
# Why not `pip install tensorflow-serving-api` as is: it depends on the whole of
# `tensorflow` (hundreds of MB) only for the framework protos (TensorProto, DataType,
# SignatureDef...). So we install it with --no-deps for the official tensorflow_serving
# apis, and take the compiled framework protos from `tensorflow-protobuf` (TensorFlow's
# own .proto files compiled, no TensorFlow runtime). tensorflow-protobuf also ships an
# older tensorflow_serving/ tree; the --no-deps install after it overwrites that.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$CACHE_DIR/venv-tfserving-standin"
ensure_venv "$VENV" 'import grpc, numpy, sklearn, joblib; from tensorflow_serving.apis import prediction_service_pb2_grpc, get_model_metadata_pb2, predict_pb2' \
  "tensorflow-protobuf==2.11.0" \
  "grpcio==1.76.0" \
  "protobuf==6.33.1" \
  "numpy==2.4.6" \
  "scikit-learn==1.9.1" \
  "joblib==1.6.0" \
  -- \
  "tensorflow-serving-api==2.21.0"
echo "$VENV"
