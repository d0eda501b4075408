#!/usr/bin/env python3
"""A ModelDescriptor written and read by Google's protobuf runtime (not specserve's code),
from the message as the design documents it (field names, numbers, types, the oneof),
declared here independently of proto/specserve/v1/model.proto.

  descriptor.py encode OUT --name N --version V (--data FILE | --location L) [--sha256 HEX] [--description D]
  descriptor.py decode IN      prints the fields as JSON (data as its length and sha256)
"""

import argparse
import hashlib
import json

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def descriptor_class():
    file = descriptor_pb2.FileDescriptorProto(name="model_descriptor_test.proto", package="specserve.v1", syntax="proto3")
    msg = file.message_type.add(name="ModelDescriptor")
    msg.oneof_decl.add(name="payload")
    for name, number, kind, oneof in [
        ("name", 1, F.TYPE_STRING, False),
        ("version", 2, F.TYPE_INT64, False),
        ("description", 3, F.TYPE_STRING, False),
        ("model_type", 4, F.TYPE_STRING, False),
        ("data", 5, F.TYPE_BYTES, True),
        ("location", 6, F.TYPE_STRING, True),
        ("sha256", 7, F.TYPE_STRING, False),
    ]:
        field = msg.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        if oneof:
            field.oneof_index = 0
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("specserve.v1.ModelDescriptor"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["encode", "decode"])
    parser.add_argument("path")
    parser.add_argument("--name")
    parser.add_argument("--version", type=int, default=0)
    parser.add_argument("--data")
    parser.add_argument("--location")
    parser.add_argument("--sha256")
    parser.add_argument("--description", default="")
    args = parser.parse_args()
    Descriptor = descriptor_class()
    if args.command == "encode":
        d = Descriptor(name=args.name, version=args.version, description=args.description, model_type="onnx")
        if args.data:
            with open(args.data, "rb") as f:
                d.data = f.read()
        else:
            d.location = args.location
        if args.sha256:
            d.sha256 = args.sha256
        with open(args.path, "wb") as f:
            f.write(d.SerializeToString())
        return
    with open(args.path, "rb") as f:
        d = Descriptor.FromString(f.read())
    payload = d.WhichOneof("payload")
    print(json.dumps({
        "name": d.name, "version": d.version, "description": d.description, "model_type": d.model_type,
        "payload": payload, "data_bytes": len(d.data), "data_sha256": hashlib.sha256(d.data).hexdigest(),
        "location": d.location, "sha256": d.sha256,
    }))


if __name__ == "__main__":
    main()
