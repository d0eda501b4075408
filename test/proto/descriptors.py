#!/usr/bin/env python3
"""Prints the messages and services of published, compiled protos as JSON, for
test/proto/parity.test.ts to hold our own .proto files against.

Usage: descriptors.py MODULE [MODULE...]   e.g. tensorflow_serving.apis.predict_pb2
Output: {"messages": {full_name: {field: [number, type, repeated]}}, "services": {full_name: {method: [in, out]}}}
where type is a scalar name, "map<K,V>", or the full name of a message or enum.
"""

import importlib
import json
import sys

from google.protobuf.descriptor import FieldDescriptor as F

SCALARS = {
    F.TYPE_DOUBLE: "double", F.TYPE_FLOAT: "float", F.TYPE_INT64: "int64", F.TYPE_UINT64: "uint64",
    F.TYPE_INT32: "int32", F.TYPE_FIXED64: "fixed64", F.TYPE_FIXED32: "fixed32", F.TYPE_BOOL: "bool",
    F.TYPE_STRING: "string", F.TYPE_BYTES: "bytes", F.TYPE_UINT32: "uint32", F.TYPE_SFIXED32: "sfixed32",
    F.TYPE_SFIXED64: "sfixed64", F.TYPE_SINT32: "sint32", F.TYPE_SINT64: "sint64",
}


def field_type(f):
    if f.type in SCALARS:
        return SCALARS[f.type]
    if f.type == F.TYPE_ENUM:
        return f.enum_type.full_name
    entry = f.message_type
    if entry.GetOptions().map_entry:
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        return f"map<{field_type(key)},{field_type(value)}>"
    return entry.full_name


def repeated(f):
    """A list field; map fields are reported by their map<K,V> type instead."""
    flag = f.is_repeated if hasattr(f, "is_repeated") else f.label == F.LABEL_REPEATED
    is_map = f.message_type is not None and f.message_type.GetOptions().map_entry
    return bool(flag) and not is_map


def walk(message, out):
    if message.GetOptions().map_entry:
        return
    out[message.full_name] = {f.name: [f.number, field_type(f), repeated(f)] for f in message.fields}
    for nested in message.nested_types:
        walk(nested, out)


messages, services = {}, {}
for name in sys.argv[1:]:
    file = importlib.import_module(name).DESCRIPTOR
    for message in file.message_types_by_name.values():
        walk(message, messages)
    for service in file.services_by_name.values():
        services[service.full_name] = {m.name: [m.input_type.full_name, m.output_type.full_name] for m in service.methods}
print(json.dumps({"messages": messages, "services": services}))
