"""The TensorFlow-free runtime: the gRPC client of an SSD export (ssd_client), TF Serving's
messages (protos) and numpy <-> TensorProto conversion (tensor_proto)."""
