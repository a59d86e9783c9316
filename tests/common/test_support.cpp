// Shared test support (random inputs, poisoning, comparison, ONNX TensorProto reading) lives
// in this directory; this file anchors the library.
namespace linattn::test {}
